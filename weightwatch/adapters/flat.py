"""Flat parameter vector + layout (the Small CNN Zoo ``layout.csv`` convention).

A layout row is ``(varname, start_idx, end_idx, shape)``; a layer's tensors
are grouped by the varname's prefix (``sequential/conv2d/kernel:0`` ->
layer ``sequential/conv2d``, tensor ``kernel``). The release orders each
layer's bias before its kernel, so columns are always mapped through the
layout, never by position. Kernels are in Keras layout already. A
BatchNormalization layer (``gamma``, ``beta``, ``moving_mean``,
``moving_variance``) is skipped and recorded in ``Network.meta["skipped"]``,
as the Keras adapter does.
"""

from __future__ import annotations

import ast
import csv
import os
import re
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..network import NORM_TENSORS, LayerWeights, Network, WeightsError
from . import Adapter


@dataclass(frozen=True)
class LayoutRow:
    varname: str
    start_idx: int
    end_idx: int
    shape: tuple

    @property
    def layer(self) -> str:
        base = re.sub(r":\d+$", "", self.varname)
        return base.rsplit("/", 1)[0] if "/" in base else base

    @property
    def tensor(self) -> str:
        base = re.sub(r":\d+$", "", self.varname)
        return base.rsplit("/", 1)[-1]


def parse_shape(text) -> tuple:
    if isinstance(text, (tuple, list)):
        return tuple(int(v) for v in text)
    s = str(text).strip()
    try:
        value = ast.literal_eval(s.replace(" ", "")) if s else ()
    except (ValueError, SyntaxError):
        value = [int(v) for v in re.findall(r"\d+", s)]
    if isinstance(value, int):
        value = (value,)
    return tuple(int(v) for v in value)


def read_layout(source) -> list:
    """Layout rows from a ``layout.csv`` path, a DataFrame, or ``(varname, start, end, shape)`` tuples."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            raise WeightsError(f"layout file {source} is empty")
        missing = {"varname", "start_idx", "end_idx", "shape"} - set(rows[0])
        if missing:
            raise WeightsError(f"layout file {source} lacks column(s) {sorted(missing)}; has {sorted(rows[0])}")
        raw = [(r["varname"], r["start_idx"], r["end_idx"], r["shape"]) for r in rows]
    elif hasattr(source, "to_dict") and hasattr(source, "columns"):
        raw = list(source[["varname", "start_idx", "end_idx", "shape"]].itertuples(index=False, name=None))
    else:
        raw = [tuple(r) if not isinstance(r, LayoutRow) else (r.varname, r.start_idx, r.end_idx, r.shape) for r in source]
    rows = []
    where = f"layout file {source}" if isinstance(source, (str, os.PathLike)) else "layout"
    for varname, start, end, shape in raw:
        try:
            row = LayoutRow(str(varname), int(start), int(end), parse_shape(shape))
        except (TypeError, ValueError) as exc:
            raise WeightsError(f"{where}: row {varname!r} is malformed ({exc})") from None
        size = int(np.prod(row.shape)) if row.shape else 1
        if row.end_idx - row.start_idx != size:
            raise WeightsError(
                f"layout row {row.varname}: start_idx..end_idx spans {row.end_idx - row.start_idx} values "
                f"but shape {row.shape} holds {size}"
            )
        rows.append(row)
    return rows


def group_layers(rows) -> dict:
    """Layout rows grouped by layer, in order of first column: ``{layer: {tensor: row}}``. Every layer has a
    kernel or is a normalisation layer (:func:`is_normalisation`); any other is a :class:`WeightsError`
    naming its tensors."""
    layers: dict = {}
    for row in sorted(rows, key=lambda r: r.start_idx):
        layers.setdefault(row.layer, {})[row.tensor] = row
    for name, tensors in layers.items():
        if not (_kernel_name(tensors) or is_normalisation(tensors)):
            raise WeightsError(f"layout layer {name!r} has no kernel (tensors: {sorted(tensors)})")
    return layers


def _kernel_name(tensors):
    return next((t for t in ("kernel", "weight", "w") if t in tensors), None)


def is_normalisation(tensors) -> bool:
    """True for a layer of a layout made of BatchNormalization's tensors only (no kernel)."""
    return _kernel_name(tensors) is None and set(tensors) <= set(NORM_TENSORS)


@dataclass(frozen=True)
class FlatWeights:
    """A flat parameter vector with its layout (one row of a zoo's ``weights.npy``)."""

    vector: np.ndarray
    layout: Sequence
    activation: Optional[str] = None
    name: str = ""


def convert(obj: FlatWeights, **_options) -> Network:
    rows = read_layout(obj.layout)
    vec = np.asarray(obj.vector)
    if vec.ndim != 1:
        raise WeightsError(f"flat weights must be a 1-D vector, got shape {vec.shape}")
    end = max(r.end_idx for r in rows)
    if vec.shape[0] < end:
        raise WeightsError(f"flat weights have {vec.shape[0]} values but the layout needs {end}")
    layers = group_layers(rows)
    names = list(layers)
    out, skipped, norm = [], [], []
    for i, (name, tensors) in enumerate(layers.items()):  # in order of first appearance
        take = {t: vec[r.start_idx : r.end_idx].reshape(r.shape) for t, r in tensors.items()}
        if is_normalisation(tensors):
            skipped.append((name, "BatchNormalization"))
            norm.append((name, take))
            continue
        kernel, bias = take[_kernel_name(take)], take.get("bias", take.get("b"))
        kind = "dense" if kernel.ndim == 2 else ("depthwise_conv" if "depthwise" in name else "conv")
        # before a normalisation layer the activation acts on its output, not this one's: unknown here, as the
        # Keras adapter reads it
        normalised = i + 1 < len(names) and is_normalisation(layers[names[i + 1]])
        out.append(LayerWeights(name, kind, kernel, bias, obj.activation if kind != "dense" and not normalised
                                else None))
    meta = {"skipped": skipped, "normalisation": norm} if skipped else {}
    return Network(tuple(out), source="flat", name=obj.name, meta=meta)


def write_layout(path, shapes: Sequence) -> list:
    """Write a layout.csv for ``shapes`` = [(varname, shape), ...] in vector order; returns the rows."""
    rows, start = [], 0
    for varname, shape in shapes:
        size = int(np.prod(shape)) if len(shape) else 1
        rows.append(LayoutRow(varname, start, start + size, tuple(int(s) for s in shape)))
        start += size
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["varname", "start_idx", "end_idx", "shape"])
        for r in rows:
            w.writerow([r.varname, r.start_idx, r.end_idx, str(tuple(r.shape))])
    return rows


ADAPTER = Adapter(
    name="flat",
    accepts=lambda obj: isinstance(obj, FlatWeights),
    convert=convert,
    priority=20,
    description="flat parameter vector + Small CNN Zoo layout.csv",
)
