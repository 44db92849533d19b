"""The command line's surface: every flag explained, strict JSON, a progress bar only on a terminal."""

import argparse
import io
import json
import re

import numpy as np
import pytest

from helpers import paper_cnn_weights, torch_paper_cnn
from weightwatch._console import ProgressBar, json_text
from weightwatch.cli import _add_debug_flag, _load_subcommands, build_parser, main

BAR_CHARS = re.compile("[\u2501\u2578\u257a\u2588\r]")  # rich's bar glyphs, block, carriage return


def strict_loads(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity, as the JSON standard does."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _parsers():
    _load_subcommands()
    root = build_parser()
    _add_debug_flag(root)
    todo = [("weightwatch", root)]
    while todo:
        name, parser = todo.pop()
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [(f"{name} {sub}", p) for sub, p in action.choices.items()]


def test_the_walk_reaches_every_command():
    names = {name for name, _ in _parsers()}
    assert {"weightwatch fit", "weightwatch evaluate", "weightwatch zoo build", "weightwatch zoo info",
            "weightwatch pretrained table", "weightwatch predict", "weightwatch stats"} <= names


@pytest.mark.parametrize("command,parser", list(_parsers()), ids=[n for n, _ in _parsers()])
def test_every_flag_has_help_with_its_default_and_choices(command, parser):
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        what = f"{command} {'/'.join(action.option_strings) or action.dest}"
        assert action.help and action.help.strip(), f"{what} has no help text"
        text = " ".join(formatter._expand_help(action).split())
        default = action.default
        if default not in (None, False, argparse.SUPPRESS) and not isinstance(action, argparse._HelpAction):
            shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
            assert "default" in text and shown in text, f"{what}: help {text!r} does not give its default {shown!r}"
        for choice in action.choices or ():
            assert str(choice) in text, f"{what}: help {text!r} does not name the choice {choice!r}"


def test_json_text_is_strict():
    text = json_text({"a": float("nan"), "b": np.float32(np.inf), "c": [np.nan, 1.5, np.int64(2)],
                      "d": np.array([-np.inf, 0.25]), "e": {"f": (np.float64("nan"),)}})
    assert strict_loads(text) == {"a": None, "b": None, "c": [None, 1.5, 2], "d": [None, 0.25], "e": {"f": [None]}}
    with pytest.raises(TypeError):
        json_text({"x": object()})


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """A real 8-run zoo built through the command line, and what `zoo build` printed."""
    import contextlib

    out = tmp_path_factory.mktemp("tinyzoo")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["zoo", "build", "--dataset", "digits", "--runs", "8", "--epochs", "1", "--checkpoints", "0", "1",
                     "--shard-size", "8", "--seed", "5", "--out", str(out)]) == 0
    return out / "zoo", buf.getvalue()


@pytest.fixture(scope="module")
def torch_file(tmp_path_factory):
    import torch

    path = tmp_path_factory.mktemp("models") / "m.pt"
    torch.save(torch_paper_cnn(paper_cnn_weights(np.random.default_rng(0))).state_dict(), path)
    return path


def test_every_json_output_is_strict_json(tiny_zoo, torch_file, tmp_path, capsys):
    zoo, build_output = tiny_zoo
    assert strict_loads(build_output)["zoo"] == str(zoo)
    commands = [["plugins", "--json"], ["stats", str(torch_file), "--json"], ["predict", str(torch_file), "--json"],
                ["zoo", "info", str(zoo), "--json"], ["pretrained", "list", "--json"], ["pretrained", "table", "--json"],
                ["fit", str(zoo), "--out", str(tmp_path / "pred"), "--params", '{"min_child_samples": 2}']]
    seen = {}
    for argv in commands:
        assert main(argv) == 0, argv
        out = capsys.readouterr().out
        seen[argv[0] if argv[0] != "zoo" and argv[0] != "pretrained" else " ".join(argv[:2])] = strict_loads(out)
    assert "W_L" in {r["name"] for r in seen["plugins"]}
    assert {r["name"] for r in seen["pretrained table"]} == set(seen["pretrained list"])
    assert seen["zoo info"]["runs"] == 8
    # 2 held-out runs: Kendall tau over so few rows may be undefined, and is then null, never NaN
    assert set(seen["fit"]["metrics"]) >= {"r2", "kendall_tau"}


def test_fit_warns_on_a_zoo_too_small_for_a_stable_predictor(tiny_zoo, tmp_path, capsys):
    from weightwatch.experiments.cli import MIN_STABLE_RUNS

    zoo, _ = tiny_zoo
    assert main(["fit", str(zoo), "--out", str(tmp_path / "p"), "--params", '{"min_child_samples": 2}']) == 0
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if line.startswith("weightwatch: warning:")]
    assert len(warning) == 1 and "the zoo has 8 runs" in warning[0] and f"about {MIN_STABLE_RUNS} training runs" \
        in warning[0]
    assert strict_loads(captured.out)["warnings"] == [warning[0].removeprefix("weightwatch: warning: ")]


def test_no_warning_once_the_training_split_is_large_enough():
    from weightwatch.experiments.cli import MIN_STABLE_RUNS, small_zoo_warning

    groups = np.repeat(np.arange(int(MIN_STABLE_RUNS / 0.8) + 5), 3)
    assert small_zoo_warning(groups) == ""
    assert str(MIN_STABLE_RUNS) in small_zoo_warning(groups[: 3 * (MIN_STABLE_RUNS // 2)])


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_on_a_terminal_and_nothing_elsewhere():
    term, pipe = _Terminal(), io.StringIO()
    for stream in (term, pipe):
        with ProgressBar("fit", 4, stream=stream) as bar:
            for _ in range(4):
                bar.advance()
        bar.close()
    assert "ETA" in term.getvalue() and BAR_CHARS.search(term.getvalue())  # the control: a bar is drawn
    assert pipe.getvalue() == ""
    quiet = _Terminal()
    with ProgressBar("fit", 4, stream=quiet, enabled=False) as bar:  # --quiet
        bar.advance()
    assert quiet.getvalue() == ""


def test_long_commands_print_no_bar_when_stdout_is_not_a_terminal(tiny_zoo, tmp_path, capsys):
    zoo, build_output = tiny_zoo
    assert not BAR_CHARS.search(build_output)
    assert main(["fit", str(zoo), "--out", str(tmp_path / "p"), "--params", '{"min_child_samples": 2}']) == 0
    captured = capsys.readouterr()
    assert not BAR_CHARS.search(captured.out + captured.err) and "ETA" not in captured.out + captured.err


@pytest.mark.parametrize("command", [["zoo", "build"], ["fit"], ["evaluate"]])
def test_long_commands_take_quiet(command):
    _load_subcommands()
    parser = build_parser()
    sub = parser
    for word in command:
        sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
    assert any("--quiet" in a.option_strings for a in sub._actions)
