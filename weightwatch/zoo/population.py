"""Fast population trainer: train many small networks at once on CPU.

``N`` members are trained as one computation: member ``n``'s activations of a
conv layer live in channels ``[n*F, (n+1)*F)`` of one tensor and every conv is
a single grouped ``tf.nn.conv2d`` (groups = N, inferred by TensorFlow; no XLA).
Dense layers are batched matmuls.  One whole epoch runs inside one
``tf.function`` (``tf.while_loop`` over steps, batches gathered by index).

Semantics per member (chosen to match one Keras ``model.fit`` run of
:func:`weightwatch.zoo.architectures.build_keras_model`):

* Loss minimized: mean sparse softmax cross-entropy over the batch plus the
  Keras L2 penalty ``l2reg * sum(w**2)`` over regularized kernels (every conv
  kernel and hidden dense kernel).  **Reported losses are cross-entropy only**
  (mean over examples, no L2 term), in inference mode (no dropout).
* The member's ``optimizer``, with Keras 3 defaults and formulas:
  ``"adam"`` (beta1=0.9, beta2=0.999, eps=1e-7, ``alpha = lr*sqrt(1-b2^t)/(1-b1^t)``, per-member step
  counter ``t``); ``"sgd"`` (``w -= lr*g``); ``"sgd_momentum"`` (SGD with momentum 0.9:
  ``m = 0.9*m - lr*g; w += m``); ``"rmsprop"`` (rho=0.9, eps=1e-7: ``v = 0.9*v + 0.1*g^2;
  w -= lr*g/sqrt(v + eps)``). :func:`~weightwatch.zoo.architectures.keras_optimizer` builds the same Keras
  optimizer.
* BatchNormalization (``spec.batchnorm``) as Keras' defaults: in training
  each member's conv outputs are normalised by the mean and biased variance
  of its own examples in the batch (padding of a short batch excluded), and
  its moving averages move by ``0.01`` towards them at every step it takes;
  evaluation uses the moving averages. gamma and beta are trained by the
  optimizer, without L2.
* Data: the member's subset is the first ``round(train_fraction * n)``
  examples of ``default_rng([random_seed, 1]).permutation(n)``; epoch ``e``
  (0-based) visits the subset in the order
  ``default_rng([random_seed, 2, e]).permutation(len(subset))``.  Members
  whose epoch is exhausted are masked (no update, Adam step not advanced);
  a short last batch is averaged over its actual size, like Keras.
* Dropout: inverted dropout (drop with prob ``rate``, scale ``1/(1-rate)``)
  after every conv / hidden dense activation; the drop probability is
  ``rate`` rounded to a multiple of 2**-16 (16-bit random numbers, for speed).  The random masks depend on
  the population composition, so they are reproducible only for the same
  population (they cannot match Keras' random stream).
* Train metrics are measured on the member's own training subset (the
  distinct examples its batch orders visit; for the default rule its
  ``train_fraction`` subset, whatever ``x_train`` holds, e.g. augmented
  copies), test metrics on the whole ``x_test``.
* A member whose loss or updated weights become non-finite is frozen: its
  weights are kept at the last finite values (reported at all later
  checkpoints), its metrics are NaN from then on, ``status == "nan"``, and
  its working copy is zeroed so it cannot disturb other members.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from weightwatch._compat import require
from weightwatch.errors import InvalidArgumentError, ZooBuildError
from weightwatch.network import NORM_TENSORS
from weightwatch.zoo.architectures import (BIAS_INITIALIZERS, is_bias_initializer, OPTIMIZERS, SGD_MOMENTUM, WEIGHT_INITIALIZERS,
                                           ArchitectureSpec, get_architecture, param_shapes, weight_shapes)
from weightwatch.zoo.architectures import initial_weights as _keras_initial_weights

__all__ = [
    "Checkpoint",
    "MemberResult",
    "train_population",
    "member_batch_orders",
    "member_subset",
    "plan_populations",
    "configure_threads",
    "validate_configs",
    "DEFAULT_CHECKPOINTS",
    "ACTIVATIONS",
]

from .hparams import DEFAULT_CHECKPOINTS  # noqa: E402 - re-exported
ACTIVATIONS = ("relu", "tanh")

_BETA1 = 0.9
_BETA2 = 0.999
_EPS = 1e-7
_RHO = 0.9


@dataclass
class Checkpoint:
    """State of one member after ``epoch`` epochs (epoch 0 = initialization)."""

    epoch: int
    weights: list[np.ndarray]
    train_accuracy: float
    train_loss: float
    test_accuracy: float
    test_loss: float
    #: what Keras' ``fit`` logs for the epoch that ended here: training-mode loss (with L2) and accuracy averaged
    #: over the epoch's examples (NaN at epoch 0 and for a member that diverged)
    fit_loss: float = float("nan")
    fit_accuracy: float = float("nan")


@dataclass
class MemberResult:
    """Training outcome of one configuration.

    Attributes
    ----------
    config : dict
        The configuration.
    status : str
        ``"ok"`` or ``"nan"``.
    checkpoints : dict of int to Checkpoint
        Keyed by epoch; weights in Keras ``get_weights()`` order/layouts.
    nan_epoch : int or None
        1-based epoch during which the member became non-finite.
    """

    config: dict
    status: str
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    nan_epoch: int | None = None

    @property
    def final(self) -> Checkpoint:
        """Checkpoint with the largest epoch."""
        return self.checkpoints[max(self.checkpoints)]


def _onednn_enabled(tf) -> bool | None:
    """Whether TensorFlow runs its oneDNN kernels (None: cannot tell)."""
    import sys

    probe = sys.modules.get("tensorflow.python.util._pywrap_util_port")  # loaded by TensorFlow at its import
    try:
        return None if probe is None else bool(probe.IsMklEnabled())
    except Exception:  # a TensorFlow without the probe: let the kernels speak
        return None


def _tensorflow():
    """TensorFlow (with its oneDNN kernels), or an error naming what is missing."""
    tf = require("tensorflow", "training zoo populations")
    if _onednn_enabled(tf) is False:
        raise ZooBuildError(
            "the population trainer needs TensorFlow's oneDNN kernels (grouped convolutions), and TensorFlow was "
            "imported with them off: set TF_ENABLE_ONEDNN_OPTS=1 before anything imports TensorFlow "
            f"(it is {os.environ.get('TF_ENABLE_ONEDNN_OPTS')!r} now)")
    return tf


def configure_threads(intra_op: int = 1, inter_op: int = 1) -> bool:
    """Set TensorFlow thread pools; returns False if TF was already initialized."""
    tf = _tensorflow()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(intra_op))
        tf.config.threading.set_inter_op_parallelism_threads(int(inter_op))
        return True
    except RuntimeError:
        return False


def member_subset(config: Mapping[str, Any], n_train: int) -> np.ndarray:
    """The member's training subset: indices into ``x_train``, in the order the rule draws them."""
    n_sub = max(1, int(round(float(config["train_fraction"]) * n_train)))
    return np.random.default_rng([int(config["random_seed"]), 1]).permutation(n_train)[:n_sub]


