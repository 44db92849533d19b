"""LightGBM text models checked before LightGBM parses them.

LightGBM's C++ parser trusts its input: a ``model.txt`` cut short (and
re-sealed, so its checksum matches) segfaults or aborts the interpreter.
:func:`check_model_text` checks the structure in Python first: the header
(``tree``, ``version``, ``num_class``, ``max_feature_idx``, ``tree_sizes``),
every tree block where ``tree_sizes`` puts it (``Tree=<i>``, leaf and split
counts, child indices and split features in range) and the end marker
``end of trees``. :func:`parse_in_subprocess` then lets LightGBM parse the
text in a child process, so a crash the checks did not foresee kills the
child, not the caller. Files whose sha256 is one of the shipped
predictors' (:mod:`weightwatch.predictors._shipped_hashes`) skip both.

:func:`slim_model_text` drops what LightGBM records about training and never
reads to predict (split gains, node counts, weights and internal values): the
saved predictors are about 40% smaller and predict the same numbers, bit for
bit (``tests/test_pretrained.py``).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys

from ..errors import PredictorIntegrityError

_HEADER_KEYS = ("version", "num_class", "num_tree_per_iteration", "max_feature_idx", "tree_sizes")
_END = "end of trees"
#: Per-tree training records LightGBM writes and does not read to predict (its parser fills them with zeros
#: when absent): what :func:`slim_model_text` drops.
TRAINING_RECORDS = ("split_gain", "leaf_weight", "leaf_count", "internal_value", "internal_weight",
                    "internal_count")


def _bad(path, what: str) -> PredictorIntegrityError:
    return PredictorIntegrityError(f"{path} is not a complete LightGBM model: {what}")


def _ints(block: dict, key: str, path, tree: int) -> list:
    try:
        return [int(v) for v in block.get(key, "").split()]
    except ValueError:
        raise _bad(path, f"tree {tree}: {key} holds a value that is not an integer") from None


def _check_tree(text: str, i: int, max_feature: int, path) -> None:
    block = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    try:
        leaves = int(block["num_leaves"])
    except (KeyError, ValueError):
        raise _bad(path, f"tree {i} has no num_leaves") from None
    n_values = len(block.get("leaf_value", "").split())
    if leaves < 1 or n_values != leaves:
        raise _bad(path, f"tree {i} declares {leaves} leaves but holds {n_values} leaf values")
    if leaves == 1:
        return
    splits = leaves - 1
    for key in ("split_feature", "threshold", "left_child", "right_child", "decision_type"):
        n = len(block.get(key, "").split())
        if n != splits:
            raise _bad(path, f"tree {i}: {key} holds {n} values, {splits} expected for {leaves} leaves")
    if any(not 0 <= f <= max_feature for f in _ints(block, "split_feature", path, i)):
        raise _bad(path, f"tree {i} splits on a feature outside 0..{max_feature}")
    for key in ("left_child", "right_child"):
        if any(not -leaves <= c < splits for c in _ints(block, key, path, i)):
            raise _bad(path, f"tree {i}: {key} points outside the tree")
    try:
        [float(v) for v in block["threshold"].split() + block["leaf_value"].split()]
    except ValueError:
        raise _bad(path, f"tree {i}: a threshold or leaf value is not a number") from None


def check_model_text(text: str, path="model.txt") -> int:
    """Refuse a LightGBM model text whose structure is broken (naming ``path`` and the problem); returns the
    number of trees."""
    if not text.startswith("tree\n"):
        raise _bad(path, "it does not start with LightGBM's header line 'tree'")
    first = text.find("\nTree=0\n")
    if first < 0:
        raise _bad(path, "it holds no tree ('Tree=0')")
    header = dict(line.split("=", 1) for line in text[:first].splitlines() if "=" in line)
    missing = [k for k in _HEADER_KEYS if k not in header]
    if missing:
        raise _bad(path, f"its header lacks {', '.join(missing)}")
    try:
        sizes = [int(s) for s in header["tree_sizes"].split()]
        max_feature = int(header["max_feature_idx"])
        int(header["num_class"]), int(header["num_tree_per_iteration"])
    except ValueError:
        raise _bad(path, "a header number (tree_sizes, max_feature_idx, num_class) is not an integer") from None
    if not sizes or min(sizes) <= 0 or max_feature < 0:
        raise _bad(path, "its header declares no trees")
    names = header.get("feature_names", "").split()
    if names and len(names) != max_feature + 1:
        raise _bad(path, f"{len(names)} feature names for max_feature_idx={max_feature}")
    # LightGBM reads each tree from where tree_sizes puts it: every block must be where it says
    pos = first + 1
    for i, size in enumerate(sizes):
        if not re.match(rf"Tree={i}\n", text[pos:pos + 16]) or pos + size > len(text):
            raise _bad(path, f"tree {i} of the {len(sizes)} its header declares is missing or cut short "
                             "(truncated file?)")
        _check_tree(text[pos:pos + size], i, max_feature, path)
        pos += size
    if not text[pos:].lstrip("\n").startswith(_END):
        raise _bad(path, f"'{_END}' does not follow its {len(sizes)} trees (truncated file?)")
    return len(sizes)


def slim_model_text(text: str) -> str:
    """``text`` without the trees' :data:`TRAINING_RECORDS`, ``tree_sizes`` recomputed; everything a prediction
    reads (structure, thresholds, leaf values, header, parameters) is kept byte for byte. A text without trees
    (or already slim) comes back unchanged."""
    first, end = text.find("\nTree=0\n"), text.find(_END)
    if first < 0 or end < first:
        return text
    head, body, tail = text[:first + 1], text[first + 1:end], text[end:]
    trees = [t for t in re.split(r"(?m)^(?=Tree=\d+\n)", body) if t]
    trees = ["".join(line for line in t.splitlines(keepends=True) if line.split("=", 1)[0] not in TRAINING_RECORDS)
             for t in trees]
    head = re.sub(r"(?m)^tree_sizes=.*$", "tree_sizes=" + " ".join(str(len(t.encode())) for t in trees), head)
    return head + "".join(trees) + tail


#: sha256 of model texts known to parse: the shipped predictors', those this process saved or already parsed
_PARSED: set = set()

_PARSE = ("import json, sys, lightgbm\n"
          "for text in json.load(sys.stdin):\n"
          "    b = lightgbm.Booster(model_str=text)\n"
          "    print('ok', b.num_trees(), b.num_feature(), flush=True)\n")


def is_known(sha256: str) -> bool:
    """True for a model text known to parse: a shipped predictor's, or one this process saved or parsed."""
    from ._shipped_hashes import HASHES

    return sha256 in _PARSED or sha256 in set(HASHES.values())


