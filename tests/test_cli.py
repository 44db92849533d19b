import json

import numpy as np
import pytest

from helpers import keras_paper_cnn, naive_w_l, paper_cnn_weights, torch_paper_cnn
from weightwatch.cli import main


def test_plugins_json(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"kind": "extractor", "name": "W_L", "plugin": "weightwatch.builtin.extractors"} in rows


def test_stats_keras_and_torch_files_agree(tmp_path, rng, capsys):
    import torch

    weights = paper_cnn_weights(rng)
    keras_path = tmp_path / "m.keras"
    keras_paper_cnn(weights).save(keras_path)
    torch_path = tmp_path / "m.pt"
    torch.save(torch_paper_cnn(weights).state_dict(), torch_path)
    values = []
    for path in (keras_path, torch_path):
        assert main(["stats", str(path), "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["n_params"] == 4970
        values.append(np.array(list(out["values"].values())))
    np.testing.assert_allclose(values[0], naive_w_l(zip(weights[0::2], weights[1::2])), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(values[0], values[1])
    assert main(["stats", str(keras_path)]) == 0
    table = capsys.readouterr().out
    assert "conv2d" in table and "p50" in table


def test_stats_bad_file_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "model.onnx"
    bad.write_text("x")
    assert main(["stats", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "don't know how to read model.onnx" in err and "Traceback" not in err
    assert main(["stats", str(tmp_path / "missing.keras")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_missing_optional_dependency_message():
    from weightwatch._compat import MissingDependencyError, require

    with pytest.raises(MissingDependencyError, match=r"testing.*; pip install no_such_pkg$"):
        require("no_such_pkg", "testing")  # no extra of ours installs it: never name one that does not exist