def member_batch_orders(config: Mapping[str, Any], n_train: int, epochs: int) -> list[np.ndarray]:
    """Per-epoch example orders (indices into ``x_train``) for one member."""
    subset = member_subset(config, n_train)
    seed = int(config["random_seed"])
    return [subset[np.random.default_rng([seed, 2, e]).permutation(len(subset))] for e in range(epochs)]


def plan_populations(
    configs: Sequence[Mapping[str, Any]],
    population_size: int,
    group_keys: Sequence[str] = ("activation", "train_fraction"),
) -> list[list[int]]:
    """Split member indices into populations of at most ``population_size``.

    Members are first split strictly by the first of ``group_keys``
    (default ``activation``: homogeneous populations avoid computing both
    activations), then sorted (stably) by the remaining keys (default
    ``train_fraction``, so members with similar numbers of steps per epoch
    share a population) and cut into ``ceil(n_group / population_size)``
    nearly equal consecutive chunks.
    """
    if population_size < 1:
        raise InvalidArgumentError(f"population_size must be >= 1, got {population_size}")
    group_keys = tuple(group_keys)
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(str(c[group_keys[0]]) if group_keys else "", []).append(i)
    plan = []
    for g in sorted(groups):
        order = sorted(groups[g], key=lambda i: tuple(float(configs[i][k]) if isinstance(configs[i][k], (int, float))
                                                          else str(configs[i][k]) for k in group_keys[1:]))
        n_pop = math.ceil(len(order) / population_size)
        bounds = np.linspace(0, len(order), n_pop + 1).round().astype(int)
        plan += [order[bounds[j] : bounds[j + 1]] for j in range(n_pop)]
    return plan


# --------------------------------------------------------------------------- layouts
# Population layouts: conv kernel (kh, kw, C, N, F), conv bias (N, F),
# dense kernel (N, in, out), dense bias (N, out).  Member axis: 3 for conv
# kernels, 0 otherwise.


def validate_configs(configs: Sequence[Mapping[str, Any]]) -> None:
    """Refuse hyperparameter values population training does not support, before any training."""
    for i, c in enumerate(configs):
        problems = []
        if c.get("activation", "relu") not in ACTIVATIONS:
            problems.append(f"activation {c['activation']!r} (supported: {', '.join(ACTIVATIONS)})")
        if c.get("optimizer", "adam") not in OPTIMIZERS:
            problems.append(f"optimizer {c['optimizer']!r} (supported: {', '.join(OPTIMIZERS)})")
        if c.get("w_init", WEIGHT_INITIALIZERS[0]) not in WEIGHT_INITIALIZERS:
            problems.append(f"w_init {c['w_init']!r} (supported: {', '.join(WEIGHT_INITIALIZERS)})")
        if not is_bias_initializer(c.get("b_init", "zeros")):
            problems.append(f"b_init {c['b_init']!r} (supported: {', '.join(BIAS_INITIALIZERS)})")
        if not 0 <= float(c.get("dropout", 0.0)) < 1:
            problems.append(f"dropout {c['dropout']!r} (must be in [0, 1))")
        if not 0 < float(c.get("train_fraction", 1.0)) <= 1:
            problems.append(f"train_fraction {c['train_fraction']!r} (must be in (0, 1])")
        if not float(c.get("learning_rate", 1.0)) > 0:
            problems.append(f"learning_rate {c['learning_rate']!r} (must be > 0)")
        if problems:
            raise InvalidArgumentError(f"configuration {i}: unsupported {'; '.join(problems)}")


