"""Published numbers are the measured ones, cell by cell: every number in the Benchmarks tables (docs/benchmarks.md,
moved there from the README) is compared with the value `make bench` printed (benchmarks/RESULTS.md) for that
table, row and column.

Tolerance: a README number printed with d decimals must equal the measured value rounded to d decimals, i.e.
|README - measured| <= 0.5 * 10**-d (plus 1e-9 for float representation). Every number of a cell must have its
source below: a number the README adds without one fails, so does a number in the wrong cell.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)")
NUM = r"(\d+(?:\.\d+)?)"


def _src(section: str, pattern: str, occurrence: int = 0, group: int = 1) -> tuple:
    return section, pattern, occurrence, group


STATS, ZOO, FIT, CALLBACK = "stats speed", "zoo throughput", "predictor fit", "callback overhead"
RESNET_EPOCH = r"training epoch \((\d+) batches x (\d+)\)\s+best " + NUM
#: (table, row label prefix, column) -> the source of each number in the cell, in order
BENCHMARK_CELLS = {
    ("benchmark", "full `W_L` of ResNet-50", "weightwatch"): [_src(STATS, r"weightwatch layer_stats\s+" + NUM)],
    ("benchmark", "full `W_L` of ResNet-50", "baseline"): [_src(STATS, r"numpy mean/var/percentile\s+" + NUM)],
    ("benchmark", "full `W_L` of ResNet-50", "ratio"): [_src(STATS, r"speed-up \(numpy / weightwatch, best\): " + NUM)],
    ("benchmark", "training paper CNNs on digits", "weightwatch"): [_src(ZOO, r"population: .*\(" + NUM + r" ms/CNN")],
    ("benchmark", "training paper CNNs on digits", "baseline"): [_src(ZOO, r"keras fit: .*\(" + NUM + r" ms/CNN")],
    ("benchmark", "training paper CNNs on digits", "ratio"): [
        _src(ZOO, r"speed-up \(1 process, default threads\): " + NUM), _src(ZOO, r"\(" + NUM + r"x keras\)"),
        _src(ZOO, r"population x(\d+) loky workers")],
    ("benchmark", "GBM fit, 15,000 x 56", "weightwatch"): [_src(FIT, r"GBM fit \(300 trees, 63 leaves\):\s+" + NUM)],
    ("benchmark", "GBM fit, 15,000 x 56", "baseline"): [_src(FIT, r"logit-linear fit \(L-BFGS\):\s+" + NUM)],
    ("benchmark", "LightGBM column-wise vs row-wise", "weightwatch"): [
        _src(FIT, r"4970 features \(30 trees\): row-wise\s+[\d.]+ s, column-wise\s+" + NUM)],
    ("benchmark", "LightGBM column-wise vs row-wise", "baseline"): [
        _src(FIT, r"4970 features \(30 trees\): row-wise\s+" + NUM)],
    ("benchmark", "LightGBM column-wise vs row-wise", "ratio"): [
        _src(FIT, r"4970 features .*\(row / column: " + NUM + "x")],
    ("benchmark", "predicted accuracy of one network", "weightwatch"): [
        _src(FIT, r"one network, W_L \+ GBM predict:\s+" + NUM)],
    ("benchmark", "Keras callback per epoch, ResNet-50", "weightwatch"): [
        _src(CALLBACK, r"callback on_epoch_end \(total\)\s+best " + NUM, 1)],
    ("benchmark", "Keras callback per epoch, ResNet-50", "baseline"): [
        _src(CALLBACK, RESNET_EPOCH, 1, 1), _src(CALLBACK, RESNET_EPOCH, 1, 2), _src(CALLBACK, RESNET_EPOCH, 1, 3)],
    ("benchmark", "Keras callback per epoch, ResNet-50", "ratio"): [
        _src(CALLBACK, r"ratio callback / training epoch\s+" + NUM, 1)],
    ("benchmark", "Keras callback per epoch, paper CNN", "weightwatch"): [
        _src(CALLBACK, r"callback on_epoch_end \(total\)\s+best " + NUM, 0)],
    ("benchmark", "Keras callback per epoch, paper CNN", "baseline"): [
        _src(CALLBACK, r"training epoch \(8 batches x 8\)\s+best " + NUM, 0)],
    ("benchmark", "Keras callback per epoch, paper CNN", "ratio"): [
        _src(CALLBACK, r"ratio callback / training epoch\s+" + NUM, 0)],
}
#: the stopping-verdicts table: README row label prefix -> the start of its policy line in RESULTS.md
VERDICT_ROWS = {
    "paper-CNN forecaster": "paper-CNN forecaster",
    "train accuracy so far": "train accuracy so far",
    "median rule": "median rule",
    "current-accuracy predictor < chance + 0.1": "current-accuracy predictor < chance + 0.1",
    "current-accuracy predictor, same budget": "current-accuracy predictor < 0.",
}
#: README column -> positions among the ten percentages of a policy line (doomed by 1/2/3, healthy by 1/2/3/ever,
#: in between by 3/ever, compute saved)
VERDICT_COLUMNS = {"doomed stopped by epoch 2 / 3": (1, 2), "healthy stopped by epoch 3 / ever": (5, 6),
                   "in between stopped by epoch 3 / ever": (7, 8), "compute saved": (9,)}


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = text.find("\n## ", start + len(heading))
    return text[start:nxt if nxt > 0 else None]


def _tables(section: str) -> list:
    """Every Markdown table of ``section`` as (header cells, rows of cells)."""
    out, current = [], None
    for line in section.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = (cells, [])
            elif not set(line) <= set("|- "):
                current[1].append(cells)
        elif current is not None:
            out.append(current)
            current = None
    return out


def _results_section(results: str, title: str) -> str:
    return _section(results, "## " + title)


def _measure(results: str, src: tuple) -> float:
    section, pattern, occurrence, group = src
    found = list(re.finditer(pattern, _results_section(results, section)))
    assert len(found) > occurrence, f"RESULTS.md section {section!r} has no match {occurrence} of {pattern!r}"
    return float(found[occurrence].group(group))


def _verdict_values(results: str, prefix: str) -> list:
    block = _results_section(results, "stopping verdicts")
    lines = [ln for ln in block.splitlines() if ln.startswith(prefix)]
    assert len(lines) == 1, f"RESULTS.md stopping verdicts: {len(lines)} lines start with {prefix!r}"
    return [float(v) for v in re.findall(r"(\d+(?:\.\d+)?)%", lines[0][92:])]


def _sources(table: str, row: str, column: str, results: str) -> list:
    """Measured values of a README cell, in the order its numbers appear."""
    if table == "policy":
        key = next((k for k in VERDICT_ROWS if row.startswith(k)), None)
        assert key is not None, f"README stopping-verdicts row {row!r} has no source in RESULTS.md"
        values = _verdict_values(results, VERDICT_ROWS[key])
        return [values[i] for i in VERDICT_COLUMNS[column]]
    key = next((k for k in BENCHMARK_CELLS if k[0] == table and row.startswith(k[1]) and k[2] == column), None)
    assert key is not None, f"README cell ({table!r}, {row!r}, {column!r}) has numbers but no source"
    return [_measure(results, s) for s in BENCHMARK_CELLS[key]]


def mismatches(readme: str, results: str) -> list:
    """(table, row, column, README number, measured value) of every cell number that is not the measured one."""
    bad, checked = [], 0
    for header, rows in _tables(_section(readme, "## Benchmarks")):
        table = header[0]
        for cells in rows:
            for column, cell in zip(header[1:], cells[1:]):  # the first cell names the row
                numbers = NUMBER.findall(cell)
                if not numbers:
                    continue
                try:
                    measured = _sources(table, cells[0], column, results)
                except (AssertionError, KeyError) as exc:  # a cell without a source: a number nobody measured
                    bad.append((table, cells[0], column, " ".join(numbers), f"no source: {exc}"))
                    continue
                if len(measured) != len(numbers):
                    bad.append((table, cells[0], column, " ".join(numbers), f"{len(measured)} sources"))
                    continue
                for printed, value in zip(numbers, measured):
                    checked += 1
                    decimals = len(printed.split(".")[1]) if "." in printed else 0
                    if abs(float(printed.replace(",", "")) - value) > 0.5 * 10 ** -decimals + 1e-9:
                        bad.append((table, cells[0], column, printed, value))
    assert checked > 30, "the README's benchmark tables were not found or not parsed"
    return bad


README = (ROOT / "docs" / "benchmarks.md").read_text()  # the Benchmarks section, moved out of the README
RESULTS = (ROOT / "benchmarks" / "RESULTS.md").read_text()


def test_every_benchmark_cell_is_the_measured_value():
    bad = mismatches(README, RESULTS)
    assert not bad, "README numbers that are not RESULTS.md's at their table, row and column:\n" + "\n".join(
        map(str, bad))


def _published() -> list:
    """(offset, number) of every number in the Benchmarks tables' cells after the first."""
    start = README.index("## Benchmarks")
    end = README.find("\n## ", start + 1)
    out = []
    offset = start
    for line in README[start:end].splitlines(keepends=True):
        if line.startswith("| ") and not set(line.strip()) <= set("|- "):
            first = line.index("|", 1)  # skip the row label
            out += [(offset + m.start(), m.group(1)) for m in NUMBER.finditer(line, first)]
        offset += len(line)
    return out


def _bump_last_digit(number: str) -> str:
    last = int(number[-1])
    return number[:-1] + str((last + 1) % 10)


def test_changing_one_published_number_by_its_last_digit_fails():
    """Each number of the tables in turn (headers included), its last digit changed: the check fails every time."""
    published = _published()
    assert len(published) > 40
    passed = []
    for offset, number in published:
        changed = README[:offset] + _bump_last_digit(number) + README[offset + len(number):]
        if not mismatches(changed, RESULTS):
            passed.append((number, README[README.rfind("\n", 0, offset) + 1:offset + 20]))
    assert not passed, f"changed numbers that passed: {passed}"


def test_a_number_in_the_wrong_cell_fails():
    """Swapping two numbers of a row (each exists somewhere in RESULTS.md) is caught: the old bag-of-numbers
    check passed it."""
    row = next(ln for ln in README.splitlines() if ln.startswith("| median rule"))
    swapped = row.replace("80.8% / 87.3%", "87.3% / 80.8%")
    assert swapped != row and mismatches(README.replace(row, swapped), RESULTS)
