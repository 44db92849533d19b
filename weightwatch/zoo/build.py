"""Build a zoo: sharded, resumable, parallel (joblib) or distributed (Dask).

A build is a set of shards of ``shard_size`` configurations; configuration
``i`` depends only on ``(seed, i)``, so every shard can be trained anywhere,
in any order. Each finished shard is written atomically (temp dir + rename)
with the sha256 of its files (``SHA256SUMS``): re-running the same command
skips finished shards, retrains a shard whose files no longer match, and a
killed build leaves no half-written shard. When all shards exist they are
verified and merged into one zoo directory (``weights.npy``, ``layout.csv``,
``metrics.csv.gz``), which replaces an older merged zoo only once complete.
Every setting and the output directory are checked before anything is
written; a finished build re-run does nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .._version import __version__
from .._files import DirLock, atomic_write_text, check_output_dir
from ..errors import BuildSpecMismatch, InvalidArgumentError, ZooBuildError, ZooFormatError
from .hparams import DEFAULT_CHECKPOINTS
from .storage import (CONFIG_KEYS, _atomic_dir, flatten_keras_weights, is_complete, keras_layout, merge_zoos,
                      read_json, remove_stale_temp, verify_zoo, write_zoo)

log = logging.getLogger(__name__)

# mnist5k: 4000 / 32 = 125 steps per epoch, about the paper's MNIST (60000 / 512 = 117)
BATCH_SIZES = {"digits": 32, "digits_jitter": 32, "mnist5k": 32}
DEFAULT_BATCH_SIZE = 64


@dataclass(frozen=True)
class BuildSpec:
    """Everything that determines a zoo's content (same spec -> same zoo)."""

    dataset: str = "digits"
    architecture: str = "paper-cnn"
    runs: int = 100
    seed: int = 0
    epochs: int = 18
    checkpoints: tuple = DEFAULT_CHECKPOINTS
    shard_size: int = 64
    batch_size: int | None = None
    resolution: int = 16
    population_size: int = 64
    ranges: dict = field(default_factory=dict)
    input_scale: str = "default"

    def __post_init__(self):
        for name, minimum in (("runs", 1), ("seed", 0), ("epochs", 0), ("shard_size", 1), ("resolution", 1),
                              ("population_size", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise InvalidArgumentError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if not isinstance(self.ranges, dict):
            raise InvalidArgumentError(f"ranges must be a dict, got {type(self.ranges).__name__}")
        from .datasets import INPUT_SCALES

        if self.input_scale not in INPUT_SCALES:
            raise InvalidArgumentError(f"input_scale must be one of {', '.join(INPUT_SCALES)}, "
                                       f"got {self.input_scale!r}")
        asked = tuple(self.checkpoints)
        if asked == DEFAULT_CHECKPOINTS:  # the default list is cut to the epochs trained
            asked = tuple(c for c in asked if c <= self.epochs)
        bad = [c for c in asked if not isinstance(c, (int, np.integer)) or not 0 <= c <= self.epochs]
        if bad or not asked:
            raise InvalidArgumentError(f"checkpoints must be epochs in [0, {self.epochs}] (--epochs), "
                                       f"got {list(self.checkpoints)}")
        cps = tuple(sorted({int(c) for c in asked}))
        if self.epochs not in cps:
            cps = cps + (self.epochs,)
        object.__setattr__(self, "checkpoints", cps)

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size or BATCH_SIZES.get(self.dataset, DEFAULT_BATCH_SIZE)

    @property
    def n_shards(self) -> int:
        return -(-self.runs // self.shard_size)

    def shard_range(self, shard: int) -> tuple:
        lo = shard * self.shard_size
        return lo, min(self.runs, lo + self.shard_size)

    def to_json(self) -> dict:
        d = asdict(self)
        d["checkpoints"] = list(self.checkpoints)
        if d["input_scale"] == "default":  # builds recorded before the setting existed stay the same build
            del d["input_scale"]
        return d


def shard_dir(out, shard: int) -> Path:
    return Path(out) / "shards" / f"shard-{shard:05d}"


@lru_cache(maxsize=4)
def _dataset(name: str, resolution: int, data_dir: str | None, input_scale: str = "default"):
    from .datasets import load_dataset

    return load_dataset(name, data_dir=data_dir, resolution=resolution, input_scale=input_scale)


def _init_worker_threads(threads: int | None) -> None:
    if threads:
        from .population import configure_threads

        configure_threads(intra_op=threads, inter_op=1)


def run_shard(spec_json: dict, shard: int, out: str, data_dir: str | None = None, threads: int | None = None) -> dict:
    """Train one shard and write it atomically; returns a summary. Runs in workers."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    spec = BuildSpec(**{**spec_json, "checkpoints": tuple(spec_json["checkpoints"])})
    final = shard_dir(out, shard)
    if is_complete(final):
        return {"shard": shard, "runs": 0, "skipped": True, "seconds": 0.0}
    t0 = time.perf_counter()
    _init_worker_threads(threads)
    import pandas as pd

    from .architectures import KerasTrainedFamily, get_architecture, weight_shapes
    from .hparams import sample_configs

    data = _dataset(spec.dataset, spec.resolution, data_dir, spec.input_scale)
    lo, hi = spec.shard_range(shard)
    arch = get_architecture(spec.architecture).for_classes(data.num_classes, dataset=spec.dataset)
    if isinstance(arch, KerasTrainedFamily):  # its own hyperparameters, trained by Keras' fit
        from .keras_training import train_keras_members

        configs = arch.sample_configs(hi - lo, seed=spec.seed, dataset=spec.dataset, epochs=spec.epochs,
                                      start_index=lo)
        results = train_keras_members(arch, configs, data.x_train, data.y_train, data.x_test, data.y_test,
                                      checkpoints=spec.checkpoints, num_classes=data.num_classes)
        shapes, extra_keys = arch.weight_shapes(data.input_shape), tuple(arch.extra_config_keys)
    else:
        from .population import train_population

        configs = sample_configs(hi - lo, seed=spec.seed, dataset=spec.dataset, architecture=spec.architecture,
                                 epochs=spec.epochs, ranges=spec.ranges or None, start_index=lo)
        results = train_population(
            configs, data.x_train, data.y_train, data.x_test, data.y_test, architecture=arch,
            batch_size=spec.effective_batch_size, checkpoints=spec.checkpoints,
            population_size=spec.population_size,
        )
        shapes, extra_keys = weight_shapes(arch, data.input_shape), ()
    layout, order = keras_layout(shapes)
    n_train = len(data.x_train)
    rows, records = [], []
    for offset, (config, res) in enumerate(zip(configs, results)):
        run_id = f"{spec.dataset}/{spec.architecture}/seed{spec.seed}/run-{lo + offset:06d}"
        n_sub = max(1, int(round(float(config["train_fraction"]) * n_train)))
        steps_per_epoch = -(-n_sub // int(config.get("batch_size") or spec.effective_batch_size))
        for epoch in spec.checkpoints:
            cp = res.checkpoints.get(epoch)
            if cp is None:  # a diverged member may stop recording
                continue
            rows.append(flatten_keras_weights(cp.weights, order))
            rec = {f"config.{k}": config[k] for k in CONFIG_KEYS + extra_keys}
            rec.update(modeldir=run_id, step=epoch * steps_per_epoch, test_accuracy=cp.test_accuracy,
                       test_loss=cp.test_loss, train_accuracy=cp.train_accuracy, train_loss=cp.train_loss,
                       status=res.status, epoch=epoch, fit_loss=cp.fit_loss, fit_accuracy=cp.fit_accuracy)
            records.append(rec)
    weights = np.vstack(rows) if rows else np.zeros((0, sum(int(np.prod(s)) for _, s in layout)), np.float32)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_zoo(final, weights, layout, pd.DataFrame.from_records(records),
                  manifest={"build": spec.to_json(), "shard": shard, "config_range": [lo, hi],
                            "weightwatch": __version__})
    except Exception:
        if not is_complete(final):  # a concurrent duplicate of this shard may have won the rename
            raise
    return {"shard": shard, "runs": hi - lo, "skipped": False, "seconds": time.perf_counter() - t0,
            "nan": int(sum(r.status == "nan" for r in results))}


def check_spec(spec: BuildSpec, *, data_dir=None, load_data: bool = True) -> None:
    """Refuse a spec that could not be built, before anything is written.

    Names (dataset, architecture) and hyperparameter ranges are checked
    against the registries; with ``load_data`` the dataset is loaded (a
    file-backed one must be on disk) and the architecture sized for it.
    """
    from ..plugins import get_registry
    from .architectures import KerasTrainedFamily, get_architecture, param_shapes
    from .hparams import sample_configs
    from .population import validate_configs

    known = sorted(get_registry().entries("datasets"))
    if spec.dataset.lower().replace("-", "_") not in known:
        raise InvalidArgumentError(f"unknown dataset {spec.dataset!r} (--dataset); known: {', '.join(known)}")
    arch = get_architecture(spec.architecture)
    keras_trained = isinstance(arch, KerasTrainedFamily)
    if keras_trained and spec.ranges:
        raise InvalidArgumentError(f"architecture {arch.name!r} samples its own hyperparameters: --ranges does not "
                                   "apply to it")
    if not keras_trained:
        validate_configs(sample_configs(spec.runs, seed=spec.seed, dataset=spec.dataset,
                                        architecture=spec.architecture, epochs=spec.epochs,
                                        ranges=spec.ranges or None))
    if data_dir is not None and not Path(data_dir).is_dir():
        raise InvalidArgumentError(f"--data-dir {data_dir} is not a directory")
    if load_data:
        data = _dataset(spec.dataset, spec.resolution, str(data_dir) if data_dir else None, spec.input_scale)
        sized = arch.for_classes(data.num_classes, dataset=spec.dataset)
        try:
            sized.check_input(data.input_shape) if keras_trained else param_shapes(sized, data.input_shape)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"--resolution {spec.resolution}: {exc}") from None


def _read_spec(out: Path):
    """The settings recorded in ``out/build.json``, or None if there is none."""
    path = out / "build.json"
    if not path.exists():
        return None
    try:
        return read_json(path)
    except ZooFormatError as exc:
        raise ZooBuildError(f"{exc}; it records the settings of the build in {out}: restore it, or pass --force "
                            "to start over with these settings (shards built with them are kept)") from None


def _discard(d: Path) -> None:
    """Delete a shard: renamed away first, so a kill mid-delete leaves only a temp folder to clean."""
    tmp = _atomic_dir(d)
    os.replace(d, tmp)  # onto the empty folder just made
    shutil.rmtree(tmp, ignore_errors=True)


def _shard_problem(d: Path, spec: BuildSpec):
    """None if shard ``d`` is complete, intact and built with ``spec``; else (kind, what is wrong)."""
    problem = verify_zoo(d)
    if problem:
        return "damaged", problem
    try:
        built = read_json(d / "zoo.json").get("build")
    except ZooFormatError as exc:
        return "damaged", str(exc)
    if built != spec.to_json():
        diff = _spec_diff(built, spec.to_json()) if isinstance(built, dict) else "none recorded"
        return "other", f"{d} was built with other settings: {diff}"
    return None


def _finished(merged: Path, spec: BuildSpec) -> bool:
    """True if ``merged`` is an intact zoo merged from a build with exactly ``spec``."""
    if not merged.is_dir() or verify_zoo(merged) is not None:
        return False
    try:
        return read_json(merged / "zoo.json").get("build") == spec.to_json()
    except ZooFormatError:
        return False


class Progress:
    """One status line: runs done, CNNs per minute, ETA."""

    def __init__(self, total: int, done: int, stream=sys.stderr, enabled: bool = True):
        self.total, self.done, self.start_done = total, done, done
        self.t0 = time.perf_counter()
        self.stream, self.enabled = stream, enabled

    def update(self, runs: int) -> None:
        self.done += runs
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t0
        rate = (self.done - self.start_done) / elapsed * 60 if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate * 60 if rate > 0 else float("nan")
        eta_s = f"{eta / 60:.1f} min" if np.isfinite(eta) else "?"
        end = "\n" if self.done >= self.total or not self.stream.isatty() else "\r"
        self.stream.write(f"zoo: {self.done}/{self.total} runs | {rate:.0f} CNNs/min | ETA {eta_s}   {end}")
        self.stream.flush()


def _train_shards(spec: BuildSpec, pending, out, data_dir, jobs, scheduler, bar) -> list:
    """Train the ``pending`` shards (locally, in ``jobs`` processes, or on a Dask scheduler); their summaries."""
    import joblib

    summaries = []
    if pending:
        threads = 1 if (jobs != 1 or scheduler) else None
        calls = (joblib.delayed(run_shard)(spec.to_json(), s, str(out), data_dir, threads) for s in pending)
        if scheduler:
            from .._compat import require

            distributed = require("distributed", "--scheduler")
            with distributed.Client(scheduler) as client:  # noqa: F841 - registers the dask backend
                with joblib.parallel_config(backend="dask"):
                    for summary in joblib.Parallel(n_jobs=-1, return_as="generator_unordered")(calls):
                        summaries.append(summary)
                        bar.update(summary["runs"])
        elif jobs == 1:
            for s in pending:
                summary = run_shard(spec.to_json(), s, str(out), data_dir, None)
                summaries.append(summary)
                bar.update(summary["runs"])
        else:
            with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
                for summary in joblib.Parallel(n_jobs=jobs, return_as="generator_unordered")(calls):
                    summaries.append(summary)
                    bar.update(summary["runs"])
    return summaries


def build_zoo(out, spec: BuildSpec, *, jobs: int = 1, scheduler: str | None = None, data_dir=None,
              progress=True, merge: bool = True, force: bool = False) -> dict:
    """Build (or resume) the zoo ``spec`` into ``out``; returns a summary.

    Parameters
    ----------
    jobs : int
        Local worker processes (joblib/loky), each with one TensorFlow thread
        when ``jobs > 1``.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://127.0.0.1:8786``); shards then run
        on its workers through joblib's dask backend.
    progress : bool or callable
        ``True``: one status line per finished shard on stderr; or ``progress(total_runs, done_runs)``
        returning an object whose ``update(runs)`` counts finished runs (and ``close()``, if it has one,
        is called at the end), e.g. a progress bar.
    force : bool
        Start over if ``out`` holds a build with other settings (or an
        unreadable ``build.json``): shards of other settings are deleted,
        shards of ``spec`` kept.

    Returns
    -------
    dict
        ``trained_shards``, ``retrained`` (damaged shards, by path), ``zoo``;
        ``unchanged: True`` when the build was already finished.

    Raises
    ------
    LockedError
        Another live process is building into ``out`` (its pid and host are
        named). A lock left by a killed build is taken over with a warning.
    """
    out = Path(out)
    # 1. everything that can be checked without writing: settings, names, the output directory
    if not isinstance(jobs, int) or jobs < 1:
        raise InvalidArgumentError(f"jobs must be an integer >= 1, got {jobs!r}")
    local = scheduler is None  # with a Dask cluster the data lives on the workers
    check_spec(spec, data_dir=data_dir if local else None, load_data=False)
    check_output_dir(out)
    if not out.exists():  # the lock file creates --out: a build refused for its data must write nothing
        check_spec(spec, data_dir=data_dir if local else None, load_data=local)
    out.mkdir(parents=True, exist_ok=True)
    with DirLock(out) as lock:  # one build at a time per --out: two would mislabel each other's shards
        if lock.taken_over:
            log.warning("zoo: took over %s from pid %s on host %s, which no longer holds it (killed?)",
                        lock.path, lock.taken_over.get("pid"), lock.taken_over.get("host"))
        return _build_locked(out, spec, jobs=jobs, scheduler=scheduler, data_dir=data_dir, progress=progress,
                             merge=merge, force=force)


def _spec_diff(old: dict, new: dict) -> str:
    """The settings that differ between two build records: ``seed (recorded 4, asked 3)``."""
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k} (recorded {old.get(k)!r}, asked {new.get(k)!r})" for k in keys)


def _build_locked(out: Path, spec: BuildSpec, *, jobs, scheduler, data_dir, progress, merge, force) -> dict:
    """:func:`build_zoo` once the lock on ``out`` is held."""
    local = scheduler is None
    old = _read_spec(out) if not force else None
    if old is not None and old != spec.to_json():
        raise BuildSpecMismatch(
            f"{out} holds a build with different settings: {_spec_diff(old, spec.to_json())}; use another --out, "
            "the same settings to resume, or --force to start over (shards of the old settings are deleted; the merged "
            "zoo stays until the new one replaces it)")
    remove_stale_temp(out)
    remove_stale_temp(out / "shards")
    merged = out / "zoo"
    result = {"out": str(out), "runs": spec.runs, "shards": spec.n_shards}
    if old is not None and merge and _finished(merged, spec):
        return {**result, "trained_shards": 0, "seconds": 0.0, "zoo": str(merged), "unchanged": True}
    if old is None:  # a new build (or --force): the data must be there before build.json records it
        check_spec(spec, data_dir=data_dir if local else None, load_data=local)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "build.json", json.dumps(spec.to_json(), indent=2, sort_keys=True))

    # 2. finished shards are trusted only if their files match their sha256
    pending, retrained = [], []
    for s in range(spec.n_shards):
        d = shard_dir(out, s)
        if not d.exists():
            pending.append(s)
            continue
        problem = _shard_problem(d, spec)
        if problem is None:
            continue
        kind, text = problem
        if kind == "other" and not force:
            raise BuildSpecMismatch(f"{text}, not those of {out / 'build.json'}; pass --force to start over")
        log.warning("zoo: %s: retraining shard %d", text, s)
        _discard(d)
        pending.append(s)
        if kind == "damaged":
            retrained.append(str(d))
    if force and (out / "shards").is_dir():  # shards past this build's last one are of the old settings
        expected = {shard_dir(out, s).name for s in range(spec.n_shards)}
        for d in sorted((out / "shards").glob("shard-*")):
            if d.name not in expected:
                _discard(d)
    done_runs = spec.runs - sum(spec.shard_range(s)[1] - spec.shard_range(s)[0] for s in pending)
    bar = progress(spec.runs, done_runs) if callable(progress) else Progress(spec.runs, done_runs, enabled=progress)
    data_dir = str(data_dir) if data_dir else None
    t0 = time.perf_counter()
    try:
        summaries = _train_shards(spec, pending, out, data_dir, jobs, scheduler, bar)
    finally:
        getattr(bar, "close", lambda: None)()
    result.update(trained_shards=len(pending), seconds=time.perf_counter() - t0)
    if retrained:
        result["retrained"] = retrained
    trained = sum(s["runs"] for s in summaries if not s["skipped"])
    if trained and result["seconds"] > 0:
        result["cnns_per_minute"] = trained / result["seconds"] * 60
    if merge:
        # shards are verified again inside; an older merged zoo goes only once the new one is in place
        manifest = {"build": spec.to_json(), "weightwatch": __version__, "sources": f"{spec.n_shards} shards"}
        if local:  # what the networks saw: the domain of predictors fitted on this zoo
            data = _dataset(spec.dataset, spec.resolution, str(data_dir) if data_dir else None, spec.input_scale)
            manifest["input_range"] = [float(data.x_train.min()), float(data.x_train.max())]
        merge_zoos([shard_dir(out, s) for s in range(spec.n_shards)], merged, manifest=manifest, replace=True)
        result["zoo"] = str(merged)
    return result