def _member_axes(spec: ArchitectureSpec) -> list[int]:
    axes = []
    for _ in spec.conv_filters:
        axes += [3, 0] + [0] * (len(NORM_TENSORS) if spec.batchnorm else 0)
    for _ in range(len(spec.dense_hidden) + 1):
        axes += [0, 0]
    return axes


def _layer_slots(spec: ArchitectureSpec) -> list[int]:
    """Index in the weight list of each layer's kernel (a BatchNormalization's tensors follow its conv's bias)."""
    slots, i = [], 0
    for _ in spec.conv_filters:
        slots.append(i)
        i += 2 + (len(NORM_TENSORS) if spec.batchnorm else 0)
    for _ in range(len(spec.dense_hidden) + 1):
        slots.append(i)
        i += 2
    return slots


def _regularized(spec: ArchitectureSpec) -> list[bool]:
    """Per weight tensor: does the L2 penalty apply (every conv and hidden dense kernel)?"""
    n_hidden = len(spec.conv_filters) + len(spec.dense_hidden)
    flags = [False] * len(_member_axes(spec))
    for li, slot in enumerate(_layer_slots(spec)):
        flags[slot] = li < n_hidden
    return flags


def _moving(spec: ArchitectureSpec) -> list[bool]:
    """Per weight tensor: a BatchNormalization moving statistic (state updated by the forward pass, not trained)."""
    flags = [False] * len(_member_axes(spec))
    if spec.batchnorm:
        for slot in _layer_slots(spec)[: len(spec.conv_filters)]:
            flags[slot + 4] = flags[slot + 5] = True
    return flags


def _stack(member_weights: Sequence[Sequence[np.ndarray]], axes: Sequence[int]) -> list[np.ndarray]:
    return [
        np.ascontiguousarray(np.stack([np.asarray(w[j], np.float32) for w in member_weights], axis=ax))
        for j, ax in enumerate(axes)
    ]


def _unstack(stacked: Sequence[np.ndarray], axes: Sequence[int], n: int) -> list[list[np.ndarray]]:
    return [[np.ascontiguousarray(np.take(t, i, axis=ax)) for t, ax in zip(stacked, axes)] for i in range(n)]


# --------------------------------------------------------------------------- tf functions
_FN_CACHE: dict[Any, Any] = {}


