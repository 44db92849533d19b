"""Spectral features per layer, as a weightwatch plugin.

Each layer's kernel is read as a matrix (fan-in x units); the plugin adds the
extractor ``spectral``: per layer the top singular value, the stable rank
(||W||_F^2 / sigma_max^2) and the effective rank (exp of the entropy of the
normalised singular values, Roy & Vetterli 2007).
"""

import numpy as np
from weightwatch.features import Extractor
from weightwatch.hookspecs import hookimpl


def layer_spectrum(kernel: np.ndarray) -> np.ndarray:
    matrix = kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)
    return np.linalg.svd(matrix, compute_uv=False)


def spectral_features(network) -> np.ndarray:
    out = []
    for layer in network:
        s = layer_spectrum(layer.kernel)
        top = float(s[0]) if s.size else 0.0
        stable = float((s**2).sum() / top**2) if top > 0 else 0.0
        p = s / s.sum() if s.sum() > 0 else s
        nz = p[p > 0]
        effective = float(np.exp(-(nz * np.log(nz)).sum())) if nz.size else 0.0
        out += [top, stable, effective]
    return np.array(out)


def spectral_names(network):
    return [f"l{i}.{what}" for i in range(len(network)) for what in ("sigma_max", "stable_rank", "effective_rank")]


@hookimpl
def register_extractors(register):
    register(Extractor("spectral", spectral_features, spectral_names,
                       "per layer: top singular value, stable rank, effective rank"))
