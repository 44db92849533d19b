"""Network families of the zoo: framework-neutral specs plus a Keras builder.

A CNN spec is ``[Conv2D (-> BatchNormalization) -> activation (-> MaxPooling2D(2)) -> Dropout] *
len(conv_filters)``, then
global average pooling, then ``[Dense -> activation -> Dropout]`` per entry of
``dense_hidden``, then a ``Dense(num_classes)`` logits layer (softmax lives in
the loss).  With empty ``conv_filters`` the spec is an MLP on the flattened
image, or on vector inputs ``(d,)`` (tabular data).  ``num_classes=None``
takes the number of classes from the dataset (:meth:`ArchitectureSpec.for_classes`).  L2 regularization (``l2reg * sum(w**2)``, Keras ``L2``) applies to every
conv kernel and every hidden dense kernel, never to the output layer or biases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .._compat import require
from ..errors import InvalidArgumentError
from ..network import NORM_TENSORS

__all__ = [
    "OPTIMIZERS",
    "keras_optimizer",
    "ArchitectureSpec",
    "KerasTrainedFamily",
    "ARCHITECTURES",
    "get_architecture",
    "param_shapes",
    "weight_shapes",
    "num_params",
    "layer_seed",
    "make_initializer",
    "initial_weights",
    "build_keras_model",
    "WEIGHT_INITIALIZERS",
    "PAPER_WEIGHT_INITIALIZERS",
    "BIAS_INITIALIZERS",
    "make_bias_initializer",
    "canonical_initializer",
]

#: The initializers of the paper's zoos (appendix A.2), one-hot in its hyperparameter features.
PAPER_WEIGHT_INITIALIZERS = ("glorot_normal", "he_normal", "orthogonal", "random_normal", "truncated_normal")
#: Every initializer a zoo can sample: the paper's, plus Keras' default (``glorot_uniform``), ``he_uniform``
#: and PyTorch's default (``torch_default``: kaiming-uniform with a = sqrt(5), i.e. U(+-1/sqrt(fan_in))), what
#: networks trained with the frameworks' defaults start from.
WEIGHT_INITIALIZERS = PAPER_WEIGHT_INITIALIZERS + ("glorot_uniform", "he_uniform", "torch_default")
#: Bias initializers: zeros (Keras' default, the paper's) or PyTorch's default, U(+-1/sqrt(fan_in)).
BIAS_INITIALIZERS = ("zeros", "torch_default")
#: A bias initializer may also be a constant, named ``"constant_<value>"`` (e.g. ``"constant_-20"``): Keras'
#: ``Constant(value)`` on every bias, a way users start networks that is known to kill ReLU units.
CONSTANT_BIAS_PREFIX = "constant_"


def is_bias_initializer(name) -> bool:
    """True for a name in :data:`BIAS_INITIALIZERS` or ``"constant_<finite float>"``."""
    return name in BIAS_INITIALIZERS or constant_bias(name) is not None


def constant_bias(name):
    """The value of a ``"constant_<value>"`` bias initializer, else None."""
    if not isinstance(name, str) or not name.startswith(CONSTANT_BIAS_PREFIX):
        return None
    try:
        value = float(name[len(CONSTANT_BIAS_PREFIX):])
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def canonical_initializer(name) -> str:
    """Our name for a weight initializer, matched case-insensitively and without underscores.

    The Small CNN Zoo release spells some as Keras classes (``TruncatedNormal``,
    ``RandomNormal``); both spellings give ``truncated_normal`` / ``random_normal``.
    An unknown name (or a missing one) is an :class:`InvalidArgumentError` naming it.
    """
    key = str(name).replace("_", "").lower()
    for known in WEIGHT_INITIALIZERS:
        if known.replace("_", "") == key:
            return known
    raise InvalidArgumentError(f"unknown weight initializer {name!r}; known: {', '.join(WEIGHT_INITIALIZERS)} "
                               "(matched case-insensitively, without underscores)")


@dataclass(frozen=True)
class ArchitectureSpec:
    """Framework-neutral description of a small network.

    Parameters
    ----------
    name : str
        Architecture name.
    conv_filters : tuple of int
        Filters of each conv layer (empty for an MLP).
    kernel_size : int
        Square conv kernel size.
    strides : int
        Conv stride.
    padding : str
        ``"valid"`` or ``"same"``.
    dense_hidden : tuple of int
        Hidden dense widths after pooling (or after flattening for an MLP).
    pool : str
        ``"none"``, or ``"max"``: a 2x2 max-pooling (stride 2, valid) after
        each conv layer's activation.
    num_classes : int or None
        Number of output logits; 1: a single sigmoid logit for two classes
        (Keras ``BinaryCrossentropy(from_logits=True)``); None: the
        dataset's (see :meth:`for_classes`).
    batchnorm : bool
        A Keras ``BatchNormalization()`` (momentum 0.99, epsilon 1e-3; batch
        statistics in training, moving averages at test) between each conv
        layer and its activation.
    """

    name: str
    conv_filters: tuple[int, ...]
    kernel_size: int = 3
    strides: int = 2
    padding: str = "valid"
    dense_hidden: tuple[int, ...] = ()
    num_classes: int | None = 10
    pool: str = "none"
    batchnorm: bool = False

    def __post_init__(self) -> None:
        if self.padding not in ("valid", "same"):
            raise InvalidArgumentError(f"padding must be 'valid' or 'same', got {self.padding!r}")
        if self.pool not in ("none", "max"):
            raise InvalidArgumentError(f"pool must be 'none' or 'max', got {self.pool!r}")
        if self.batchnorm and not self.conv_filters:
            raise InvalidArgumentError("batchnorm normalises conv layers: an MLP spec (no conv_filters) cannot have it")
        if self.num_classes is not None and int(self.num_classes) < 1:
            raise InvalidArgumentError(f"num_classes must be >= 1 (1: a sigmoid output for two classes) or None "
                                       f"(the dataset's), got {self.num_classes}")

    def for_classes(self, num_classes: int, dataset: str | None = None) -> "ArchitectureSpec":
        """This family sized for a dataset of ``num_classes`` classes (a fixed size must match it;
        ``dataset`` names it in the error)."""
        from dataclasses import replace

        if self.num_classes is None:
            return replace(self, num_classes=int(num_classes))
        if self.num_classes != num_classes and not (self.num_classes == 1 and num_classes == 2):
            what = f"dataset {dataset!r}" if dataset else "the dataset"
            raise InvalidArgumentError(f"{what} has {num_classes} classes but architecture {self.name!r} "
                                       f"outputs {self.num_classes}; pick a matching pair")
        return self

    @property
    def is_mlp(self) -> bool:
        """True when the spec has no conv layers."""
        return len(self.conv_filters) == 0


class KerasTrainedFamily:
    """A zoo family the population trainer does not cover (for example a residual network): it builds its own
    Keras model and samples its own hyperparameters, and :mod:`weightwatch.zoo.build` trains it with Keras'
    ``fit`` (:mod:`weightwatch.zoo.keras_training`). Subclasses are frozen dataclasses with ``name`` and
    ``num_classes`` and implement the methods below; register them through ``register_architectures``."""

    name: str
    num_classes: int | None
    #: per-config keys beyond :data:`~weightwatch.zoo.storage.CONFIG_KEYS` that the build records
    extra_config_keys: tuple = ()

    def for_classes(self, num_classes: int, dataset: str | None = None):  # pragma: no cover - abstract
        raise NotImplementedError

    def sample_configs(self, n: int, *, seed: int, dataset: str, epochs: int, start_index: int = 0) -> list:
        raise NotImplementedError  # pragma: no cover - abstract

    def check_input(self, input_shape: Sequence[int]) -> None:
        """Raise :class:`InvalidArgumentError` if the family cannot take this input."""

    def build_keras_model(self, config: Mapping[str, Any], input_shape: Sequence[int]):
        raise NotImplementedError  # pragma: no cover - abstract

    def weight_shapes(self, input_shape: Sequence[int]) -> list:
        raise NotImplementedError  # pragma: no cover - abstract


ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "paper-cnn": ArchitectureSpec("paper-cnn", (16, 16, 16), 3, 2, "valid"),
    "cnn-deep": ArchitectureSpec("cnn-deep", (32, 32, 32, 32), 3, 2, "same"),
    "cnn-wide": ArchitectureSpec("cnn-wide", (32, 32, 32), 3, 2, "same"),
    "mlp": ArchitectureSpec("mlp", (), dense_hidden=(32, 32)),
    "mlp-tabular": ArchitectureSpec("mlp-tabular", (), dense_hidden=(16, 16), num_classes=None),
    "cnn-maxpool": ArchitectureSpec("cnn-maxpool", (16, 16, 16), 3, 1, "same", pool="max"),
    # the small CNN of many tutorials: conv -> BatchNorm -> ReLU -> 2x2 max-pool, twice, then GAP and the logits
    "cnn-bn": ArchitectureSpec("cnn-bn", (16, 32), 3, 1, "same", pool="max", batchnorm=True),
    "cnn-bn-deep": ArchitectureSpec("cnn-bn-deep", (16, 32, 32), 3, 1, "same", pool="max", batchnorm=True),
    "mlp-binary": ArchitectureSpec("mlp-binary", (), dense_hidden=(16, 16), num_classes=1),
    # the widths and depths of the shipped MLP predictor's zoos (tabular data, sized by the dataset)
    "mlp-tabular-wide": ArchitectureSpec("mlp-tabular-wide", (), dense_hidden=(32, 32), num_classes=None),
    "mlp-tabular-shallow": ArchitectureSpec("mlp-tabular-shallow", (), dense_hidden=(32,), num_classes=None),
    "mlp-tabular-narrow": ArchitectureSpec("mlp-tabular-narrow", (), dense_hidden=(16,), num_classes=None),
    "mlp-binary-wide": ArchitectureSpec("mlp-binary-wide", (), dense_hidden=(32, 32), num_classes=1),
}


def get_architecture(spec: str | ArchitectureSpec) -> ArchitectureSpec:
    """Return the spec registered under a name (or pass a spec through).

    Names are looked up among every family registered through the
    ``register_architectures`` hook: the built-ins of :data:`ARCHITECTURES`
    and those of installed plugins. A :class:`KerasTrainedFamily` is returned as it is.
    """
    if isinstance(spec, (ArchitectureSpec, KerasTrainedFamily)):
        return spec
    from ..plugins import get_registry

    table = get_registry().entries("architectures")
    if spec not in table:
        raise InvalidArgumentError(f"unknown architecture {spec!r}; known: {', '.join(sorted(table))}")
    found = table[spec].obj
    if not isinstance(found, (ArchitectureSpec, KerasTrainedFamily)):
        raise InvalidArgumentError(f"architecture {spec!r} registered by plugin {table[spec].plugin!r} is a "
                                   f"{type(found).__name__}, not a weightwatch.zoo.architectures.ArchitectureSpec "
                                   "or KerasTrainedFamily")
    return found


def _conv_out(size: int, spec: ArchitectureSpec) -> int:
    """Side of a conv block's output: the conv, then the 2x2 max-pooling if any."""
    if spec.padding == "same":
        size = -(-size // spec.strides)
    else:
        size = (size - spec.kernel_size) // spec.strides + 1
    return size // 2 if spec.pool == "max" else size


def _layer_names(spec: ArchitectureSpec) -> list[str]:
    names = []
    for i in range(len(spec.conv_filters)):
        names.append("conv2d" if i == 0 else f"conv2d_{i}")
    for i in range(len(spec.dense_hidden) + 1):
        names.append("dense" if i == 0 else f"dense_{i}")
    return names


def param_shapes(
    spec: str | ArchitectureSpec, input_shape: Sequence[int]
) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """Kernel and bias shapes in forward order (Keras layouts).

    Parameters
    ----------
    spec : str or ArchitectureSpec
        Architecture (its ``num_classes`` set, see :meth:`ArchitectureSpec.for_classes`).
    input_shape : sequence of int
        ``(H, W, C)`` of one image, or ``(d,)`` of one vector (MLPs only).

    Returns
    -------
    list of (name, kernel_shape, bias_shape)
        Conv kernels are ``(kh, kw, in, out)``, dense kernels ``(in, out)``.
    """
    spec = get_architecture(spec)
    if spec.num_classes is None:
        raise InvalidArgumentError(f"architecture {spec.name!r} takes its number of classes from the dataset: "
                                   "size it with spec.for_classes(k) first")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 1 and spec.is_mlp:
        shape = (1, 1, shape[0])
    elif len(shape) != 3:
        raise InvalidArgumentError(f"input shape {shape}: {spec.name} takes (H, W, C) images"
                                   + ("" if not spec.is_mlp else " or (d,) vectors"))
    h, w, c = shape
    names = iter(_layer_names(spec))
    out = []
    k = spec.kernel_size
    for f in spec.conv_filters:
        out.append((next(names), (k, k, c, f), (f,)))
        h, w, c = _conv_out(h, spec), _conv_out(w, spec), f
        if h <= 0 or w <= 0:
            raise InvalidArgumentError(f"input {tuple(input_shape)} too small for {spec.name}")
    d = c if not spec.is_mlp else h * w * c
    for units in (*spec.dense_hidden, spec.num_classes):
        out.append((next(names), (d, units), (units,)))
        d = units
    return out


def _batchnorm_name(i: int) -> str:
    return "batch_normalization" if i == 0 else f"batch_normalization_{i}"


def weight_shapes(spec: str | ArchitectureSpec, input_shape: Sequence[int]) -> list[tuple[str, str, tuple[int, ...]]]:
    """Every weight tensor in Keras ``get_weights()`` order: ``[(layer, tensor, shape)]``.

    ``tensor`` is ``kernel`` / ``bias``, or for a BatchNormalization layer one of
    :data:`~weightwatch.network.NORM_TENSORS` (after its conv layer's kernel and bias).
    """
    spec = get_architecture(spec)
    out = []
    for i, (layer, kernel, bias) in enumerate(param_shapes(spec, input_shape)):
        out += [(layer, "kernel", kernel), (layer, "bias", bias)]
        if spec.batchnorm and i < len(spec.conv_filters):
            out += [(_batchnorm_name(i), t, bias) for t in NORM_TENSORS]
    return out


def num_params(spec: str | ArchitectureSpec, input_shape: Sequence[int]) -> int:
    """Number of kernel and bias parameters (BatchNormalization's are not counted)."""
    return int(sum(np.prod(k) + np.prod(b) for _, k, b in param_shapes(spec, input_shape)))


def layer_seed(random_seed: int, layer_index: int, kind: int = 0) -> int:
    """Seed of layer ``layer_index`` (``kind`` 0: kernel init, 1: dropout, 2: bias init)."""
    rng = np.random.default_rng([int(random_seed), int(layer_index), int(kind)])
    return int(rng.integers(0, 2**31 - 1))


def make_initializer(config: Mapping[str, Any], seed: int):
    """Keras kernel initializer for ``config["w_init"]`` with a fixed integer seed."""
    keras = require("keras", "building zoo networks")

    name = config["w_init"]
    if name == "glorot_normal":
        return keras.initializers.GlorotNormal(seed=seed)
    if name == "he_normal":
        return keras.initializers.HeNormal(seed=seed)
    if name == "glorot_uniform":
        return keras.initializers.GlorotUniform(seed=seed)
    if name == "he_uniform":
        return keras.initializers.HeUniform(seed=seed)
    if name == "torch_default":  # torch's kaiming_uniform_(a=sqrt(5)): bound sqrt(3 * (1/3) / fan_in)
        return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform", seed=seed)
    if name == "orthogonal":
        return keras.initializers.Orthogonal(seed=seed)
    if name == "random_normal":
        return keras.initializers.RandomNormal(stddev=float(config["init_std"]), seed=seed)
    if name == "truncated_normal":
        return keras.initializers.TruncatedNormal(stddev=float(config["init_std"]), seed=seed)
    raise InvalidArgumentError(f"unknown w_init {name!r}; expected one of {WEIGHT_INITIALIZERS}")


def _check_b_init(config: Mapping[str, Any]) -> None:
    if not is_bias_initializer(config.get("b_init", "zeros")):
        raise InvalidArgumentError(f"unknown b_init {config['b_init']!r}; expected one of {BIAS_INITIALIZERS} "
                                   f"or '{CONSTANT_BIAS_PREFIX}<value>'")


def make_bias_initializer(config: Mapping[str, Any], fan_in: int, seed: int):
    """Keras bias initializer for ``config["b_init"]``; ``fan_in`` is the layer kernel's (torch's default needs it)."""
    keras = require("keras", "building zoo networks")

    _check_b_init(config)
    if config.get("b_init", "zeros") == "zeros":
        return keras.initializers.Zeros()
    value = constant_bias(config["b_init"])
    if value is not None:
        return keras.initializers.Constant(value)
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound, seed=seed)