def _dropout(tf, h, rate, seed):
    """Inverted dropout with a per-element (broadcast) ``rate`` (Keras semantics).

    Keeps an element with probability ``1 - rate`` and scales kept elements by
    ``1 / (1 - rate)``.  Uniforms have 16-bit resolution (two per random
    uint32, ~2x cheaper than float uniforms): keep iff
    ``u16 >= round(rate * 65536)``, so the drop probability is ``rate``
    rounded to a multiple of 2**-16.
    """
    shape = tf.shape(h)
    total = tf.reduce_prod(shape)
    bits = tf.random.stateless_uniform([(total + 1) // 2], seed=seed, minval=None, maxval=None, dtype=tf.uint32)
    u16 = tf.reshape(tf.cast(tf.bitcast(bits, tf.uint16), tf.int32), [-1])[:total]
    thr = tf.cast(tf.round(rate * 65536.0), tf.int32)
    keep = tf.reshape(u16, shape) >= thr
    return h * (tf.cast(keep, h.dtype) * (1.0 / (1.0 - rate)))


#: Keras BatchNormalization defaults.
_BN_MOMENTUM = 0.99
_BN_EPSILON = 1e-3


def _batch_moments(tf, h, wt, N, f):
    """Per member and channel, mean and (biased) variance of ``h`` ``(B, H, W, N*f)`` over the examples
    member ``n`` really has in the batch (``wt`` ``(N, B)``: 1 for its examples, 0 for padding)."""
    w = tf.reshape(tf.repeat(tf.transpose(wt), f, axis=1), [-1, 1, 1, N * f])  # (B, 1, 1, N*f)
    count = tf.maximum(tf.reduce_sum(w, axis=[0, 1, 2]) * tf.cast(tf.shape(h)[1] * tf.shape(h)[2], h.dtype), 1.0)
    mean = tf.reduce_sum(h * w, axis=[0, 1, 2]) / count
    var = tf.reduce_sum(tf.square(h - mean) * w, axis=[0, 1, 2]) / count
    return mean, var


def _forward(tf, spec, W, x, *, shared_input, act_mode, relu_n, training, rate_n, seed, bn_wt=None, moments=None):
    """Population forward pass; returns logits ``(N, B, K)``.

    ``x`` is ``(B, H, W, C)`` when ``shared_input`` else ``(N, B, H, W, C)``. With BatchNormalization,
    ``training`` normalises by the statistics of each member's examples in the batch (``bn_wt`` ``(N, B)``)
    and appends them, as ``(mean, variance)`` of shape ``(N, F)``, to the list ``moments``; otherwise the
    moving averages in ``W`` are used.
    """
    n_conv = len(spec.conv_filters)
    slots = _layer_slots(spec)
    N = tf.shape(W[-1])[0]

    def act(h, relu_mask):
        if act_mode == "relu":
            return tf.nn.relu(h)
        if act_mode == "tanh":
            return tf.tanh(h)
        return tf.where(relu_mask, tf.nn.relu(h), tf.tanh(h))

    def drop(h, rate, layer):
        return _dropout(tf, h, rate, tf.stack([seed[0], seed[1] * 64 + layer]))

    li = 0
    if n_conv:
        if shared_input:
            h = x
        else:
            s = tf.shape(x)
            h = tf.reshape(tf.transpose(x, [1, 2, 3, 0, 4]), [s[1], s[2], s[3], s[0] * s[4]])
        for j, f in enumerate(spec.conv_filters):
            p = slots[li]
            K, b = W[p], W[p + 1]
            ks = tf.shape(K)
            K = tf.reshape(K, [ks[0], ks[1], ks[2], ks[3] * ks[4]])
            h = tf.nn.conv2d(h, K, strides=spec.strides, padding=spec.padding.upper())
            h = tf.nn.bias_add(h, tf.reshape(b, [-1]))
            if spec.batchnorm:
                gamma, beta, mean, var = (tf.reshape(W[p + k], [-1]) for k in range(2, 6))
                if training:
                    mean, var = _batch_moments(tf, h, bn_wt, N, f)
                    moments.append((tf.reshape(mean, [N, f]), tf.reshape(var, [N, f])))
                h = tf.nn.batch_normalization(h, mean, var, beta, gamma, _BN_EPSILON)
            h = act(h, None if act_mode != "mixed" else tf.repeat(relu_n, f))
            if spec.pool == "max":  # per channel, so per member
                h = tf.nn.max_pool2d(h, 2, 2, "VALID")
            if training and rate_n is not None:
                h = drop(h, tf.repeat(rate_n, f), li)
            li += 1
        h = tf.reduce_mean(h, axis=[1, 2])  # (B, N*F)
        B = tf.shape(h)[0]
        h = tf.transpose(tf.reshape(h, [B, N, spec.conv_filters[-1]]), [1, 0, 2])  # (N, B, F)
        first_dense_shared = False
    else:
        if shared_input:
            h = tf.reshape(x, [tf.shape(x)[0], -1])  # (B, D)
            first_dense_shared = True
        else:
            s = tf.shape(x)
            h = tf.reshape(x, [s[0], s[1], -1])  # (N, B, D)
            first_dense_shared = False
    n_dense = len(spec.dense_hidden) + 1
    for j in range(n_dense):
        K, b = W[slots[li]], W[slots[li] + 1]
        if first_dense_shared and j == 0:
            h = tf.einsum("bd,ndk->nbk", h, K)
        else:
            h = tf.matmul(h, K)
        h = h + b[:, None, :]
        if j < n_dense - 1:
            h = act(h, relu_n[:, None, None])
            if training and rate_n is not None:
                h = drop(h, rate_n[:, None, None], li)
        li += 1
    return h


def _loss_and_correct(tf, spec: ArchitectureSpec, logits, y):
    """Per-example cross-entropy and correctness: softmax over the logits, or a 1-unit sigmoid output."""
    if spec.num_classes == 1:  # Keras: Dense(1) + BinaryCrossentropy(from_logits=True), accuracy at logit 0
        z = logits[..., 0]
        ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(y, z.dtype), logits=z)
        return ce, tf.cast(tf.equal(tf.cast(z > 0, tf.int32), y), tf.float32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    return ce, tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y), tf.float32)


