"""A residual family for the paper's Table 4: Wide-ResNets (basic blocks, BatchNorm), trained by Keras' own fit.

The paper ranks the 216 Wide-ResNet32 networks of the DEMOGEN collection (widths x1, x2, x4, CIFAR-10) with
a GBM fitted on the small CNN zoo. This family is that experiment scaled to this project's machine: a
pre-activation Wide-ResNet of depth ``6 * blocks + 4`` (default 10: a stem conv, three stages of one basic
block, a dense classifier) with stage widths ``base * widen`` (default base (4, 8, 16): widths (4, 8, 16),
(8, 16, 32) and (16, 32, 64) for x1, x2 and x4, against WRN's (16, 32, 64) * k). Its last layer is a dense
classifier, so the paper's W_L^4 statistics exist for it as for the small CNN.

Its hyperparameters vary the way DEMOGEN's do (:func:`sample_configs`): learning rate, weight decay, batch
size, data augmentation on or off, dropout, label noise or not. It is registered through the
``register_architectures`` hook like every family, and :mod:`weightwatch.zoo.build` trains it with
:mod:`weightwatch.zoo.keras_training` (the population trainer covers chains only).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from .._compat import require
from ..errors import InvalidArgumentError
from .architectures import KerasTrainedFamily, layer_seed
from .hparams import member_seed

__all__ = ["WideResNet", "RESIDUAL_FAMILIES", "RESIDUAL_RANGES", "sample_configs"]

#: DEMOGEN-like variation (each value equally likely; numbers drawn log-uniformly between the two bounds):
#: SGD with momentum 0.9 and a cosine-decayed learning rate, weight decay (Keras L2 on every kernel), batch
#: size, random-shift augmentation, dropout inside each block, 20% of the training labels replaced by random
#: ones.
RESIDUAL_RANGES: dict[str, Any] = {
    "learning_rate": (0.02, 0.3),
    "l2reg": (0.0, 1e-4, 5e-4, 2e-3),
    "batch_size": (16, 32, 64),
    "augment": (0, 1),
    "dropout": (0.0, 0.0, 0.3),
    "label_noise": (0.0, 0.0, 0.2),
}
#: Settings every run shares (recorded in its config like the drawn ones). 500 training images per network
#: (of mnist5k's 4,000): few enough that the wider networks memorise them, label noise included, in 40 epochs.
FIXED = {"optimizer": "sgd_momentum", "activation": "relu", "w_init": "he_normal", "b_init": "zeros",
         "init_std": float("nan"), "train_fraction": 0.125}
#: BatchNorm's moving-average momentum. Keras' default (0.99) averages over ~100 steps; our runs take 8 to 32
#: steps per epoch, so with it the moving statistics lag the weights and a network scores far below its
#: training accuracy in inference mode (measured: 0.25 against 0.49 at epoch 20 of a batch-128 run). 0.9
#: (PyTorch's default, 0.1 in its convention) follows the weights within ~10 steps.
BN_MOMENTUM = 0.9


def sample_configs(n: int, *, seed: int, dataset: str, architecture: str, epochs: int,
                   start_index: int = 0) -> list[dict]:
    """``n`` configurations; configuration ``i`` depends only on ``(seed, start_index + i)``."""
    if n < 0 or seed < 0 or start_index < 0:
        raise InvalidArgumentError(f"n, seed and start_index must be non-negative, got {n}, {seed}, {start_index}")
    out = []
    for i in range(n):
        index = start_index + i
        rng = np.random.default_rng([int(seed), int(index), 30])
        lo, hi = RESIDUAL_RANGES["learning_rate"]
        cfg = dict(FIXED)
        cfg["learning_rate"] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        for key in ("l2reg", "batch_size", "augment", "dropout", "label_noise"):
            values = RESIDUAL_RANGES[key]
            cfg[key] = values[int(rng.integers(len(values)))]
        cfg["batch_size"] = int(cfg["batch_size"])
        cfg["augment"] = int(cfg["augment"])
        cfg.update(dataset=dataset, dnn_architecture=architecture, epochs=int(epochs),
                   random_seed=member_seed(seed, index))
        out.append(cfg)
    return out


@dataclass(frozen=True)
class WideResNet(KerasTrainedFamily):
    """A pre-activation Wide-ResNet: conv, then per stage ``blocks`` basic blocks (BN-ReLU-conv3x3-(dropout)-
    BN-ReLU-conv3x3, plus the input, through a 1x1 conv when the shape changes), BN-ReLU, global average
    pooling, dense logits. Stages 2 and 3 start with stride 2. Convs have no bias (BatchNorm follows)."""

    name: str
    widen: int = 1
    base: tuple[int, ...] = (4, 8, 16)
    blocks: int = 1
    bn_momentum: float = BN_MOMENTUM
    num_classes: int | None = 10
    #: per-config keys beyond the zoo's :data:`~weightwatch.zoo.storage.CONFIG_KEYS`, recorded in the metrics
    extra_config_keys: tuple[str, ...] = ("batch_size", "augment", "label_noise")

    def __post_init__(self) -> None:
        if self.widen < 1 or self.blocks < 1 or not self.base:
            raise InvalidArgumentError(f"{self.name}: widen and blocks must be >= 1 and base non-empty")
        if not 0.0 <= self.bn_momentum < 1.0:
            raise InvalidArgumentError(f"{self.name}: bn_momentum must be in [0, 1), got {self.bn_momentum}")

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(int(b) * int(self.widen) for b in self.base)

    @property
    def depth(self) -> int:
        return 2 * self.blocks * len(self.base) + 4

    def for_classes(self, num_classes: int, dataset: str | None = None) -> "WideResNet":
        if self.num_classes is None:
            return replace(self, num_classes=int(num_classes))
        if self.num_classes != num_classes:
            what = f"dataset {dataset!r}" if dataset else "the dataset"
            raise InvalidArgumentError(f"{what} has {num_classes} classes but architecture {self.name!r} outputs "
                                       f"{self.num_classes}; pick a matching pair")
        return self

    def sample_configs(self, n: int, *, seed: int, dataset: str, epochs: int, start_index: int = 0) -> list:
        return sample_configs(n, seed=seed, dataset=dataset, architecture=self.name, epochs=epochs,
                              start_index=start_index)

    def check_input(self, input_shape: Sequence[int]) -> None:
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 3:
            raise InvalidArgumentError(f"{self.name} takes (H, W, C) images, got input shape {shape}")
        if min(shape[:2]) < 2 ** (len(self.base) - 1):
            raise InvalidArgumentError(f"input {shape} too small for {self.name}")

    def build_keras_model(self, config: Mapping[str, Any], input_shape: Sequence[int]):
        """The (uncompiled) functional Keras model, logits out; initialisers seeded from the config."""
        keras = require("keras", "building zoo networks")
        self.check_input(input_shape)
        if self.num_classes is None:
            raise InvalidArgumentError(f"size {self.name} with for_classes(k) first")
        L = keras.layers
        seed = int(config["random_seed"])
        reg = keras.regularizers.L2(float(config.get("l2reg", 0.0))) if float(config.get("l2reg", 0.0)) else None
        rate = float(config.get("dropout", 0.0))
        count = iter(range(10_000))

        def conv(h, filters, size, stride, name):
            i = next(count)
            return L.Conv2D(filters, size, strides=stride, padding="same", use_bias=False, name=name,
                            kernel_initializer=keras.initializers.HeNormal(seed=layer_seed(seed, i, 0)),
                            kernel_regularizer=reg)(h)

        def bn_relu(h, name):
            return L.Activation("relu", name=f"{name}_relu")(
                L.BatchNormalization(momentum=self.bn_momentum, name=f"{name}_bn")(h))

        inputs = keras.Input(shape=tuple(int(s) for s in input_shape))
        h = conv(inputs, self.widths[0], 3, 1, "stem_conv")
        for s, width in enumerate(self.widths):
            for b in range(self.blocks):
                stride = 2 if (s > 0 and b == 0) else 1
                tag = f"s{s}b{b}"
                pre = bn_relu(h, f"{tag}_pre")
                shortcut = h if (stride == 1 and h.shape[-1] == width) else conv(pre, width, 1, stride,
                                                                                 f"{tag}_shortcut")
                r = conv(pre, width, 3, stride, f"{tag}_conv1")
                r = bn_relu(r, f"{tag}_mid")
                if rate:
                    r = L.Dropout(rate, seed=layer_seed(seed, next(count), 1), name=f"{tag}_dropout")(r)
                r = conv(r, width, 3, 1, f"{tag}_conv2")
                h = L.Add(name=f"{tag}_add")([shortcut, r])
        h = bn_relu(h, "head")
        h = L.GlobalAveragePooling2D(name="pool")(h)
        i = next(count)
        out = L.Dense(self.num_classes, name="dense", kernel_regularizer=reg,
                      kernel_initializer=keras.initializers.GlorotUniform(seed=layer_seed(seed, i, 0)))(h)
        return keras.Model(inputs, out, name=self.name)

    def weight_shapes(self, input_shape: Sequence[int]) -> list:
        """``[(layer, tensor, shape)]`` in Keras ``get_weights()`` order (from the built model)."""
        model = self.build_keras_model({"random_seed": 0}, input_shape)
        out = []
        for layer in model.layers:
            for w in layer.weights:
                out.append((layer.name, w.name.split("/")[-1].split(":")[0], tuple(int(d) for d in w.shape)))
        return out


#: Three widths in the ratio 1:2:4, like DEMOGEN's Wide-ResNet32 x1, x2, x4.
RESIDUAL_FAMILIES: dict[str, WideResNet] = {
    f"wrn10-x{k}": WideResNet(f"wrn10-x{k}", widen=k) for k in (1, 2, 4)
}