def mark_known(sha256: str) -> None:
    _PARSED.add(sha256)


def parse_in_subprocess(texts: dict, timeout: float = 300.0) -> list:
    """Let LightGBM parse the model texts ``{path: text}`` in one child process: [(trees, features)] per text.
    A native crash, an error or a hang is a :class:`PredictorIntegrityError` naming the file it happened on;
    the caller lives on. Costs one interpreter start with LightGBM imported (about 1-5 s)."""
    import json

    paths = list(texts)
    try:
        res = subprocess.run([sys.executable, "-c", _PARSE], input=json.dumps(list(texts.values())),
                             capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        done = (out.decode(errors="replace") if isinstance(out, bytes) else out).count("ok ")
        raise PredictorIntegrityError(f"{paths[min(done, len(paths) - 1)]}: LightGBM did not finish parsing it "
                                      f"within {timeout:.0f} s") from None
    answers = [line.split()[1:] for line in res.stdout.splitlines() if line.startswith("ok ")]
    culprit = paths[min(len(answers), len(paths) - 1)]
    if res.returncode < 0:
        try:
            name = signal.Signals(-res.returncode).name
        except ValueError:
            name = f"signal {-res.returncode}"
        raise PredictorIntegrityError(f"{culprit} crashes LightGBM's parser ({name}): the file is damaged (it was "
                                      "parsed in a separate process, so only that process died)")
    if res.returncode != 0 or len(answers) != len(paths):
        last = (res.stderr.strip().splitlines() or ["no message"])[-1]
        raise PredictorIntegrityError(f"{culprit} is not a model LightGBM can read ({last[:200]})")
    return [(int(t), int(f)) for t, f in answers]