def _get_fns(spec: ArchitectureSpec, act_mode: str, use_dropout: bool, opt_mode: str = "adam"):
    """The compiled epoch and evaluation of a population; ``opt_mode`` "adam" (all members) or "mixed"."""
    key = (spec, act_mode, use_dropout, opt_mode)
    if key in _FN_CACHE:
        return _FN_CACHE[key]
    tf = _tensorflow()

    axes = _member_axes(spec)
    reg = _regularized(spec)
    moving = _moving(spec)

    def bshape(ax, ndim, v):
        shape = [1] * ndim
        shape[ax] = -1
        return tf.reshape(v, shape)

    def per_member(t, ax, fn):
        red = [d for d in range(len(t.shape)) if d != ax]
        return fn(t, axis=red) if red else t

    def update(w, g, m, v, ax, lr, alpha, opt_n):
        """One optimizer step of one weight tensor for every member: new (w, m, v)."""
        a = bshape(ax, len(w.shape), alpha)
        m_adam = m + (g - m) * (1 - _BETA1)
        v_adam = v + (tf.square(g) - v) * (1 - _BETA2)
        w_adam = w - (m_adam * a) / (tf.sqrt(v_adam) + _EPS)
        if opt_mode == "adam":
            return w_adam, m_adam, v_adam
        rate = bshape(ax, len(w.shape), lr)
        mom = bshape(ax, len(w.shape), tf.where(opt_n == OPTIMIZERS.index("sgd_momentum"), SGD_MOMENTUM, 0.0))
        m_sgd = m * mom - g * rate  # momentum 0: exactly w - lr*g, like Keras' plain SGD
        v_rms = _RHO * v + (1 - _RHO) * tf.square(g)
        w_rms = w - (rate * g) / tf.sqrt(v_rms + _EPS)

        def pick(adam, sgd, rms):
            kind = bshape(ax, len(w.shape), opt_n)
            return tf.where(kind == 0, adam, tf.where(kind == OPTIMIZERS.index("rmsprop"), rms, sgd))

        return pick(w_adam, w + m_sgd, w_rms), pick(m_adam, m_sgd, m), pick(v_adam, v, v_rms)

    @tf.function(reduce_retracing=True)
    def train_epoch(W, M, V, steps, alive, frozen, x, y, idx, wts, lr, l2, rate_n, relu_n, seed, opt_n):
        W, M, V, frozen = list(W), list(M), list(V), list(frozen)
        S = tf.shape(idx)[0]

        def body(s, W, M, V, steps, alive, frozen, logs):
            i = idx[s]
            wt = wts[s]
            cnt = tf.reduce_sum(wt, axis=1)
            active = tf.logical_and(cnt > 0, alive)
            xb = tf.gather(x, i)
            yb = tf.gather(y, i)
            moments = []
            trained = [w for w, st in zip(W, moving) if not st]
            with tf.GradientTape() as tape:
                tape.watch(trained)
                logits = _forward(
                    tf, spec, W, xb, shared_input=False, act_mode=act_mode, relu_n=relu_n,
                    training=True, rate_n=rate_n if use_dropout else None, seed=tf.stack([seed, s]),
                    bn_wt=wt, moments=moments,
                )
                ce, correct = _loss_and_correct(tf, spec, logits, yb)
                loss_n = tf.reduce_sum(ce * wt, axis=1) / tf.maximum(cnt, 1.0)
                for w, ax, r in zip(W, axes, reg):
                    if r:
                        loss_n = loss_n + l2 * per_member(tf.square(w), ax, tf.reduce_sum)
                total = tf.reduce_sum(tf.where(active, loss_n, tf.zeros_like(loss_n)))
            grads = iter(tape.gradient(total, trained))
            # a moving statistic's new value: Keras' ``moving * momentum + batch * (1 - momentum)``
            batch_stats = iter([stat for pair in moments for stat in pair])
            t = steps + 1.0
            b1p = tf.pow(tf.constant(_BETA1, tf.float32), t)
            b2p = tf.pow(tf.constant(_BETA2, tf.float32), t)
            alpha = lr * tf.sqrt(1 - b2p) / (1 - b1p)
            ok = tf.math.is_finite(loss_n)
            newW, newM, newV = [], [], []
            for w, m, v, ax, st in zip(W, M, V, axes, moving):
                if st:
                    w2, m2, v2 = w * _BN_MOMENTUM + next(batch_stats) * (1.0 - _BN_MOMENTUM), m, v
                else:
                    w2, m2, v2 = update(w, next(grads), m, v, ax, lr, alpha, opt_n)
                ok = tf.logical_and(ok, per_member(tf.math.is_finite(w2), ax, tf.reduce_all))
                newW.append(w2)
                newM.append(m2)
                newV.append(v2)
            upd = tf.logical_and(active, ok)
            died = tf.logical_and(active, tf.logical_not(ok))
            outW, outM, outV, outF = [], [], [], []
            for w, w2, m, m2, v, v2, fz, ax in zip(W, newW, M, newM, V, newV, frozen, axes):
                u = bshape(ax, len(w.shape), upd)
                d = bshape(ax, len(w.shape), died)
                z = tf.zeros_like(w)
                outF.append(tf.where(d, w, fz))
                outW.append(tf.where(u, w2, tf.where(d, z, w)))
                outM.append(tf.where(u, m2, tf.where(d, z, m)))
                outV.append(tf.where(u, v2, tf.where(d, z, v)))
            steps = tf.where(upd, t, steps)
            alive = tf.logical_and(alive, tf.logical_not(died))
            # what Keras' fit logs: the training-mode loss (with its L2 term) and accuracy, averaged over the
            # examples the epoch has seen so far
            zero = tf.zeros_like(cnt)
            logs = logs + tf.stack([tf.where(active, loss_n * cnt, zero),
                                    tf.where(active, tf.reduce_sum(correct * wt, axis=1), zero),
                                    tf.where(active, cnt, zero)])
            return s + 1, outW, outM, outV, steps, alive, outF, logs

        logs0 = tf.zeros([3, tf.shape(steps)[0]], tf.float32)
        _, W, M, V, steps, alive, frozen, logs = tf.while_loop(
            lambda s, *_: s < S, body, (tf.constant(0), W, M, V, steps, alive, frozen, logs0)
        )
        return W, M, V, steps, alive, frozen, logs

    @tf.function(reduce_retracing=True)
    def evaluate(W, x, y, relu_n, wt, idx=None):
        """Per-member weighted sums ``(N,)`` of cross-entropy and of correct predictions.

        Without ``idx`` every member sees all of ``x`` (one shared input) and
        ``wt`` is ``(N, len(x))``; with ``idx`` ``(N, B)`` member ``n`` sees
        ``x[idx[n]]`` weighted by ``wt[n]``.
        """
        shared = idx is None
        if not shared:
            x, y = tf.gather(x, idx), tf.gather(y, idx)
        logits = _forward(
            tf, spec, list(W), x, shared_input=shared, act_mode=act_mode, relu_n=relu_n,
            training=False, rate_n=None, seed=None,
        )
        yb = tf.broadcast_to(y[None, :], tf.shape(logits)[:2]) if shared else y
        ce, correct = _loss_and_correct(tf, spec, logits, yb)
        return tf.reduce_sum(ce * wt, axis=1), tf.reduce_sum(correct * wt, axis=1)

    _FN_CACHE[key] = (train_epoch, evaluate)
    return _FN_CACHE[key]


