"""The errors weightwatch raises on purpose: one family under :class:`WeightWatchError`.

Each narrow subclass also keeps the built-in base it had before the family
existed (``ValueError``, ``LookupError``, ...), so ``except ValueError`` in
user code keeps working. The command line prints any of them as one line,
``weightwatch: error: <message>``, and exits with status 2; ``--debug``
shows the traceback. Messages name the file (or object) and the problem.
"""

from __future__ import annotations

__all__ = [
    "WeightWatchError",
    "InvalidArgumentError",
    "MissingDependencyError",
    "PluginError",
    "UnknownNameError",
    "WeightsError",
    "NonFiniteWeightsError",
    "UnsupportedModelError",
    "ModelFileError",
    "PretrainedNotFoundError",
    "PredictorPathError",
    "PredictorIntegrityError",
    "FeatureMismatchError",
    "ZooFormatError",
    "ZooBuildError",
    "BuildSpecMismatch",
    "LockedError",
    "DatasetNotFoundError",
    "DataFileError",
    "OutputPathError",
]


class WeightWatchError(Exception):
    """Base class of every error weightwatch raises on purpose."""

    def __str__(self):  # KeyError/LookupError subclasses would quote the message otherwise
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class InvalidArgumentError(WeightWatchError, ValueError):
    """An argument is outside what the function or command accepts."""


class MissingDependencyError(WeightWatchError, ImportError):
    """An optional dependency is needed for this feature and is not installed."""


class PluginError(WeightWatchError, RuntimeError):
    """A plugin misbehaved (duplicate name, bad registration)."""


class UnknownNameError(WeightWatchError, KeyError):
    """A name was asked for that no plugin registered."""


class WeightsError(WeightWatchError, ValueError):
    """Weights given to weightwatch are malformed (shape, dtype, layout)."""


class NonFiniteWeightsError(WeightsError):
    """Weights hold NaN or inf, so no accuracy can be predicted from them."""


class UnsupportedModelError(WeightWatchError, TypeError):
    """No registered adapter can read this object."""


class ModelFileError(WeightWatchError, ValueError):
    """A model file could not be read."""


class PretrainedNotFoundError(WeightWatchError, LookupError):
    """No shipped predictor has this name, or none is installed."""


class PredictorPathError(PretrainedNotFoundError):
    """A predictor path that was given (an argument, ``predictor_path=``, ``WEIGHTWATCH_PREDICTOR_PATH``) does not
    exist; the message names it."""


class PredictorIntegrityError(WeightWatchError):
    """A saved predictor is malformed, or a file's sha256 does not match."""


class FeatureMismatchError(WeightWatchError, ValueError):
    """Saved feature names differ from the expected ones."""


class ZooFormatError(WeightWatchError, ValueError):
    """A zoo directory is missing files, or they are corrupt or disagree."""


class ZooBuildError(WeightWatchError, ValueError):
    """A zoo build cannot start or continue (bad setting, unusable output directory)."""


class BuildSpecMismatch(ZooBuildError):
    """The output directory holds a build with different settings."""


class LockedError(ZooBuildError):
    """Another live process holds the lock on an output directory."""


class DatasetNotFoundError(WeightWatchError, FileNotFoundError):
    """A file-backed dataset is not available locally (nothing is downloaded)."""


class DataFileError(WeightWatchError, ValueError):
    """A dataset file on disk is malformed (wrong header, missing arrays)."""


class OutputPathError(WeightWatchError, OSError):
    """An output path cannot be written (read-only, under a file, ...)."""
