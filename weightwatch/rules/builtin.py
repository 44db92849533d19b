"""The built-in failure rules (registered by :mod:`weightwatch.builtin.rules` through the plugin hook).

Each rule's docstring says what it catches and how its false-alarm rate is
measured; the measured rates are in the rule's ``description``.
``python -m weightwatch.rules.fit`` reproduces them on a zoo.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from importlib import resources

import numpy as np

from .. import runs
from ..features import layer_stats
from ..network import is_plain_chain
from ..policy import below_threshold
from ..stats import BIAS, STAT
from .bounds import interval_bounds, is_relu_network, total_l2_norm
from .types import Finding, Reason, Rule, RuleContext, Severity

log = logging.getLogger(__name__)

DYING_RELU_FILE = "dying_relu.json"
EXPLODING_GROWTH = 100.0
EXPLODING_ABS = 1e4


def non_finite(ctx: RuleContext):
    """NaN or inf anywhere in the weights: the run has diverged.

    Never fires on finite weights (false-alarm rate 0 by construction).
    """
    bad = ctx.network.non_finite_tensors()
    if not bad:
        return None
    return Finding(
        "non_finite", Reason.NON_FINITE, Severity.DOOMED,
        "non-finite weights (NaN/inf) in " + ", ".join(bad) + ": training has diverged; lower the learning rate",
        {"tensors": bad}, sound=True,
    )


# ---------------------------------------------------------------------------- dying ReLU


@lru_cache(maxsize=1)
def dying_relu_thresholds():
    """Thresholds shipped in ``weightwatch/data/dying_relu.json`` (None when absent)."""
    try:
        text = resources.files("weightwatch").joinpath("data", DYING_RELU_FILE).read_text()
    except (FileNotFoundError, ModuleNotFoundError, NotADirectoryError, OSError):
        log.debug("weightwatch: %s not found; rule dying_relu is inactive", DYING_RELU_FILE)
        return None
    return json.loads(text)


def bias_maxima(network) -> tuple:
    """(max bias of the first layer, max bias of the last layer); NaN for a layer without bias."""
    stats = layer_stats(network)  # shared memo with the W_L features
    return float(stats[0, BIAS, STAT["p100"]]), float(stats[-1, BIAS, STAT["p100"]])


def dying_relu(ctx: RuleContext):
    """The paper's dying-ReLU cluster (§4.5): first- and last-layer bias maxima both low.

    A WARNING, never a verdict: the thresholds are learned, and on held-out
    zoo runs they flag 0.6% of healthy runs (``dying_relu.json``), more than
    the default callback's false-stop budget. Doom comes from the forecast.

    ReLU networks whose first-layer bias maximum is below ``t_first`` and
    last-layer bias maximum below ``t_last`` end at a constant prediction.
    The thresholds are learned from a zoo by
    :func:`weightwatch.rules.fit.fit_dying_relu_thresholds` (F1 on the
    training split of the runs, precision/recall on a held-out split; the
    false-alarm rate is the fraction of held-out runs that end above chance
    and are flagged at some checkpoint) and read from
    ``weightwatch/data/dying_relu.json``; without that file the rule is
    inactive. ``ctx.options["dying_relu_thresholds"]`` overrides the file.
    """
    th = ctx.options.get("dying_relu_thresholds") or dying_relu_thresholds()
    if not th or th.get("t_first") is None or th.get("t_last") is None or not is_relu_network(ctx.network):
        return None
    first, last = bias_maxima(ctx.network)
    if not (first < th["t_first"] and last < th["t_last"]):
        return None
    return Finding(
        "dying_relu", Reason.DYING_RELU, Severity.WARNING,
        f"first-layer bias max {first:.3g} < {th['t_first']:.3g} and last-layer bias max {last:.3g} < "
        f"{th['t_last']:.3g} (the dying-ReLU signature): ReLUs are saturating towards a constant prediction; "
        "lower the learning rate or use a leaky activation",
        {"first_bias_max": first, "last_bias_max": last, "t_first": th["t_first"], "t_last": th["t_last"]},
    )


# ---------------------------------------------------------------------------- interval bounds


#: The range the interval rules assume when the user declared none (they then only warn).
ASSUMED_RANGE = (-1.0, 1.0)


def _bounds(ctx: RuleContext):
    """Interval bounds, or None when the network is not a plain feed-forward chain (``options["plain_chain"]``
    overrides :func:`~weightwatch.network.is_plain_chain`)."""
    plain = ctx.options.get("plain_chain")
    if plain is None:
        plain = is_plain_chain(ctx.network)
    if not plain:
        return None
    return interval_bounds(ctx.network, tuple(_range(ctx)))


def _range(ctx: RuleContext):
    return ASSUMED_RANGE if ctx.input_range is None else ctx.input_range


def _proof(ctx: RuleContext, severity: Severity, message: str) -> tuple:
    """(severity, message, sound): a proof only for a declared input range, else a warning that says so."""
    if ctx.input_range is not None:
        return severity, message, True
    return (Severity.WARNING, message + f" (assuming inputs in {ASSUMED_RANGE}; pass input_range= to make this "
            "a proof)", False)


def dead_units(ctx: RuleContext):
    """Units that are provably dead for every input in the declared input range.

    Interval bound propagation (:func:`weightwatch.rules.bounds.interval_bounds`)
    from ``input_range`` gives each unit's largest possible pre-activation; a
    ReLU unit whose bound is <= 0 outputs 0 for every input. DOOMED when all
    units of some ReLU layer are dead (the output is then constant), WARNING
    when more than half of a layer's units are. The bounds are sound, so the
    rule cannot be wrong about a unit being dead on inputs in range (it only
    runs on plain conv/dense chains); its false-alarm rate with respect to
    the *final accuracy* is measured on healthy zoo runs like the others.
    """
    bounds = _bounds(ctx)
    if not bounds:
        return None
    per_layer, worst, all_dead = {}, 0.0, []
    for b in bounds:
        dead = b.dead
        if not dead.size or (b.activation or "").lower() not in ("relu", "relu6"):
            continue
        frac = float(dead.mean())
        per_layer[b.name] = {"dead": int(dead.sum()), "units": int(dead.size), "fraction": frac}
        worst = max(worst, frac)
        if frac == 1.0:
            all_dead.append(b.name)
    if all_dead:
        severity, message, sound = _proof(
            ctx, Severity.DOOMED, f"every ReLU unit of layer {all_dead[0]} is provably dead for inputs in "
            f"{tuple(_range(ctx))}, so the network's output is constant; restart with a lower learning rate")
        return Finding("dead_units", Reason.DEAD_UNITS, severity, message, {"layers": per_layer, "all_dead": all_dead},
                       sound=sound)
    if worst > 0.5:
        name = max(per_layer, key=lambda n: per_layer[n]["fraction"])
        return Finding(
            "dead_units", Reason.DEAD_UNITS, Severity.WARNING,
            f"{per_layer[name]['dead']} of {per_layer[name]['units']} ReLU units of layer {name} are provably "
            "dead; consider a lower learning rate or a leaky activation",
            {"layers": per_layer},
        )
    return None


def output_collapse(ctx: RuleContext):
    """The predicted class is provably the same for every input.

    With the last layer's input confined to the propagated box, the logit
    difference ``z_k - z_j`` is linear, so its minimum over the box is exact:
    if one class ``k`` beats every other class everywhere (the last bias gap
    dominates the kernel's spread), or the last layer's input is a single
    point, the argmax is constant -> DOOMED. A one-unit output is a binary
    classifier (sigmoid): its class is the sign of the logit, constant when
    the logit's bounds do not straddle 0. Sound for a declared input range,
    like ``dead_units``.
    """
    bounds = _bounds(ctx)
    net = ctx.network
    if not bounds or len(bounds) < len(net) or len(net) < 2:
        return None
    prev = bounds[-2]
    if prev.out_lo is None:
        return None
    last = net[-1]
    if last.kind != "dense":
        return None
    lo, hi = prev.out_lo, prev.out_hi
    w = np.asarray(last.kernel, np.float64)
    if w.shape[0] != lo.shape[0]:
        if w.shape[0] % lo.shape[0]:
            return None
        lo, hi = np.tile(lo, w.shape[0] // lo.shape[0]), np.tile(hi, w.shape[0] // hi.shape[0])
    b = np.zeros(w.shape[1]) if last.bias is None else np.asarray(last.bias, np.float64)
    point = bool(np.all(hi - lo == 0))
    if w.shape[1] == 1:  # binary: class 1 iff logit > 0
        z_lo, z_hi = bounds[-1].pre_lo[0], bounds[-1].pre_hi[0]
        if z_lo > 0:
            k, margin = 1, float(z_lo)
        elif z_hi < 0:
            k, margin = 0, float(-z_hi)
        else:
            return None
        why = f"its logit stays {'above' if k else 'below'} 0 by at least {margin:.3g} for every input"
    else:
        center = (lo + hi) / 2
        k = int(np.argmax(center @ w + b))
        d = w[:, [k]] - w  # (in, out): z_k - z_j per input
        worst = (b[k] - b) + np.minimum(d * lo[:, None], d * hi[:, None]).sum(0)
        worst = np.delete(worst, k)
        margin = float(worst.min())
        if not (point or margin > 0):
            return None
        why = "its input is constant" if point else f"class {k} wins by at least {margin:.3g} logits for every input"
    severity, message, sound = _proof(
        ctx, Severity.DOOMED, f"the network predicts class {k} for every input in range ({why}); the run cannot "
        "recover on its own, restart with a lower learning rate")
    return Finding("output_collapse", Reason.OUTPUT_COLLAPSE, severity, message,
                   {"class": k, "margin": margin if np.isfinite(margin) else None, "constant_input": point},
                   sound=sound)


# ---------------------------------------------------------------------------- predictor / history based


def near_chance(ctx: RuleContext):
    """The accuracy predictor says the run is at chance level *now*: a WARNING, never a verdict.

    "Not learned yet" is not "cannot learn": slow starters (small learning
    rate or training fraction) sit at chance for a few epochs and end
    healthy, so doom comes from ``forecast_doomed``. Fires when the predicted
    accuracy is below ``1/num_classes + chance_margin`` (option, default 0.1).
    """
    p = ctx.predicted_accuracy
    if p is None or not np.isfinite(p):
        return None
    limit = runs.doom_line(ctx.num_classes, ctx.options.get("chance_margin") or runs.DOOMED_MARGIN)
    if p >= limit:
        return None
    return Finding(
        "near_chance", Reason.NEAR_CHANCE, Severity.WARNING,
        f"predicted accuracy now {p:.3f} is below {limit:.3f} (chance {runs.chance(ctx.num_classes):.3f} + margin): "
        "the run has not learned yet",
        {"predicted_accuracy": float(p), "limit": limit}, recovers=True,
    )


def forecast_doomed(ctx: RuleContext):
    """The forecast of the FINAL accuracy says the run will end near chance.

    Fires when the forecast's calibrated upper bound (``forecast_interval``
    high end; the forecast itself for a forecaster without interval) is below ``options["forecast_threshold"]``: the threshold the
    forecaster shipped with, chosen for a measured false-stop budget on
    held-out runs (``pretrained/VERDICTS.md``), or ``chance + chance_margin``
    when the user sets a margin. The monitor's ``patience`` turns a
    persistent finding into DOOMED; out of domain it only warns.
    """
    if ctx.forecast is None:
        return None
    hi = float(ctx.forecast if ctx.forecast_interval is None else ctx.forecast_interval[1])
    limit = float(ctx.options.get("forecast_threshold", runs.doom_line(ctx.num_classes)))
    if not below_threshold(hi, limit):
        return None
    return Finding(
        "forecast_doomed", Reason.FORECAST_DOOMED, Severity.DOOMED,
        f"the final accuracy is forecast at {ctx.forecast:.3f} and at most {hi:.3f}, below {limit:.3f} (chance "
        f"{runs.chance(ctx.num_classes):.3f}): this run will not learn; check the learning rate and the "
        "initialisation",
        {"forecast": float(ctx.forecast), "upper_bound": hi, "limit": limit},
    )


def exploding_norm(ctx: RuleContext):
    """Weights blowing up: total l2 norm > 100x its value at the first checked epoch, or any |w| > 1e4.

    WARNING only (non-finite weights are ``non_finite``'s job). False-alarm
    rate measured as the fraction of healthy zoo runs flagged at any
    checkpoint.
    """
    norm = total_l2_norm(ctx.network)
    if not np.isfinite(norm):
        return None
    biggest = max(float(np.max(np.abs(t))) for t in ctx.network.tensors())
    base = None
    for rec in ctx.history:
        value = rec.get("l2_norm")
        if value is not None and np.isfinite(value) and value > 0:
            base = float(value)
            break
    grown = base is not None and norm > EXPLODING_GROWTH * base
    if not grown and biggest <= EXPLODING_ABS:
        return None
    what = (f"total weight norm grew {norm / base:.0f}x since the first checked epoch" if grown
            else f"a weight reached |w| = {biggest:.3g}")
    return Finding(
        "exploding_norm", Reason.EXPLODING_NORM, Severity.WARNING,
        f"{what}: training may be diverging; lower the learning rate or add gradient clipping",
        {"l2_norm": norm, "baseline": base, "max_abs": biggest},
    )


RULES = [
    Rule("non_finite", non_finite, "NaN or inf anywhere in the weights: the run has diverged (never fires on finite weights)."),
    Rule("dying_relu", dying_relu, "First- and last-layer bias maxima below thresholds learned from a zoo (paper "
         "§4.5): a warning."),
    Rule("dead_units", dead_units, "Interval-bound proof that ReLU units never activate for inputs in range."),
    Rule("output_collapse", output_collapse, "Interval-bound proof that the predicted class is the same for every input."),
    Rule("near_chance", near_chance, "Predicted accuracy now below chance + margin: a warning (needs a predictor)."),
    Rule("forecast_doomed", forecast_doomed, "Upper bound of the final-accuracy forecast below the shipped "
         "threshold (needs a forecaster; false-stop rate in pretrained/VERDICTS.md)."),
    Rule("exploding_norm", exploding_norm, "Total weight norm grew > 100x since the first checked epoch, or |w| > 1e4."),
]

