"""Numerical equivariance checks for PyTorch models: ``k(g.x) = g.k(x)``, pathwise or in law.

:func:`check_equivariance` picks one of three methods:

``deterministic``
    For a deterministic model: the maximum over random inputs ``x`` and random group
    elements ``g`` of the relative error ``max|k(g.x) - g.k(x)| / max|g.k(x)|`` (per
    example), against a tolerance of ``1e-10`` in float64 and ``1e-5`` in float32.
``pathwise``
    For a compiled stochastic diagram every stochastic box of which declares a
    *coupling* (:class:`~markovcat.backends.torch.compile.Interpretation`): run
    ``k(x)`` recording every draw, then run ``k(g.x)`` with each draw ``d`` replaced by
    ``coupling(g, d)`` (``R0 -> g R0`` for a Haar draw; unchanged for invariant noise),
    and compare with ``g.k(x)`` to rounding.  If each coupling preserves its box's law
    (``box(g.inputs) ~ coupling(g, box(inputs))``), equality on every path proves
    equality in distribution.  The converse does not hold: a correct model can fail
    for a badly chosen coupling, so a pathwise failure also runs the two-sample test
    and reports it, but the verdict stays *fail* (conservative).  The compiled
    ``forward`` is also run with the same seed and must reproduce the recorded path
    bit for bit, so the path checked is the compiled code's.
``two-sample``
    Otherwise: for a few fixed pairs ``(x, g)``, ``samples`` draws of ``k(g.x)`` and of
    ``g.k(x)`` and an energy-distance permutation test per pair (Bonferroni-corrected
    over the pairs).  Distances are computed exactly (difference, then norm, in
    float64), and distances below a rounding floor (the deterministic check's
    tolerance times the largest output norm of the pair) count as zero, so two
    samples equal up to rounding are never told apart.  Its false-alarm rate is at
    most ``alpha`` (a permutation test is exact under the null whatever the distance
    used, and Bonferroni is conservative).  Measured with the defaults (4 pairs, 200
    samples, 1000 permutations) over 100 seeds on O(3) point clouds
    (``tests/backends/test_equivariance.py::test_false_alarm_rate_and_power``, slow): false
    alarms 2/100 at ``alpha = 0.01`` and 6/100 at ``0.05`` for both the Haar and the
    recursive-gamma symmetrisation (binomial standard errors 0.01 and 0.02); power
    100/100 at ``alpha = 0.01`` against the wrong-side recursive gamma and against the
    output acted on by ``g^-1``.  Re-measured with the exact distances and the rounding
    floor: the same figures.

What a report proves, and what not
    A FAILED report exhibits a violation (a counterexample, or a p-value below
    ``alpha``).  A PASSED report only says that no violation *larger than the check can
    see* was found on the inputs tried; every report states that size
    (:attr:`EquivarianceReport.min_detectable_effect`).  For the deterministic and
    pathwise checks it is the tolerance, as a relative error.  For the two-sample test
    it is the power of the test, measured by a calibration
    (:func:`minimum_detectable_shift`): the smallest shift of the mean of ``k(g.x)``
    against ``g.k(x)``, in units of the outputs' standard deviation (root mean square
    over coordinates), that one pair detects with probability at least 0.8.  With the
    defaults on the Haar-symmetrised O(3) example (16 points, effective output
    dimension 16) that is 0.15 standard deviations: a model biased by 5% of its output's
    standard deviation passes, and :func:`samples_needed` says how many samples would
    catch it (about 1,700 per side; it is then caught,
    ``tests/backends/test_equivariance_power.py``, slow).  Checked against the permutation test
    itself on Gaussian data at the stated shift (100 runs each; 200 samples in
    dimension 3 and 48, 50 in dimension 6): detected in about 75 to 85% of runs
    (``test_the_calibration_matches_the_energy_test_on_gaussians``, slow, asserts 65 to 95%).

>>> import torch
>>> from markovcat.backends.torch import Orthogonal, Spec
>>> O3 = Orthogonal(3)
>>> norms = lambda x: x.norm(dim=-1)                   # O(3)-invariant: trivial action on the output
>>> report = check_equivariance(norms, O3, O3.points(5), O3.trivial(Spec((5,))), dtype=torch.float64)
>>> report.passed, report.method
(True, 'deterministic')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from markovcat.backends.torch.checks import relative_error
from markovcat.backends.torch.linalg import accepts
from markovcat.backends.torch.two_sample import (
    POWER,
    TOLERANCES,
    _tolerance,
    energy_test,
    minimum_detectable_shift,
    samples_needed,
)

__all__ = ["check_equivariance", "EquivarianceReport", "Counterexample", "energy_test", "minimum_detectable_shift",
           "samples_needed", "TOLERANCES", "POWER"]



@dataclass
class Counterexample:
    """The worst case found: input ``x``, element ``g``, ``lhs = k(g.x)`` and ``rhs = g.k(x)``."""

    index: int
    x: Tensor
    g: Tensor
    lhs: Tensor
    rhs: Tensor
    error: float
    means: bool = False

    def __str__(self) -> str:
        diff = (self.lhs.double() - self.rhs.double()).abs().max().item()
        if self.means:
            return (f"pair {self.index}: energy distance {self.error:.3g}; the sample means of k(g.x) and g.k(x) "
                    f"differ by up to {diff:.3g}\n      g = {_short(self.g)}\n"
                    f"      mean k(g.x) = {_short(self.lhs)}\n      mean g.k(x) = {_short(self.rhs)}")
        return (f"example {self.index}: max|k(g.x) - g.k(x)| = {diff:.3g} (relative {self.error:.3g})\n"
                f"      g = {_short(self.g)}\n      k(g.x) = {_short(self.lhs)}\n      g.k(x) = {_short(self.rhs)}")


def _short(t: Tensor, edge: int = 3) -> str:
    """A one-line summary of ``t`` (shape and a few entries), leaving torch's print options alone."""
    flat = t.detach().double().cpu().flatten().tolist()
    if len(flat) <= 4 * edge:
        body = ", ".join(f"{v:.4g}" for v in flat)
    else:
        body = ", ".join(f"{v:.4g}" for v in flat[:edge]) + ", ..., " + ", ".join(f"{v:.4g}" for v in flat[-edge:])
    return f"[{body}] (shape {tuple(t.shape)})"


