"""The README's code runs as pasted: its quick start (Keras) stops the doomed run and not the healthy one, and its
PyTorch loop and Lightning blocks stop theirs. Each block runs in a fresh Python process, with a timeout, from an
empty directory; what it prints is checked."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FIRST_SCREEN = 60  # lines: install to a stopped run


def section(heading: str) -> str:
    start = README.index(f"\n## {heading}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def python_blocks(heading: str) -> list:
    return re.findall(r"```python\n(.*?)```", section(heading), re.S)


def run(code: str, tmp_path, timeout: int = 300) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Warning:" not in proc.stderr, proc.stderr[-3000:]  # pasted code that warns teaches the warning
    return proc.stdout


def test_the_first_screen_goes_from_install_to_a_stopped_run():
    first = "\n".join(README.splitlines()[:FIRST_SCREEN])
    assert 'pip install "weightwatch[keras]"' in first
    assert "stop_on_doom=True" in first and "model.fit(" in first and "```python" in first


def test_quickstart_stops_the_doomed_run_and_not_the_healthy_one(tmp_path):
    pytest.importorskip("keras")
    (code,) = python_blocks("Quick start")
    out = run(code, tmp_path)
    stopped = re.search(r"^doomed: DOOMED after epoch (\d+)$", out, re.M)
    assert stopped and int(stopped.group(1)) <= 3, out
    assert re.search(r"^healthy: NOT_STOPPED$", out, re.M), out
    # what the README shows it prints is what it prints (the shown lines, the elided ones aside)
    shown = re.search(r"```python\n.*?```\n\n```\n(.*?)```", section("Quick start"), re.S).group(1)
    for line in shown.splitlines():
        if line != "...":
            assert line in out.splitlines(), line


def test_torch_loop_block_stops_its_doomed_run(tmp_path):
    pytest.importorskip("torch")
    torch_block = next(b for b in python_blocks("PyTorch and Lightning") if "weightwatch.torch" in b)
    out = run(torch_block, tmp_path)
    stopped = re.search(r"^stopped after epoch (\d+) - (.+)$", out, re.M)
    assert stopped and int(stopped.group(1)) <= 3 and "doom model" in stopped.group(2), out


def test_lightning_block_stops_its_doomed_run(tmp_path):
    pytest.importorskip("lightning")
    block = next(b for b in python_blocks("PyTorch and Lightning") if "weightwatch.lightning" in b)
    out = run(block, tmp_path)
    stopped = re.search(r"^stopped after epoch (\d+) - (.+)$", out, re.M)
    assert stopped and int(stopped.group(1)) <= 3 and "doom model" in stopped.group(2), out


# ------------------------------------------------------------------ the docs pages' first examples


def first_python_block(page: str) -> str:
    return re.findall(r"```python\n(.*?)```", (ROOT / "docs" / page).read_text(), re.S)[0]


def test_plugins_page_example_logs_its_features(tmp_path):
    pytest.importorskip("keras")
    out = run(first_python_block("plugins.md"), tmp_path).splitlines()
    norms, biases = eval(out[-2]), eval(out[-1])  # two lists of floats, one per epoch
    assert len(norms) == len(biases) == 2 and norms[0] != norms[1] and all(n > 0 for n in norms)


def test_predictors_page_example_predicts(tmp_path):
    pytest.importorskip("keras")
    count, first, predictor, accuracy, in_domain = run(first_python_block("predictors.md"), tmp_path).split()[-5:]
    assert count == "56" and first == "l0.kernel.mean" and predictor == "paper-cnn-pooled-W_L-gbm"
    assert 0.0 <= float(accuracy) <= 1.0 and in_domain in ("True", "False")


def test_errors_page_example_is_one_line_and_status_2(tmp_path):
    command = re.search(r"^    (weightwatch predict \S+)$", (ROOT / "docs" / "errors.md").read_text(), re.M).group(1)
    proc = subprocess.run([sys.executable, "-m", "weightwatch", *command.split()[1:]], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("weightwatch: error:") and "does not exist" in proc.stderr
