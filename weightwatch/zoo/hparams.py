"""Hyperparameter sampler for the CNN zoo (Unterthiner et al. 2020, appendix A.2).

Every configuration ``i`` of a call is drawn from its own generator
``np.random.default_rng([seed, start_index + i])`` so that shards of a large
zoo can be sampled independently and reproducibly.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from ..errors import InvalidArgumentError
from ..ranges import DEFAULT_LEARNING_RATE, DEFAULT_OPTIMIZER

__all__ = ["DEFAULT_RANGES", "CONFIG_KEYS", "sample_configs", "validate_ranges"]

#: Sampling distribution of every hyperparameter.
#:
#: Each entry is a dict with a ``"dist"`` key:
#:
#: * ``"log_uniform"``: ``low``/``high`` (both > 0), sampled as ``exp(U(log low, log high))``
#: * ``"uniform"``: ``low``/``high``, sampled as ``U(low, high)``
#: * ``"choice"``: ``values``, a tuple sampled uniformly
#: * ``"constant"``: ``value``
#:
#: ``init_std`` is the stddev used only by the ``random_normal`` and
#: ``truncated_normal`` initializers (ignored by the others).
DEFAULT_RANGES: dict[str, dict[str, Any]] = {
    "learning_rate": dict(DEFAULT_LEARNING_RATE),
    "l2reg": {"dist": "log_uniform", "low": 1e-8, "high": 1e-3},
    "dropout": {"dist": "uniform", "low": 0.0, "high": 0.7},
    "init_std": {"dist": "log_uniform", "low": 1e-2, "high": 0.5},
    "w_init": {
        "dist": "choice",
        "values": ("glorot_normal", "he_normal", "orthogonal", "random_normal", "truncated_normal"),
    },
    "b_init": {"dist": "constant", "value": "zeros"},
    "activation": {"dist": "choice", "values": ("relu", "tanh")},
    "train_fraction": {"dist": "choice", "values": (0.1, 0.25, 0.5, 1.0)},
    "optimizer": dict(DEFAULT_OPTIMIZER),
}

#: Keys of every sampled configuration dict.
#: Epochs at which a zoo run's weights are saved by default (the paper trains 18 epochs).
DEFAULT_CHECKPOINTS = (0, 1, 2, 3, 6, 9, 12, 15, 18)

CONFIG_KEYS = (
    "activation",
    "b_init",
    "dataset",
    "dnn_architecture",
    "dropout",
    "epochs",
    "init_std",
    "l2reg",
    "learning_rate",
    "optimizer",
    "random_seed",
    "train_fraction",
    "w_init",
)

# Fixed order in which hyperparameters are drawn (keeps draws stable if the dict order changes).
_DRAW_ORDER = (
    "learning_rate",
    "l2reg",
    "dropout",
    "init_std",
    "w_init",
    "b_init",
    "activation",
    "train_fraction",
    "optimizer",
)

_MAX_SEED = 2**31 - 1


def _check_spec(key: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, Mapping) or "dist" not in spec:
        raise InvalidArgumentError(f"range for {key!r} must be a dict with a 'dist' key, got {spec!r}")
    dist = spec["dist"]
    if dist in ("uniform", "log_uniform"):
        for bound in ("low", "high"):
            if bound not in spec:
                raise InvalidArgumentError(f"range for {key!r} ({dist}) is missing {bound!r}")
        low, high = float(spec["low"]), float(spec["high"])
        if not (math.isfinite(low) and math.isfinite(high)):
            raise InvalidArgumentError(f"range for {key!r} has non-finite bounds: low={low}, high={high}")
        if low > high:
            raise InvalidArgumentError(f"range for {key!r} has low > high: low={low}, high={high}")
        if dist == "log_uniform" and low <= 0:
            raise InvalidArgumentError(
                f"range for {key!r} is log_uniform and needs positive bounds, got low={low}, high={high}"
            )
        return {"dist": dist, "low": low, "high": high}
    if dist == "choice":
        values = spec.get("values")
        if values is None or isinstance(values, str) or len(tuple(values)) == 0:
            raise InvalidArgumentError(f"range for {key!r} (choice) needs a non-empty sequence 'values'")
        return {"dist": "choice", "values": tuple(values)}
    if dist == "constant":
        if "value" not in spec:
            raise InvalidArgumentError(f"range for {key!r} (constant) is missing 'value'")
        return {"dist": "constant", "value": spec["value"]}
    raise InvalidArgumentError(
        f"range for {key!r} has unknown dist {dist!r}; expected one of "
        "'uniform', 'log_uniform', 'choice', 'constant'"
    )


def validate_ranges(ranges: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Merge ``ranges`` overrides into :data:`DEFAULT_RANGES` and validate them.

    Parameters
    ----------
    ranges : mapping, optional
        Overrides keyed by hyperparameter name (see :data:`DEFAULT_RANGES`).

    Returns
    -------
    dict
        The full, validated range specification.

    Raises
    ------
    ValueError
        On an unknown key, ``low > high``, a non-positive bound of a
        log-uniform range, or a malformed entry.
    """
    merged = {k: dict(v) for k, v in DEFAULT_RANGES.items()}
    if ranges:
        unknown = sorted(set(ranges) - set(DEFAULT_RANGES))
        if unknown:
            raise InvalidArgumentError(
                f"unknown hyperparameter(s) in ranges: {unknown}; known: {sorted(DEFAULT_RANGES)}"
            )
        for key, spec in ranges.items():
            merged[key] = spec
    return {k: _check_spec(k, v) for k, v in merged.items()}