@dataclass
class EquivarianceReport:
    """The outcome of :func:`check_equivariance`; truthy iff ``passed``.

    ``min_detectable_effect`` is the size of the smallest violation the check would see,
    in ``effect_unit``: a relative error for the deterministic and pathwise checks (their
    tolerance), a mean shift in standard deviations for the two-sample test (detected
    with probability :data:`POWER`).  A PASSED report means no violation larger than that
    was found on ``n_inputs`` inputs; it is not a guarantee.  ``effective_dim`` is the
    dimension the two-sample test's power was calibrated at (see :func:`minimum_detectable_shift`).
    """

    passed: bool
    """Whether no violation was found (the report is truthy iff it passed)."""
    method: str
    """The method used: ``deterministic``, ``pathwise`` or ``two-sample``."""
    statistic: float
    """The test statistic: the largest relative error, or the energy statistic."""
    threshold: float
    """The value ``statistic`` had to stay below (the tolerance, or the test's critical value)."""
    description: str
    """One sentence saying what was checked and how."""
    p_value: float | None = None
    """The two-sample test's p-value (``None`` for the deterministic and pathwise methods)."""
    worst: Counterexample | None = None
    """The input and group element with the largest error, if one was recorded."""
    notes: list[str] = field(default_factory=list)
    """Remarks on what the check could and could not see (shown by ``str(report)``)."""
    secondary: EquivarianceReport | None = None
    """A second report on the same model (the two-sample test beside a pathwise one), if run."""
    min_detectable_effect: float = math.nan
    effect_unit: str = "relative error"
    """The unit of ``min_detectable_effect`` (a relative error, or the energy statistic)."""
    n_inputs: int = 0
    """How many inputs ``x`` were tried."""
    power_statement: str = ""
    """A sentence saying how large a violation the check would have seen."""
    effective_dim: int | None = None

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"Equivariance check {verdict} ({self.method}): {self.description}"]
        if self.method == "two-sample":
            lines.append(f"  energy distance {self.statistic:.4g}, Bonferroni p-value {self.p_value:.3g} "
                         f"(fail below alpha = {self.threshold:g})")
        else:
            lines.append(f"  max relative error {self.statistic:.3g} (tolerance {self.threshold:g})")
        if self.power_statement:
            lines.append(f"  power: {self.power_statement}")
        if self.passed:
            lines.append(f"  PASSED means: no violation larger than {self._effect()} was found on {self.n_inputs} "
                         f"inputs; this is not a guarantee (smaller violations, or violations on other inputs, "
                         f"pass)")
        if self.worst is not None and not self.passed:
            lines.append(f"  worst counterexample, {self.worst}")
        lines += [f"  note: {n}" for n in self.notes]
        if self.secondary is not None:
            lines.append("  " + str(self.secondary).replace("\n", "\n  "))
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        """The verdict as plain JSON values, as experiment records keep it.

        ``method``, ``passed``, ``statistic``, ``threshold``, ``p_value`` (``None`` unless two-sample),
        ``min_detectable_effect`` and ``effect_unit``; the counterexample, notes and secondary
        report are left out (they are for reading, see ``str(report)``).
        """
        return {"method": self.method, "statistic": float(self.statistic), "threshold": float(self.threshold),
                "passed": bool(self.passed), "p_value": None if self.p_value is None else float(self.p_value),
                "min_detectable_effect": float(self.min_detectable_effect), "effect_unit": self.effect_unit}

    def _effect(self) -> str:
        if self.effect_unit == "relative error":
            return f"a relative error of {self.min_detectable_effect:.3g}"
        return f"{self.min_detectable_effect:.3g} {self.effect_unit}"


