"""A network family and a dataset of your own, as a weightwatch plugin.

- architecture ``tiny-cnn-2``: two 3x3 stride-2 conv layers of 8 filters,
  global average pooling and a 2-way output (682 parameters);
- dataset ``digits_parity``: scikit-learn's bundled digits labelled even (0)
  or odd (1), on weightwatch's fixed digits split.

With it installed, ``weightwatch zoo build --architecture tiny-cnn-2
--dataset digits_parity`` trains a zoo of that family, ``weightwatch fit``
fits a predictor on it, and the callbacks pick that predictor up for networks
of the family when its directory is on the predictor path
(``WEIGHTWATCH_PREDICTOR_PATH`` or ``predictor_path=``).
"""

from dataclasses import replace

from weightwatch.hookspecs import hookimpl
from weightwatch.zoo.architectures import ArchitectureSpec
from weightwatch.zoo.datasets import load_digits

TINY_CNN_2 = ArchitectureSpec("tiny-cnn-2", conv_filters=(8, 8), kernel_size=3, strides=2, padding="valid",
                              num_classes=2)


def load_digits_parity(resolution=16):
    """Digits at ``resolution`` (see ``weightwatch.zoo.datasets.load_digits``), labels ``digit % 2``."""
    d = load_digits(resolution)
    return replace(d, name="digits_parity", y_train=d.y_train % 2, y_test=d.y_test % 2, num_classes=2,
                   description="scikit-learn's digits labelled even (0) / odd (1); " + d.description)


@hookimpl
def register_architectures(register):
    register(TINY_CNN_2)


@hookimpl
def register_datasets(register):
    register("digits_parity", load_digits_parity)
