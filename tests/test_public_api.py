"""The package's public face: what ``import weightwatch`` offers, and what it does not import."""

import subprocess
import sys

import pytest

import weightwatch

HEAVY = ("keras", "tensorflow", "torch", "lightgbm")


def test_every_public_name_resolves_to_its_home():
    from weightwatch.monitor import Monitor, Verdict
    from weightwatch.predictors import DNNPredictor, GBMPredictor, LogitLinearPredictor
    from weightwatch.zoo.storage import Zoo

    for name in weightwatch.__all__:
        assert getattr(weightwatch, name) is not None, name
    assert (weightwatch.Monitor, weightwatch.Verdict, weightwatch.Zoo) == (Monitor, Verdict, Zoo)
    assert (weightwatch.LogitLinearPredictor, weightwatch.GBMPredictor, weightwatch.DNNPredictor) == (
        LogitLinearPredictor, GBMPredictor, DNNPredictor)
    assert set(weightwatch.__all__) <= set(dir(weightwatch))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        weightwatch.Nope


def test_import_and_public_names_pull_in_no_framework():
    code = ("import sys, weightwatch; from weightwatch import *; "
            "weightwatch.GBMPredictor(); weightwatch.Monitor; weightwatch.Zoo; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_demo_imports_tensorflow_without_its_start_up_lines():
    """``make demo`` prints only its own output: TensorFlow's C++ start-up lines go nowhere."""
    code = ("import weightwatch.demo as d; d._import_tensorflow_quietly(); import keras, sys; "
            "print('stderr still works', file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "stderr still works" and out.stdout == ""
