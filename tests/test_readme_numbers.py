"""README numbers are measured ones: every figure in its benchmark tables is in benchmarks/RESULTS.md.

`make bench` writes RESULTS.md; the README quotes it. A figure that no run of
the benchmarks printed (a typo, a stale number after a re-run) fails here.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)(?=\s*(?:s|ms|x|%)?\b|%)")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = text.find("\n## ", start + len(heading))
    return text[start:nxt if nxt > 0 else None]


def _table_numbers(section: str) -> list:
    out = []
    for line in section.splitlines():
        if not line.startswith("| ") or set(line) <= set("|- "):
            continue
        for cell in line.strip("|").split("|")[1:]:  # the first cell names the row
            out += [m.group(1) for m in NUMBER.finditer(cell)]
    return out


def _measured(results: str) -> list:
    return [float(m.replace(",", "")) for m in re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?", results)]


def _printed(value: str, measured: list) -> bool:
    """True when some number of RESULTS.md, rounded to the README's decimals, is ``value``."""
    decimals = len(value.split(".")[1]) if "." in value else 0
    target = float(value.replace(",", ""))
    return any(round(m, decimals) == target for m in measured)


def test_benchmark_tables_quote_results_md():
    readme = (ROOT / "README.md").read_text()
    measured = _measured((ROOT / "benchmarks" / "RESULTS.md").read_text())
    numbers = _table_numbers(_section(readme, "## Benchmarks"))
    assert len(numbers) > 20  # the tables are there and were parsed
    missing = [n for n in numbers if not _printed(n, measured)]
    assert not missing, f"README benchmark figures not printed by `make bench` (benchmarks/RESULTS.md): {missing}"


def test_the_check_can_fail():
    measured = _measured("GBM fit 1.68 s, speed-up 9.3x, 69.5%")
    assert _printed("1.68", measured) and _printed("9.3", measured) and _printed("69.5", measured)
    assert not _printed("1.69", measured) and not _printed("70.5", measured)