def _fan_ins(spec, input_shape) -> list:
    """Fan-in of each kernel of ``spec``, in layer order."""
    return [int(np.prod(shape[:-1])) for _, tensor, shape in weight_shapes(spec, input_shape) if tensor == "kernel"]


def initial_weights(
    spec: str | ArchitectureSpec, config: Mapping[str, Any], input_shape: Sequence[int]
) -> list[np.ndarray]:
    """Initial weights ``[k0, b0, k1, b1, ...]`` as :func:`build_keras_model` draws them (bit for bit equal in
    ``tests/test_population.py``).

    Calls the same seeded Keras initializers directly (much faster than
    building a model). A BatchNormalization layer starts at gamma 1, beta 0,
    moving mean 0 and moving variance 1 (Keras' defaults).
    """
    _check_b_init(config)
    weights = []
    kernels = 0
    fan_in = 1
    for _, tensor, shape in weight_shapes(spec, input_shape):
        if tensor == "kernel":
            init = make_initializer(config, layer_seed(config["random_seed"], kernels, 0))
            weights.append(np.asarray(init(shape, dtype="float32"), dtype=np.float32))
            fan_in = int(np.prod(shape[:-1]))
            kernels += 1
        elif tensor == "bias" and constant_bias(config.get("b_init")) is not None:
            weights.append(np.full(shape, constant_bias(config["b_init"]), dtype=np.float32))
        elif tensor == "bias" and config.get("b_init", "zeros") != "zeros":
            init = make_bias_initializer(config, fan_in, layer_seed(config["random_seed"], kernels - 1, 2))
            weights.append(np.asarray(init(shape, dtype="float32"), dtype=np.float32))
        else:  # zero biases (no initializer call per run), BatchNormalization's starting state
            ones = tensor in ("gamma", "moving_variance")
            weights.append((np.ones if ones else np.zeros)(shape, dtype=np.float32))
    return weights