def _draw(rng: np.random.Generator, spec: dict[str, Any]) -> Any:
    dist = spec["dist"]
    if dist == "log_uniform":
        return float(np.exp(rng.uniform(np.log(spec["low"]), np.log(spec["high"]))))
    if dist == "uniform":
        return float(rng.uniform(spec["low"], spec["high"]))
    if dist == "choice":
        value = spec["values"][int(rng.integers(len(spec["values"])))]
        return value.item() if isinstance(value, np.generic) else value
    rng.random()  # constant: consume one draw so the stream layout never depends on the dist type
    return spec["value"]


def member_seed(seed: int, index: int) -> int:
    """Distinct per-config seed in ``[0, 2**31 - 1)`` for a fixed ``seed``."""
    return int((int(seed) * 1_000_003 + int(index)) % _MAX_SEED)


def sample_configs(
    n: int,
    *,
    seed: int,
    dataset: str,
    architecture: str = "paper-cnn",
    epochs: int = 18,
    ranges: Mapping[str, Any] | None = None,
    start_index: int = 0,
) -> list[dict[str, Any]]:
    """Sample ``n`` training configurations.

    Parameters
    ----------
    n : int
        Number of configurations.
    seed : int
        Base seed (non-negative).
    dataset : str
        Dataset name stored in each config.
    architecture : str
        Architecture name stored as ``dnn_architecture``.
    epochs : int
        Number of training epochs stored in each config.
    ranges : mapping, optional
        Overrides of :data:`DEFAULT_RANGES`.
    start_index : int
        Global index of the first configuration; config ``i`` depends only
        on ``(seed, start_index + i)``.

    Returns
    -------
    list of dict
        Configs with exactly the keys in :data:`CONFIG_KEYS`.
    """
    if n < 0:
        raise InvalidArgumentError(f"n must be non-negative, got {n}")
    if seed < 0 or start_index < 0:
        raise InvalidArgumentError(f"seed and start_index must be non-negative, got {seed}, {start_index}")
    specs = validate_ranges(ranges)
    configs = []
    for i in range(n):
        index = start_index + i
        rng = np.random.default_rng([int(seed), int(index)])
        cfg: dict[str, Any] = {key: _draw(rng, specs[key]) for key in _DRAW_ORDER}
        cfg["dataset"] = dataset
        cfg["dnn_architecture"] = architecture
        cfg["epochs"] = int(epochs)
        cfg["random_seed"] = member_seed(seed, index)
        configs.append({k: cfg[k] for k in CONFIG_KEYS})
    return configs