# --------------------------------------------------------------------------- driver
def _as_inputs(x: np.ndarray, spec: ArchitectureSpec) -> np.ndarray:
    """Images ``(n, H, W, C)`` (``(n, H, W)`` gets a channel), or vectors ``(n, d)`` for an MLP."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim == 2 and spec.is_mlp:
        return np.ascontiguousarray(x)
    if x.ndim != 4:
        raise InvalidArgumentError(f"expected images of shape (n, H, W[, C])"
                                   f"{' or vectors (n, d)' if spec.is_mlp else ''}, got {x.shape}")
    return np.ascontiguousarray(x)


def _auto_eval_batch_size(spec: ArchitectureSpec, input_shape, n_members: int, budget: int = 2**26) -> int:
    shapes = param_shapes(spec, input_shape)
    h, w = 1, 1
    if spec.conv_filters:
        h, w = input_shape[0], input_shape[1]
        k = spec.kernel_size
        if spec.padding == "same":
            h, w = -(-h // spec.strides), -(-w // spec.strides)
        else:
            h, w = (h - k) // spec.strides + 1, (w - k) // spec.strides + 1
    per_example = max(1, h * w * shapes[0][1][-1] * n_members)
    return int(min(4096, max(32, budget // per_example)))


def _data_tensors(x_train, y_train, x_test, y_test, eval_batch_size):
    """Training tensors, and per split the evaluation batches with their ``[start, stop)`` rows."""
    tf = _tensorflow()

    xtr, ytr = tf.constant(x_train), tf.constant(y_train)
    eval_sets = [
        [(tf.constant(x[i : i + eval_batch_size]), tf.constant(y[i : i + eval_batch_size]),
          i, min(i + eval_batch_size, len(x))) for i in range(0, len(x), eval_batch_size)]
        for x, y in ((x_train, y_train), (x_test, y_test))
    ]
    return xtr, ytr, eval_sets


# Per example, a forward pass with per-member inputs costs ~1.8x one with a shared input
# (measured, paper CNN at 16x16 and 28x28): members evaluate on their own gathered subsets
# only when every subset is smaller than this fraction of the training set.
_GATHER_BELOW = 0.5


def _subset_eval_batches(tf, subsets, xtr, ytr, shared_batches, n_train):
    """Evaluation batches ``(x, y, weights, idx)`` that count member ``n``'s examples ``subsets[n]`` once each."""
    N = len(subsets)
    eb = max(hi - lo for *_, lo, hi in shared_batches) if shared_batches else 1
    longest = max((len(s) for s in subsets), default=0)
    if longest >= _GATHER_BELOW * n_train:  # one shared pass over x_train, other members' examples weighted 0
        in_subset = np.zeros((N, n_train), np.float32)
        for i, sub in enumerate(subsets):
            in_subset[i, sub] = 1.0
        return [(xb, yb, tf.constant(in_subset[:, lo:hi]), None) for xb, yb, lo, hi in shared_batches]
    idx = np.zeros((N, longest), np.int32)  # padded with example 0, weighted 0
    wt = np.zeros((N, longest), np.float32)
    for i, sub in enumerate(subsets):
        idx[i, : len(sub)] = np.sort(sub)
        wt[i, : len(sub)] = 1.0
    return [(xtr, ytr, tf.constant(wt[:, lo : lo + eb]), tf.constant(idx[:, lo : lo + eb]))
            for lo in range(0, longest, eb)]