def _dtype_device(model: Any, dtype: torch.dtype | None, device: Any) -> tuple[torch.dtype, torch.device]:
    tensors = []
    if isinstance(model, torch.nn.Module):
        tensors = [t for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point()]
    if dtype is None:
        dtype = tensors[0].dtype if tensors else torch.get_default_dtype()
    if device is None:
        device = tensors[0].device if tensors else torch.device("cpu")
    return dtype, torch.device(device)


def _finite(t: Any, what: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{what} is {type(t).__name__}, not a tensor (the check needs one tensor in, one out)")
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{what} contains NaN or inf, so equivariance cannot be judged")
    return t


def _worst(errors: Tensor, x: Tensor, g: Tensor, lhs: Tensor, rhs: Tensor) -> Counterexample:
    i = int(errors.argmax())
    return Counterexample(i, x[i], g[i], lhs[i], rhs[i], float(errors[i]))


def check_equivariance(
    model: Callable[..., Tensor],
    group: Any,
    in_action: Any,
    out_action: Any = None,
    *,
    inputs: Tensor | None = None,
    n_inputs: int = 8,
    method: str = "auto",
    stochastic: bool | None = None,
    tolerance: float | None = None,
    samples: int = 200,
    pairs: int = 4,
    permutations: int = 1000,
    alpha: float = 0.01,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: Any = None,
) -> EquivarianceReport:
    """Check ``model(g.x) = g.model(x)`` (in law, for a stochastic model).

    ``group`` is a :class:`~markovcat.backends.torch.groups.TorchGroup`; ``in_action``
    and ``out_action`` (default: ``in_action``) are its
    :class:`~markovcat.backends.torch.groups.TorchAction` s on the model's input and
    output.  ``inputs`` (a batch) defaults to ``n_inputs`` random points of the input
    space.  ``method`` is ``"auto"``, ``"deterministic"``, ``"pathwise"`` or
    ``"two-sample"``; ``stochastic`` says whether a model that is not a compiled
    diagram is stochastic (it then must accept ``generator=``).  ``tolerance`` (default
    by dtype, :data:`TOLERANCES`) bounds the relative error of the deterministic and
    pathwise checks and sets the two-sample test's rounding floor.  See the module
    docstring for what each method establishes; the report states the smallest
    violation the check would detect.

    >>> import torch
    >>> from markovcat.backends.torch import Orthogonal, symmetrise
    >>> O3 = Orthogonal(3)
    >>> net = torch.nn.Sequential(torch.nn.Flatten(1), torch.nn.Linear(12, 12), torch.nn.Unflatten(1, (4, 3)))
    >>> report = check_equivariance(symmetrise(net, O3, O3.points(4), gamma="haar"), O3, O3.points(4))
    >>> report.passed, report.method
    (True, 'pathwise')
    >>> check_equivariance(net, O3, O3.points(4)).passed  # the bare network is not equivariant
    False
    """
    from markovcat.backends.torch.compile import CompiledDiagram

    out_action = in_action if out_action is None else out_action
    for what, action in (("in_action", in_action), ("out_action", out_action)):
        if not callable(getattr(action, "act", None)):
            raise TypeError(f"{what} must be a TorchAction (with .act(g, x)), got {type(action).__name__}")
    if method not in ("auto", "deterministic", "pathwise", "two-sample"):
        raise ValueError(f"method must be auto, deterministic, pathwise or two-sample, got {method!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if min(pairs, n_inputs if inputs is None else inputs.shape[0]) / (permutations + 1) >= alpha:
        raise ValueError(f"{permutations} permutations cannot give a Bonferroni p-value below alpha={alpha} over "
                         f"{pairs} pairs: use more permutations")
    compiled: Any = model if isinstance(model, CompiledDiagram) else None
    wrapped = getattr(model, "_orig_mod", None)  # torch.compile's wrapper
    if stochastic is None and isinstance(wrapped, CompiledDiagram):
        stochastic = not wrapped.deterministic
    if stochastic is None:
        stochastic = compiled is not None and not compiled.deterministic
    dtype, device = _dtype_device(model, dtype, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    if inputs is None:
        x = in_action.random(n_inputs, generator, dtype, device)
    else:
        x = _finite(inputs, "the given inputs").to(device)
    if compiled is not None:
        compiled.check_inputs(x)
    g = group.sample(x.shape[0], generator, dtype, device)
    tol = tolerance if tolerance is not None else _tolerance(x.dtype if x.is_floating_point() else dtype)
    description = (f"{_name(model)} under {group.name}, input action {in_action.name}, "
                   f"output action {out_action.name}")
    if not stochastic:
        if method not in ("auto", "deterministic"):
            raise ValueError(f"method {method!r} is for stochastic models; this one is deterministic")
        return _deterministic(model, x, g, in_action, out_action, tol, description)
    coupled = compiled is not None and all(b in compiled.couplings for b in compiled.stochastic_boxes)
    if method == "pathwise" and not coupled:
        missing = [b for b in getattr(model, "stochastic_boxes", ()) if b not in getattr(model, "couplings", {})]
        raise ValueError(
            "a pathwise check needs a compiled diagram whose stochastic boxes all declare couplings"
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    if method == "deterministic":
        raise ValueError("this model is stochastic: use method='pathwise' or 'two-sample'")

    def two_sample() -> EquivarianceReport:
        return _two_sample(model, x, g, in_action, out_action, samples, pairs, permutations, alpha, tolerance,
                           seed + 1, device, description)

    if method == "two-sample" or (method == "auto" and not coupled):
        report = two_sample()
        if method == "auto":
            report.notes.append("no coupling declared for every stochastic box, so the law was tested")
        return report
    report = _pathwise(model, x, g, in_action, out_action, tol, seed + 2, device, description)  # type: ignore[arg-type]
    if not report.passed and method == "auto":
        report.secondary = two_sample()
        report.notes.append("a pathwise failure is conclusive for this coupling only; the two-sample test of the "
                            "law is shown below")
    return report


def _name(model: Any) -> str:
    return type(model).__name__ if isinstance(model, torch.nn.Module) else getattr(model, "__name__", repr(model))


def _tolerance_statement(tol: float, n: int, what: str) -> str:
    return (f"any {what} with relative error max|k(g.x) - g.k(x)| / max|g.k(x)| above {tol:g} is detected "
            f"(the tolerance: rounding below it is not told apart from a violation); {n} inputs tried")


def _deterministic(model: Callable[..., Tensor], x: Tensor, g: Tensor, in_action: Any, out_action: Any, tol: float,
                   description: str) -> EquivarianceReport:
    with torch.no_grad():
        lhs = _finite(model(in_action.act(g, x)), "the model's output k(g.x)")
        rhs = out_action.act(g, _finite(model(x), "the model's output k(x)"))
    if lhs.shape != rhs.shape:
        raise ValueError(f"k(g.x) has shape {tuple(lhs.shape)} but g.k(x) has shape {tuple(rhs.shape)}")
    errors = relative_error(lhs, rhs)
    stat = float(errors.max())
    n = x.shape[0]
    return EquivarianceReport(stat <= tol, "deterministic", stat, tol, f"{description}; {n} random (x, g)",
                              worst=_worst(errors, x, g, lhs, rhs), min_detectable_effect=tol, n_inputs=n,
                              power_statement=_tolerance_statement(tol, n, "violation"))


def _pathwise(model: Any, x: Tensor, g: Tensor, in_action: Any, out_action: Any, tol: float, seed: int,
              device: torch.device, description: str) -> EquivarianceReport:
    notes: list[str] = []
    steps = model.plan.steps
    with torch.no_grad():
        first = model.trace(x, generator=torch.Generator(device=device).manual_seed(seed))
        y = _finite(first.output, "the model's output k(x)")
        replay = {}
        for index, draws in first.draws.items():
            coupled = model.couplings[steps[index].name](g, *draws)
            replay[index] = coupled if isinstance(coupled, tuple) else (coupled,)
        lhs = _finite(model.trace(in_action.act(g, x), replay=replay).output, "the model's output k(g.x)")
        rhs = out_action.act(g, y)
        consistent = True
        if model.samples is None:
            again = model(x, generator=torch.Generator(device=device).manual_seed(seed))
            consistent = torch.equal(again, y)
            if not consistent:
                notes.append("the compiled forward did not reproduce the traced path with the same seed, so the "
                             "path checked may not be the compiled code's")
    errors = relative_error(lhs, rhs)
    stat = float(errors.max())
    n = x.shape[0]
    couplings = ", ".join(f"{b}: {type(model.couplings[b]).__name__}" for b in model.stochastic_boxes)
    return EquivarianceReport(
        stat <= tol and consistent, "pathwise", stat, tol,
        f"{description}; {n} random (x, g) with coupled noise ({couplings})",
        worst=_worst(errors, x, g, lhs, rhs), notes=notes, min_detectable_effect=tol, n_inputs=n,
        power_statement=_tolerance_statement(tol, n, "violation on the coupled path"),
    )


def _call(model: Any, x: Tensor, generator: torch.Generator) -> Tensor:
    if accepts(model, "generator"):
        return model(x, generator=generator)
    return model(x)


def _spread(z: Tensor) -> tuple[float, int]:
    """Root-mean-square standard deviation per coordinate of the rows of ``z``, and their effective dimension.

    The effective dimension is the participation ratio ``tr(C)^2 / tr(C^2)`` of the covariance
    ``C``: the number of equally spread coordinates with the same total variance and the same
    concentration.
    """
    z = z - z.mean(0)
    gram = z @ z.T if z.shape[0] <= z.shape[1] else z.T @ z
    trace = float(torch.diagonal(gram).sum())
    square = float((gram**2).sum())
    sigma = math.sqrt(trace / max(z.shape[0] - 1, 1) / z.shape[1])
    dim = round(trace**2 / square) if square > 0 else 1
    return sigma, max(1, min(dim, z.shape[1]))


def _coarse(dim: int) -> int:
    """``dim`` rounded down to 1, 2, 3, 4, 6, 8, 12, 16, ...: conservative, and a few calibrations serve all."""
    grid = [1] + [c * 2**k for k in range(40) for c in (2, 3)]
    return max(d for d in grid if d <= dim)


def _two_sample(model: Any, x: Tensor, g: Tensor, in_action: Any, out_action: Any, samples: int, pairs: int,
                permutations: int, alpha: float, tolerance: float | None, seed: int, device: torch.device,
                description: str) -> EquivarianceReport:
    pairs = min(pairs, x.shape[0])
    xs, gs = x[:pairs], g[:pairs]
    rep_x = xs.repeat_interleave(samples, 0)
    rep_g = gs.repeat_interleave(samples, 0)
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        lhs = _finite(_call(model, in_action.act(rep_g, rep_x), generator), "the model's output k(g.x)")
        rhs = out_action.act(rep_g, _finite(_call(model, rep_x, generator), "the model's output k(x)"))
    tol = tolerance if tolerance is not None else _tolerance(lhs.dtype)
    lhs, rhs = lhs.reshape(pairs, samples, -1), rhs.reshape(pairs, samples, -1)
    test_generator = torch.Generator().manual_seed(seed)
    results, floors, spreads = [], [], []
    for i in range(pairs):
        z = torch.cat([lhs[i], rhs[i]]).detach().double().cpu()
        floor = tol * float(z.norm(dim=1).max())
        results.append(energy_test(lhs[i], rhs[i], permutations, test_generator, floor=floor))
        floors.append(floor)
        spreads.append(_spread(z))
    worst = max(range(pairs), key=lambda i: results[i][0])
    p_min = min(p for _, p in results)
    p_adjusted = min(1.0, p_min * pairs)
    stat = results[worst][0]
    means = Counterexample(worst, xs[worst], gs[worst], lhs[worst].double().mean(0), rhs[worst].double().mean(0), stat,
                           means=True)
    spread_pairs = [i for i in range(pairs) if spreads[i][0] * math.sqrt(lhs.shape[-1]) > floors[i]]
    notes = []
    dim: int | None = None
    if spread_pairs:
        dim = _coarse(min(spreads[i][1] for i in spread_pairs))  # fewer directions: a shift is harder to see
        effect = minimum_detectable_shift(samples, pairs, permutations, alpha, dim)
        sigma = sum(spreads[i][0] for i in spread_pairs) / len(spread_pairs)
        unit = "standard deviations (mean shift)"
        power = (f"a shift of the mean of k(g.x) against g.k(x) by {effect:.3g} standard deviations (root mean "
                 f"square over the {lhs.shape[-1]} output coordinates; the outputs' standard deviation is "
                 f"{sigma:.3g} on average here) on any one pair is detected with probability >= {POWER:g} "
                 f"(calibrated on a Gaussian surrogate of effective dimension {dim})")
        if len(spread_pairs) < pairs:
            notes.append(f"on {pairs - len(spread_pairs)} of {pairs} pairs the outputs were equal up to rounding")
    else:
        effect, unit = tol, "relative error"
        power = (f"the outputs were equal up to rounding on every pair, so any difference above the rounding floor "
                 f"(relative error {tol:g}) is detected")
    return EquivarianceReport(
        p_adjusted >= alpha, "two-sample", stat, alpha,
        f"{description}; {pairs} pairs (x, g), {samples} samples of k(g.x) and of g.k(x) each, "
        f"{permutations} permutations; distances below {tol:g} x the largest output norm (rounding) count as zero",
        p_value=p_adjusted, worst=means, notes=notes, min_detectable_effect=effect, effect_unit=unit,
        n_inputs=pairs, power_statement=power, effective_dim=dim,
    )
