"""The research harness: experiments on zoos, the paper's tables, reports.

Nothing in the product (features, predictors, monitor, callbacks) imports
from here; this package sits on top of them.
"""