def _train_one_population(spec, configs, tensors, *, batch_size, checkpoints, init_w, orders, subsets, seed):
    tf = _tensorflow()

    N = len(configs)
    acts = {c["activation"] for c in configs}
    for a in acts:
        if a not in ACTIVATIONS:
            raise InvalidArgumentError(f"unsupported activation {a!r}")
    act_mode = acts.pop() if len(acts) == 1 else "mixed"
    rates = np.array([float(c["dropout"]) for c in configs], np.float32)
    if np.any(rates < 0) or np.any(rates >= 1):
        raise InvalidArgumentError("dropout rates must be in [0, 1)")
    use_dropout = bool(np.any(rates > 0))
    opt_n = np.array([OPTIMIZERS.index(c.get("optimizer", "adam")) for c in configs], np.int32)
    train_epoch, evaluate = _get_fns(spec, act_mode, use_dropout, "adam" if not opt_n.any() else "mixed")
    opt_n = tf.constant(opt_n)

    axes = _member_axes(spec)
    W = [tf.constant(t) for t in _stack(init_w, axes)]
    M = [tf.zeros_like(w) for w in W]
    V = [tf.zeros_like(w) for w in W]
    frozen = list(W)
    steps = tf.zeros([N], tf.float32)
    alive = tf.ones([N], tf.bool)
    lr = tf.constant([float(c["learning_rate"]) for c in configs], tf.float32)
    l2 = tf.constant([float(c["l2reg"]) for c in configs], tf.float32)
    rate_n = tf.constant(rates)
    relu_n = tf.constant([c["activation"] == "relu" for c in configs])

    xtr, ytr, (train_batches, test_batches) = tensors
    n_train = int(xtr.shape[0])
    eval_sets = [
        (_subset_eval_batches(tf, subsets, xtr, ytr, train_batches, n_train), np.array([len(s) for s in subsets], float)),
        ([(xb, yb, tf.ones([N, hi - lo]), None) for xb, yb, lo, hi in test_batches],
         np.full(N, float(sum(hi - lo for *_, lo, hi in test_batches)))),
    ]

    results = [MemberResult(config=dict(c), status="ok") for c in configs]
    n_epochs = max(checkpoints)
    alive_np = np.ones(N, bool)

    fit_logs = np.full((2, N), np.nan)  # the last epoch's training-mode loss and accuracy (Keras' logs)

    def record(epoch):
        alive_now = alive.numpy()
        stacked = [np.where(_bshape_np(a, w.ndim, alive_now), w, f) for w, f, a in zip(
            [t.numpy() for t in W], [t.numpy() for t in frozen], axes)]
        per_member = _unstack(stacked, axes, N)
        metrics = []
        for batches, n_ex in eval_sets:
            ce_sum = np.zeros(N, np.float64)
            acc_sum = np.zeros(N, np.float64)
            for xb, yb, wt, idx in batches:
                ce, corr = evaluate(W, xb, yb, relu_n, wt, idx)
                ce_sum += ce.numpy()
                acc_sum += corr.numpy()
            denom = np.where(n_ex > 0, n_ex, np.nan)  # empty split or subset -> NaN metrics
            metrics.append((acc_sum / denom, ce_sum / denom))
        for i in range(N):
            vals = [metrics[0][0][i], metrics[0][1][i], metrics[1][0][i], metrics[1][1][i]]
            vals += [fit_logs[0][i], fit_logs[1][i]]
            if not alive_now[i]:
                vals = [float("nan")] * 6
            results[i].checkpoints[epoch] = Checkpoint(epoch, per_member[i], *(float(v) for v in vals))

    if 0 in checkpoints:
        record(0)
    for e in range(n_epochs):
        per = [np.asarray(orders[i][e], dtype=np.int64) for i in range(N)]  # range checked by the caller
        S = max(1, max(math.ceil(len(p) / batch_size) for p in per))
        idx = np.zeros((S, N, batch_size), np.int32)
        wts = np.zeros((S, N, batch_size), np.float32)
        for i, p in enumerate(per):
            flat_i = np.zeros(S * batch_size, np.int32)
            flat_w = np.zeros(S * batch_size, np.float32)
            flat_i[: len(p)] = p
            flat_w[: len(p)] = 1.0
            idx[:, i, :] = flat_i.reshape(S, batch_size)
            wts[:, i, :] = flat_w.reshape(S, batch_size)
        W, M, V, steps, alive, frozen, logs = train_epoch(
            W, M, V, steps, alive, frozen, xtr, ytr, tf.constant(idx), tf.constant(wts), lr, l2, rate_n, relu_n,
            tf.constant(int((seed * 1009 + e) % (2**31 - 1)), tf.int32), opt_n,
        )
        W, M, V, frozen = list(W), list(M), list(V), list(frozen)
        loss_sum, correct_sum, seen = logs.numpy().astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            fit_logs = np.stack([loss_sum / seen, correct_sum / seen])
        new_alive = alive.numpy()
        for i in np.flatnonzero(alive_np & ~new_alive):
            results[i].status = "nan"
            results[i].nan_epoch = e + 1
        alive_np = new_alive
        if (e + 1) in checkpoints:
            record(e + 1)
    return results


def _bshape_np(ax, ndim, v):
    shape = [1] * ndim
    shape[ax] = -1
    return v.reshape(shape)