#: Optimizers a zoo configuration may name (population training implements each as Keras 3 does);
#: ``"sgd_momentum"`` is Keras ``SGD`` with momentum :data:`SGD_MOMENTUM`.
OPTIMIZERS = ("adam", "sgd", "sgd_momentum", "rmsprop")
SGD_MOMENTUM = 0.9


def keras_optimizer(config: Mapping[str, Any]):
    """The Keras optimizer (default arguments but the learning rate) that ``config["optimizer"]`` names."""
    keras = require("keras", "building zoo networks")

    name, lr = config.get("optimizer", "adam"), float(config["learning_rate"])
    if name == "adam":
        return keras.optimizers.Adam(lr)
    if name == "sgd":
        return keras.optimizers.SGD(lr)
    if name == "sgd_momentum":
        return keras.optimizers.SGD(lr, momentum=SGD_MOMENTUM)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    raise InvalidArgumentError(f"optimizer {name!r} is not one of {', '.join(OPTIMIZERS)}")


def build_keras_model(
    spec: str | ArchitectureSpec, config: Mapping[str, Any], input_shape: Sequence[int]
):
    """Build an (uncompiled) ``keras.Sequential`` for ``spec`` and ``config``.

    Parameters
    ----------
    spec : str or ArchitectureSpec
        Architecture.
    config : mapping
        Uses ``activation``, ``dropout``, ``l2reg``, ``w_init``, ``init_std``,
        ``b_init`` and ``random_seed``.
    input_shape : sequence of int
        ``(H, W, C)``, or ``(d,)`` for an MLP on vectors.

    Returns
    -------
    keras.Sequential
        Outputs logits.
    """
    keras = require("keras", "building zoo networks")

    spec = get_architecture(spec)
    param_shapes(spec, input_shape)  # sized, and the input fits the family: say so before Keras does
    _check_b_init(config)
    act = config["activation"]
    rate = float(config["dropout"])
    reg = keras.regularizers.L2(float(config["l2reg"]))
    seed = config["random_seed"]
    fan_ins = _fan_ins(spec, input_shape)
    names = _layer_names(spec)
    layers: list[Any] = [keras.Input(shape=tuple(int(s) for s in input_shape))]
    li = 0
    for f in spec.conv_filters:
        layers.append(
            keras.layers.Conv2D(
                f,
                spec.kernel_size,
                strides=spec.strides,
                padding=spec.padding,
                activation=None if spec.batchnorm else act,
                kernel_initializer=make_initializer(config, layer_seed(seed, li, 0)),
                bias_initializer=make_bias_initializer(config, fan_ins[li], layer_seed(seed, li, 2)),
                kernel_regularizer=reg,
                name=names[li],
            )
        )
        if spec.batchnorm:
            layers.append(keras.layers.BatchNormalization(name=_batchnorm_name(li)))
            layers.append(keras.layers.Activation(act, name=f"activation_{li}"))
        if spec.pool == "max":
            layers.append(keras.layers.MaxPooling2D(2, name=f"max_pooling2d_{li}"))
        layers.append(keras.layers.Dropout(rate, seed=layer_seed(seed, li, 1), name=f"dropout_{li}"))
        li += 1
    if spec.is_mlp:
        layers.append(keras.layers.Flatten(name="flatten"))
    else:
        layers.append(keras.layers.GlobalAveragePooling2D(name="global_average_pooling2d"))
    for units in spec.dense_hidden:
        layers.append(
            keras.layers.Dense(
                units,
                activation=act,
                kernel_initializer=make_initializer(config, layer_seed(seed, li, 0)),
                bias_initializer=make_bias_initializer(config, fan_ins[li], layer_seed(seed, li, 2)),
                kernel_regularizer=reg,
                name=names[li],
            )
        )
        layers.append(keras.layers.Dropout(rate, seed=layer_seed(seed, li, 1), name=f"dropout_{li}"))
        li += 1
    layers.append(
        keras.layers.Dense(
            spec.num_classes,
            kernel_initializer=make_initializer(config, layer_seed(seed, li, 0)),
            bias_initializer=make_bias_initializer(config, fan_ins[li], layer_seed(seed, li, 2)),
            name=names[li],
        )
    )
    return keras.Sequential(layers, name=spec.name)
