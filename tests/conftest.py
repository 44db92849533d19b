import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# the population trainer needs oneDNN (see weightwatch/zoo/__init__.py); TensorFlow reads it at import
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def fresh_registry():
    """Rediscover plugins before and after the test (env vars, installs)."""
    from weightwatch import plugins

    plugins.reset()
    yield plugins
    plugins.reset()