def train_population(
    configs: Sequence[Mapping[str, Any]],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    architecture: str | ArchitectureSpec = "paper-cnn",
    batch_size: int = 32,
    checkpoints: Sequence[int] = DEFAULT_CHECKPOINTS,
    initial_weights: Sequence[Sequence[np.ndarray]] | None = None,
    batch_orders: Sequence[Sequence[np.ndarray]] | None = None,
    eval_batch_size: int | None = None,
    population_size: int = 64,
    group_keys: Sequence[str] = ("activation", "train_fraction"),
    verbose: bool = False,
) -> list[MemberResult]:
    """Train every configuration, many at once, and return per-member results.

    Parameters
    ----------
    configs : sequence of dict
        Configs from :func:`weightwatch.zoo.hparams.sample_configs` (uses
        ``learning_rate, l2reg, dropout, activation, w_init, init_std,
        train_fraction, random_seed`` and ``optimizer``, one of :data:`~weightwatch.zoo.architectures.OPTIMIZERS`).
    x_train, y_train, x_test, y_test : ndarray
        Images ``(n, H, W[, C])`` (float32, NHWC), or vectors ``(n, d)`` for an
        MLP, and integer labels.
    architecture : str or ArchitectureSpec
        Network family (one sized by its data, ``num_classes=None``, takes the
        largest label + 1; pass ``spec.for_classes(k)`` to be explicit).
    batch_size : int
        Mini-batch size.
    checkpoints : sequence of int
        Epochs at which weights and metrics are recorded (0 = init); the
        number of epochs trained is ``max(checkpoints)``.
    initial_weights : sequence of list of ndarray, optional
        Per member, weights in Keras ``get_weights()`` order; default draws
        them with the seeded Keras initializers of ``build_keras_model``.
    batch_orders : sequence of list of ndarray, optional
        Per member, per epoch, the indices into ``x_train`` in visiting order
        (overrides the subset / shuffling rule); the member's training subset,
        on which its train metrics are measured, is then the set of indices
        its first ``max(checkpoints)`` epochs visit.
    eval_batch_size : int, optional
        Batch size for checkpoint evaluation; default: as large as keeps the
        first layer's population activations at about 2**26 floats (256 MB).
    population_size : int
        Maximum members trained together.
    group_keys : sequence of str
        Config keys used to group similar members into populations.
    verbose : bool
        Print per-population timings.

    Returns
    -------
    list of MemberResult
        In the order of ``configs``.
    """
    spec = get_architecture(architecture)
    x_train, x_test = _as_inputs(x_train, spec), _as_inputs(x_test, spec)
    y_train = np.asarray(y_train, np.int32).reshape(-1)
    y_test = np.asarray(y_test, np.int32).reshape(-1)
    if spec.num_classes is None:  # a family sized by its data: the labels say how many classes
        spec = spec.for_classes(max(2, int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1))
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise InvalidArgumentError("x and y lengths differ")
    if y_train.size and (y_train.min() < 0 or y_train.max() >= max(2, spec.num_classes)):
        raise InvalidArgumentError("train labels out of range")
    checkpoints = tuple(sorted({int(c) for c in checkpoints}))
    if not checkpoints or checkpoints[0] < 0:
        raise InvalidArgumentError("checkpoints must be non-negative epochs")
    n_epochs = max(checkpoints)
    n = len(configs)
    validate_configs(configs)
    if initial_weights is not None and len(initial_weights) != n:
        raise InvalidArgumentError("initial_weights must have one entry per config")
    if batch_orders is not None:
        if len(batch_orders) != n:
            raise InvalidArgumentError("batch_orders must have one entry per config")
        if any(len(b) < n_epochs for b in batch_orders):
            raise InvalidArgumentError(f"batch_orders must cover {n_epochs} epochs")
    input_shape = x_train.shape[1:]
    expected = [shape for *_, shape in weight_shapes(spec, input_shape)]

    results: list[MemberResult | None] = [None] * n
    if eval_batch_size is None:
        eval_batch_size = _auto_eval_batch_size(spec, input_shape, min(population_size, max(n, 1)))
    tensors = _data_tensors(x_train, y_train, x_test, y_test, int(eval_batch_size)) if n else None
    for members in plan_populations(configs, population_size, tuple(group_keys)):
        t0 = time.perf_counter()
        cfgs = [configs[i] for i in members]
        if initial_weights is not None:
            init_w = [[np.asarray(w, np.float32) for w in initial_weights[i]] for i in members]
        else:
            init_w = [_keras_initial_weights(spec, c, input_shape) for c in cfgs]
        for w in init_w:
            if [tuple(a.shape) for a in w] != [tuple(s) for s in expected]:
                raise InvalidArgumentError(f"initial weights shapes {[a.shape for a in w]} != expected {expected}")
        if batch_orders is not None:
            orders = [[np.asarray(o, np.int64) for o in batch_orders[i][:n_epochs]] for i in members]
            if any(len(o) and (o.min() < 0 or o.max() >= len(x_train)) for per in orders for o in per):
                raise InvalidArgumentError("batch order indices out of range")
            subsets = [np.unique(np.concatenate(per)) if per else np.zeros(0, np.int64) for per in orders]
        else:
            orders = [member_batch_orders(c, len(x_train), n_epochs) for c in cfgs]
            subsets = [member_subset(c, len(x_train)) for c in cfgs]
        seed = int(sum(int(c["random_seed"]) for c in cfgs) % (2**31 - 1))
        res = _train_one_population(
            spec, cfgs, tensors, batch_size=batch_size, checkpoints=checkpoints, init_w=init_w, orders=orders,
            subsets=subsets, seed=seed,
        )
        for i, r in zip(members, res):
            r.config = dict(configs[i])
            results[i] = r
        if verbose:
            print(f"population of {len(members)}: {time.perf_counter() - t0:.2f}s")
    return results  # type: ignore[return-value]

