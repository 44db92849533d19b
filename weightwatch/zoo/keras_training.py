"""Train zoo members one by one with Keras' own ``fit``: for families the population trainer does not cover.

A :class:`~weightwatch.zoo.architectures.KerasTrainedFamily` builds each member's model from its config; this
module trains it the way its config says and records the same checkpoints as the population trainer
(:class:`~weightwatch.zoo.population.MemberResult`), so a build stores both alike.

Per member (config keys): its training subset is :func:`~weightwatch.zoo.population.member_subset`
(``train_fraction``); ``label_noise`` replaces that share of the subset's labels by uniformly drawn classes
(fixed per member; the member trains and is scored on them, like DEMOGEN's corrupted labels); ``augment``
shifts every image by up to 2 pixels each way, drawn anew every epoch (zeros shifted in); the optimizer
(``optimizer``, ``learning_rate`` decayed by a cosine over the run when the optimizer is SGD with momentum)
runs ``epochs`` epochs at ``batch_size``. Train accuracy and loss are measured on the member's training
subset with its training labels, test ones on the test set, both in inference mode.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from .._compat import require
from .architectures import SGD_MOMENTUM, KerasTrainedFamily, keras_optimizer
from .population import Checkpoint, MemberResult, member_subset

__all__ = ["train_keras_members", "noisy_labels", "shifted"]

#: The largest shift of the augmentation, in pixels, each way.
MAX_SHIFT = 2


def noisy_labels(y: np.ndarray, share: float, num_classes: int, seed: int) -> np.ndarray:
    """``y`` with a ``share`` of its entries (chosen by ``seed``) replaced by uniformly drawn classes."""
    y = np.asarray(y).copy()
    if share <= 0:
        return y
    rng = np.random.default_rng([int(seed), 3])
    chosen = rng.random(len(y)) < float(share)
    y[chosen] = rng.integers(0, num_classes, int(chosen.sum()))
    return y


def shifted(x: np.ndarray, rng: np.random.Generator, max_shift: int = MAX_SHIFT) -> np.ndarray:
    """Every image of ``x`` (N, H, W, C) shifted by its own draw in [-max_shift, max_shift]^2, zeros shifted in."""
    n, h, w, _ = x.shape
    pad = np.pad(x, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
    dy = rng.integers(0, 2 * max_shift + 1, n)
    dx = rng.integers(0, 2 * max_shift + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    return pad[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _optimizer(config: Mapping, steps: int):
    keras = require("keras", "training zoo networks")
    if config.get("optimizer") == "sgd_momentum":
        schedule = keras.optimizers.schedules.CosineDecay(float(config["learning_rate"]), max(1, steps))
        return keras.optimizers.SGD(schedule, momentum=SGD_MOMENTUM)
    return keras_optimizer(config)


def _score(model, x, y, batch: int = 512) -> tuple:
    loss, acc = model.evaluate(x, y, batch_size=batch, verbose=0)
    return float(acc), float(loss)


def train_member(family: KerasTrainedFamily, config: Mapping, x_train, y_train, x_test, y_test, *,
                 checkpoints: Sequence[int], num_classes: int) -> MemberResult:
    """Train one member; its weights (Keras ``get_weights()`` order) and metrics at every checkpoint epoch."""
    keras = require("keras", "training zoo networks")
    seed = int(config["random_seed"])
    keras.utils.set_random_seed(seed % (2 ** 31))
    subset = member_subset(config, len(x_train))
    x, y = x_train[subset], noisy_labels(y_train[subset], float(config.get("label_noise", 0.0)), num_classes, seed)
    epochs, batch = int(config["epochs"]), int(config.get("batch_size", 32))
    model = family.build_keras_model(config, x.shape[1:])
    model.compile(optimizer=_optimizer(config, epochs * math.ceil(len(x) / batch)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    result = MemberResult(config=dict(config), status="ok")
    rng = np.random.default_rng([seed, 4])
    fit_loss = fit_acc = float("nan")
    for epoch in range(epochs + 1):
        if epoch > 0:
            xe = shifted(x, rng) if int(config.get("augment", 0)) else x
            hist = model.fit(xe, y, batch_size=batch, epochs=1, shuffle=True, verbose=0).history
            fit_loss, fit_acc = float(hist["loss"][-1]), float(hist["accuracy"][-1])
            if not math.isfinite(fit_loss):
                result.status, result.nan_epoch = "nan", epoch
                break
        if epoch in checkpoints:
            train_acc, train_loss = _score(model, x, y)
            test_acc, test_loss = _score(model, x_test, y_test)
            result.checkpoints[epoch] = Checkpoint(
                epoch=epoch, weights=[np.asarray(w) for w in model.get_weights()], train_accuracy=train_acc,
                train_loss=train_loss, test_accuracy=test_acc, test_loss=test_loss, fit_loss=fit_loss,
                fit_accuracy=fit_acc)
    return result


def train_keras_members(family: KerasTrainedFamily, configs: Sequence[Mapping], x_train, y_train, x_test, y_test,
                        *, checkpoints: Sequence[int], num_classes: int) -> list:
    """:func:`train_member` for every config, in order."""
    return [train_member(family, c, x_train, y_train, x_test, y_test, checkpoints=checkpoints,
                         num_classes=num_classes) for c in configs]
