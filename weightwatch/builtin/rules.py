"""Built-in failure rules."""

from __future__ import annotations

import numpy as np

from ..hookspecs import hookimpl
from ..rules import Finding, Reason, Rule, RuleContext, Severity


def non_finite(ctx: RuleContext):
    bad = []
    for layer in ctx.network:
        for part, arr in (("kernel", layer.kernel), ("bias", layer.bias)):
            if arr is not None and not np.isfinite(arr).all():
                bad.append(f"{layer.name}/{part} ({int((~np.isfinite(arr)).sum())} values)")
    if not bad:
        return None
    return Finding(
        "non_finite", Reason.NON_FINITE, Severity.DOOMED,
        "non-finite weights (NaN/inf) in " + ", ".join(bad) + ": training has diverged; lower the learning rate",
        {"tensors": bad},
    )


RULES = [
    Rule("non_finite", non_finite, "NaN or inf anywhere in the weights: the run has diverged (never fires on finite weights)."),
]


@hookimpl
def register_rules(register):
    for rule in RULES:
        register(rule)
