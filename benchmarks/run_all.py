"""Run every benchmark and write one Markdown file of results with the machine description.

Usage: python benchmarks/run_all.py [--out benchmarks/RESULTS.md] [--quick] [--only SCRIPT ...]
Each benchmark runs in its own process, one after another (they would
otherwise compete for the cores they measure). ``--only verdicts.py`` re-runs
some benchmarks and replaces just their sections of an existing RESULTS.md;
every section names the date it was run.
"""

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ("stats speed (W_L of ResNet-50, 25.5M params)", "stats_speed.py", [], []),
    ("zoo throughput (population vs Keras fit)", "zoo_throughput.py", [], ["--population", "64", "--keras", "2", "--epochs", "1"]),
    ("predictor fit and latency", "predictor_fit.py", [], ["--rows", "3000"]),
    ("callback overhead", "callback_overhead.py", [], ["--repeats", "2"]),
    ("stopping verdicts on held-out zoo runs (default callback vs baselines)", "verdicts.py", [], []),
    ("verdicts on the calibration zoo's untouched runs (the default doom model and forecaster)", "verdicts_plain.py",
     [], []),
    ("doomed-run AUROC at epoch 1 (shipped forecaster vs references)", "doom_auroc.py", [], []),
    ("the default callback on user-style plain Keras runs", "user_runs.py", [], ["--runs", "6", "--epochs", "4"]),
    ("Optuna sweeps: WeightWatchPruner vs Optuna's pruners (replayed zoo runs and a live sweep)", "sweeps.py", [],
     ["--seeds", "20", "--cells", "1", "--live-seeds", "1", "--live-trials", "8"]),
]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.platform()}; {cpu}; {os.cpu_count()} cores{mem}; Python {platform.python_version()}"


def _sections(text: str) -> dict:
    """title -> its whole section (heading to the next heading) of an existing RESULTS.md."""
    out, parts = {}, text.split("\n## ")[1:]
    for part in parts:
        title = part.split("\n", 1)[0]
        out[title] = "## " + part.rstrip("\n") + "\n"
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default=str(HERE / "RESULTS.md"))
    p.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke run)")
    p.add_argument("--only", nargs="+", metavar="SCRIPT", help="re-run these benchmarks (e.g. verdicts.py) and "
                                                               "replace their sections of --out")
    args = p.parse_args(argv)
    known = [script for _, script, _, _ in BENCHMARKS]
    if args.only and set(args.only) - set(known):
        p.error(f"--only: unknown benchmark(s) {sorted(set(args.only) - set(known))}; known: {', '.join(known)}")
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "TF_CPP_MIN_LOG_LEVEL": "3"}
    sections, failures = [], 0
    old = _sections(Path(args.out).read_text()) if args.only and Path(args.out).is_file() else {}
    for title, script, full, quick in BENCHMARKS:
        if args.only and script not in args.only:
            if title in old:
                sections.append(old[title])
            continue
        cmd = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        took = time.perf_counter() - t0
        lines = [l for l in res.stdout.splitlines() if l.strip()]
        status = "ok" if res.returncode == 0 else f"FAILED (exit {res.returncode})"
        failures += res.returncode != 0
        body = "\n".join(lines) if lines else res.stderr[-2000:]
        sections.append(f"## {title}\n\n`{' '.join(['python', 'benchmarks/' + script, *cmd[2:]])}` — {status}, "
                        f"{took:.0f} s, run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n```\n{body}\n```\n")
        print(f"{title}: {status} ({took:.0f} s)", flush=True)
    now = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    header = f"Run {now} by `make bench` on: {machine()}."
    if old:  # a partial re-run keeps the full run's header and says what was re-run
        first = Path(args.out).read_text().split("\n## ")[0].strip().split("\n")
        header = "\n".join(first[2:]) + f"\nRe-run {now} with `--only {' '.join(args.only)}` on: {machine()}."
    text = f"# weightwatch benchmarks\n\n{header}\n\n" + "\n".join(sections)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
