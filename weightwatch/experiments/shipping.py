"""Build what ships in ``pretrained/``: compact feature tables, predictors, model cards.

Two commands (see ``pretrained/README.md`` for the full recipe):

* ``weightwatch pretrained tables NAME=ZOO_DIR ... --out pretrained/tables`` —
  per checkpoint: W_L statistics + metrics + configuration, compressed, so
  predictors can be retrained without the raw weights;
* ``weightwatch pretrained build --tables pretrained/tables --out pretrained`` —
  fits the shipped predictors from those tables and writes their model cards.

The work is split by responsibility: :mod:`.tables` (feature tables, split), :mod:`.fitting` (settings and
fitting helpers), :mod:`.recipes` (the shipped predictors), :mod:`.forecasting` (forecaster and doom model),
:mod:`.cards` (model cards), :mod:`.verdict_page` (``VERDICTS.md``), :mod:`.packaging` (one way to save a
predictor, shared with ``weightwatch fit``); the commands live in :mod:`.cli`. This module keeps their
names importable from here.
"""

from .cards import (ALL_EPOCH_ROWS, BUILD_COMMAND, DATASET_NOTES, VERDICTS_COMMAND,  # noqa: F401
                    against_default, predictor_table, render_card)
from .fitting import (DOOM_PARAMS, EARLY_PARAMS, FALSE_STOP_BUDGET, INTERVAL_PARAMS, LEAVE_OUT_PARAMS,  # noqa: F401
                      PATIENCE, SAFETY, SHIP_PARAMS, UPPER_COVERAGE, leave_one_out)
from .forecasting import build_doom_model, build_forecaster  # noqa: F401
from .packaging import package_predictor  # noqa: F401
from .recipes import build_pretrained  # noqa: F401
from .tables import (CARD_EPOCHS, INTERVAL, PAPER_CNN_DATASETS, PAPER_CNN_LAYERS, PAPER_CNN_TABLES,  # noqa: F401
                     PAPER_CNN_VARIANTS, TRAJECTORY_TABLES, Table, _portable, paper_split, split_runs, write_table)
from .verdict_page import verdict_card_from_shipped, write_verdict_card  # noqa: F401
