"""Torch is optional: a test that needs it skips on its own, and the Keras tests of the same module still run."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# torch (and lightning) made unimportable for the child pytest: a finder that refuses them, as if not installed
BLOCK = ("import sys, importlib.abc\n"
         "class Absent(importlib.abc.MetaPathFinder):\n"
         "    def find_spec(self, name, path=None, target=None):\n"
         "        if name.split('.')[0] in ('torch', 'lightning'):\n"
         "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
         "sys.meta_path.insert(0, Absent())\n"
         "import pytest\n")


def _pytest_without_torch(*args) -> str:
    code = BLOCK + f"sys.exit(pytest.main({list(args)!r}))\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    return proc.stdout + proc.stderr


def test_modules_that_use_torch_still_collect_their_keras_tests_without_it():
    out = _pytest_without_torch("--collect-only", "-q", "-p", "no:cacheprovider", "tests/test_user_models.py")
    assert "test_healthy_user_model_is_not_stopped" in out or "test_doomed_user_model_is_stopped_by_epoch_3" in out, out
    assert "test_torch_user_models" in out and "skipped" not in out.splitlines()[-1], out


def test_a_torch_test_skips_alone_without_torch():
    out = _pytest_without_torch("-q", "-p", "no:cacheprovider", "-n", "0", "-rs",
                                "tests/test_adapters.py::test_torch_modules_and_state_dict")
    assert "1 skipped" in out and "torch" in out, out
