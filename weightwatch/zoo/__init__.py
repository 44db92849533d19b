"""The zoo: network families, datasets, hyperparameters, the population trainer, builds and storage.

The population trainer's grouped convolutions (and their gradients) run only on TensorFlow's oneDNN kernels,
which TensorFlow turns on by itself only on CPUs with AVX-512 features; importing the zoo asks for them
(``TF_ENABLE_ONEDNN_OPTS=1`` unless the variable is set), before TensorFlow is imported: TensorFlow reads it
once, at import. :func:`weightwatch.zoo.population.train_population` says so if TensorFlow came first.
"""

import os as _os

_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
