"""Generated documents and model cards name commands a user can run from a fresh clone: relative paths only."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([*(ROOT / "docs").glob("*.md"), *(ROOT / "pretrained").glob("*.md")])
#: an absolute path: /dir/... at the start of a word or after a quote, bracket or =, a home directory, a drive
ABSOLUTE = re.compile(r"(?:(?<=[\s`'\"(=\[])|^)(?:/(?!/)[\w.-]+/|~/|[A-Za-z]:\\)", re.M)
MACHINE = re.compile(r"(?<![\w.-])/(?:work|home|Users|root|tmp|mnt|opt|var|srv|data)/")
COMMAND = re.compile(r"(?:`|^\s*)(?:weightwatch|python) [^`\n]+", re.M)


def absolute_paths(text: str) -> list:
    return [m.group(0) for m in ABSOLUTE.finditer(text)] + [m.group(0) for m in MACHINE.finditer(text)]


@pytest.mark.parametrize("path", DOCS, ids=[p.relative_to(ROOT).as_posix() for p in DOCS])
def test_generated_doc_has_no_absolute_path_and_names_a_command(path):
    text = path.read_text()
    assert not absolute_paths(text), f"{path.name}: absolute or machine paths {absolute_paths(text)}"
    commands = COMMAND.findall(text)
    assert commands, f"{path.name} names no command that regenerates it"
    for cmd in commands:
        assert not absolute_paths(" " + cmd), cmd


def test_the_check_rejects_machine_paths():
    for bad in ("run `weightwatch evaluate mnist5k=/work/notes/zoos/x --out docs`", "see /home/me/zoo",
                "(/tmp/x/y)", "out=/srv/data/z", "C:\\Users\\me", "in ~/zoos/x"):
        assert absolute_paths(bad), bad
    for ok in ("zoos/mnist5k-all", "accuracy 0.5 / 0.6", "https://example.org/a/b", "W_L/W", "1 / 2 / 3 / ever"):
        assert not absolute_paths(ok), ok


def test_paper_comparison_reproduces_from_relative_commands():
    from weightwatch.experiments import paper_doc

    import json
    results = json.loads((ROOT / "docs" / "paper-comparison.json").read_text())
    lines = paper_doc.reproduce_commands(results)
    assert lines[0].startswith("weightwatch zoo build --dataset mnist5k") and "--seed 12" in lines[0]
    assert any(ln.startswith("weightwatch zoo merge --out zoos/") for ln in lines)
    assert any("--budget default" in ln and "--out docs" in ln for ln in lines)
    assert not any(absolute_paths(" " + ln) for ln in lines)
    md = (ROOT / "docs" / "paper-comparison.md").read_text()
    assert all(ln in md for ln in lines)
