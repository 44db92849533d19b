"""weightwatch: predict a neural network's accuracy from its weights."""
__version__ = "0.1.0"
