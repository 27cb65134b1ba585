"""Compile a diagram to a ``torch.nn.Module`` (the Stoch backend).

Objects are interpreted as :class:`~markovcat.backends.torch.interpretation.Spec` s, boxes by
callables, as :mod:`~markovcat.backends.torch.interpretation` says; a box with no inputs
receives ``like=``, the first input of the diagram when that is a floating tensor, else an
empty tensor of shape ``(batch,)``.  One concern per module: the meanings
(:mod:`~markovcat.backends.torch.interpretation`), the plan (:mod:`~markovcat.backends.torch.plan`),
the generated code (:mod:`~markovcat.backends.torch.codegen`) and the input checks
(:mod:`~markovcat.backends.torch.validation`); this module puts them together.

One output is returned as a tensor, several as a tuple.  :func:`compile` writes the
forward pass as straight-line Python (see ``model.code``): one line per box occurrence,
structural wiring resolved at compile time, boxes whose outputs are all discarded
dropped (the Markov law ``k >> del = del``).  Every ``nn.Module`` is registered once, so
a box used twice shares its parameters.  Before returning it checks that every box is
interpreted, runs the diagram once (two random examples without gradients, or meta
tensors for a large model) to check every wire against its type's spec (naming the box
at fault), and checks the axioms of every declared group and action numerically
(:mod:`markovcat.backends.torch.checks`).  None of this touches the interpretation's
modules: the dry run runs a copy of the model, so concurrent compiles sharing a module
are safe.

The generated code holds only identifiers the compiler made (``x0``, ``w3``, ``f_net``,
``self.b_net``; box names are reduced to ASCII letters, digits and ``_``, and made
unique); a box's own name appears only ``ascii``-escaped in a comment, and in full in
``model.boxes`` (one entry per generated line).

**Input validation.**  By default the generated ``forward`` first checks its inputs and
raises ``TypeError``/``ValueError`` naming the input, its type and the box that reads it
(shape with the batch dimension, batch size, dtype, finite values: see
:mod:`~markovcat.backends.torch.validation`; call :meth:`CompiledDiagram.check_inputs` first
on data you do not trust on CUDA, where a failed check ends the CUDA context).  Under
``torch.compile`` the same checks are traced (with ``fullgraph=True`` a refused input is
reported as dynamo's "Observed exception", which quotes the message).  Opt out with
``compile(..., validate=False)`` or ``model.validate = False`` for the bare fast path.
"""

from __future__ import annotations

import copy
import itertools
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.python import InterpretationError, resolve
from markovcat.backends.torch.codegen import generate, make_class
from markovcat.backends.torch.interpretation import Gaussian, GroupActions, Interpretation, Invariant, Spec
from markovcat.backends.torch.linalg import accepts as _accepts
from markovcat.backends.torch.linalg import rand, randn
from markovcat.backends.torch.plan import Plan, Step, make_plan
from markovcat.backends.torch.validation import check_inputs
from markovcat.syntax import Diagram, Generator

__all__ = [
    "Spec",
    "Interpretation",
    "CompiledDiagram",
    "Trace",
    "GroupActions",
    "Gaussian",
    "Invariant",
    "compile",
    "InterpretationError",
    "randn",
    "rand",
]


class Trace:
    """The value of every wire of one run, and the draws of every stochastic box occurrence."""

    def __init__(self, outputs: tuple[Tensor, ...], wires: dict[int, Tensor], draws: dict[int, tuple[Tensor, ...]]):
        self.outputs, self.wires, self.draws = outputs, wires, draws

    @property
    def output(self) -> Any:
        """The run's output: the one output tensor, or the tuple of them."""
        return self.outputs[0] if len(self.outputs) == 1 else self.outputs


class CompiledDiagram(nn.Module):
    """A diagram compiled to straight-line PyTorch; ``forward`` is generated per diagram.

    Attributes: ``code`` (the generated source), ``boxes`` (the box name behind each generated
    call, in order), ``diagram``, ``morphism`` and ``symmetry`` (kept through ``copy.deepcopy``,
    which shares these immutable values, and through ``pickle`` / ``torch.save``),
    ``validate`` (whether ``forward`` checks its inputs; see :mod:`~markovcat.backends.torch.validation`),
    ``deterministic``, ``samples``, ``input_atoms`` / ``output_atoms`` and ``specs``.
    :meth:`trace` evaluates the same boxes node by node (for debugging and for coupled
    equivariance checks).
    """

    _source: str = ""
    _functions: tuple[tuple[str, Any], ...] = ()
    diagram: Diagram | None = None
    """The diagram it was compiled from."""
    morphism: Any = None  # the C^G morphism it was compiled from, with its evidence (None for a plain diagram)
    symmetry: GroupActions | None = None  # the torch group and actions it is equivariant for, when known
    validate: bool = True
    """Whether ``forward`` checks its inputs (``False``: the bare fast path)."""
    _typed: bool = True  # whether some parameter or buffer fixes the model's floating dtype

    def __init__(self, plan: Plan, modules: Mapping[str, nn.Module], validate: bool = True) -> None:
        super().__init__()
        for attr, module in modules.items():
            self.add_module(attr, module)
        state = [t for name, t in itertools.chain(self.named_parameters(), self.named_buffers())
                 if t.is_floating_point() and not name.endswith("_ref")]
        # the model's floating dtype and device: those of its parameters (else the defaults); follows model.to()
        reference = state[0] if state else torch.zeros(0)
        self.register_buffer("_ref", torch.zeros(0, dtype=reference.dtype, device=reference.device),
                             persistent=False)
        self._typed = bool(state)
        self._plan = plan
        self.validate = bool(validate)

    # -- public description -----------------------------------------------------------
    @property
    def plan(self) -> Plan:
        """What the generated code runs: wires, steps, specs, input checks (an immutable value)."""
        return self._plan

    @property
    def code(self) -> str:
        return self._source

    @property
    def boxes(self) -> tuple[str, ...]:
        """The name of the box each generated call runs, in order (names never enter the code itself)."""
        return tuple(s.name for s in self._plan.steps)

    @property
    def deterministic(self) -> bool:
        """Whether the diagram is deterministic (no stochastic box): then ``forward`` is a function."""
        return self._plan.deterministic

    @property
    def samples(self) -> int | None:
        """The Monte Carlo samples of an ``ave`` box, or ``None`` where there is none."""
        samples = self._plan.samples
        return None if samples is None else int(samples)

    @property
    def input_atoms(self) -> tuple[str, ...]:
        """The atom names of the inputs, in order (one ``forward`` argument each)."""
        return tuple(self._plan.input_atoms)

    @property
    def output_atoms(self) -> tuple[str, ...]:
        """The atom names of the outputs, in order."""
        return tuple(self._plan.output_atoms)

    @property
    def specs(self) -> dict[str, Spec]:
        """Atom name to the per-example :class:`Spec` the inputs and outputs are checked against."""
        return dict(self._plan.specs)

    @property
    def couplings(self) -> dict[str, Callable[..., Any]]:
        """The couplings of its stochastic boxes (from the interpretation), for the pathwise equivariance check."""
        return dict(self._plan.couplings)

    @property
    def stochastic_boxes(self) -> tuple[str, ...]:
        """The names of the stochastic boxes the generated code draws from, in order."""
        return tuple(dict.fromkeys(s.name for s in self._plan.steps if not s.deterministic))

    def extra_repr(self) -> str:
        """The input and output atoms and specs, shown in the module's repr."""
        return self._plan.signature

    def check_inputs(self, *inputs: Tensor) -> None:
        """Raise a clear error unless the inputs fit the diagram's input types (shape, dtype, finite values).

        The same checks as the validating ``forward`` (whatever ``model.validate`` says), but the
        finiteness is always read back to the host: a recoverable ``ValueError`` on any device, at the
        cost of one synchronisation.  It proves the inputs well formed, nothing about the outputs.
        """
        check_inputs(self, inputs, synchronise=True)

    def _validate_inputs(self, *inputs: Tensor) -> None:
        """Called first by the generated ``forward``: the input checks unless ``self.validate`` is False."""
        if self.validate:
            check_inputs(self, inputs, synchronise=False)

    # -- copying and pickling ------------------------------------------------------------
    def __deepcopy__(self, memo: dict[int, Any]) -> CompiledDiagram:
        """A copy with its own modules; the immutable values (diagram, morphism, symmetry, plan) are shared."""
        for value in (self.diagram, self.morphism, self.symmetry, self._plan):
            if value is not None:
                memo.setdefault(id(value), value)
        clone = type(self).__new__(type(self))  # the same generated class: no new code
        memo[id(self)] = clone
        clone.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return clone

    def __reduce__(self) -> Any:
        # the class is regenerated from its source on loading; the diagram, morphism and symmetry pickle with it
        return (_restore, (type(self).__name__, self._source, self._functions), self.__dict__.copy())

    # -- node-by-node evaluation ---------------------------------------------------------
    def _callable(self, step: Step) -> Any:
        if step.ref.startswith("self."):
            return getattr(self, step.ref[5:])
        return dict(self._functions)[step.ref]

    def trace(
        self,
        *inputs: Tensor,
        generator: torch.Generator | None = None,
        batch_size: int | None = None,
        replay: Mapping[int, tuple[Tensor, ...]] | None = None,
        check_finite: bool = False,
    ) -> Trace:
        """Evaluate box by box (no sample folding); returns every wire and every draw.

        ``replay`` maps the index of a stochastic step to the outputs it should produce
        instead of sampling.  With ``check_finite`` the first box producing a NaN or an
        infinity is named in a ``FloatingPointError``.
        """
        plan = self._plan
        if len(inputs) != len(plan.inputs):
            raise TypeError(f"the diagram takes {len(plan.inputs)} inputs ({plan.signature}), got {len(inputs)}")
        wires: dict[int, Tensor] = {}
        for position, (wire, value) in enumerate(zip(plan.inputs, inputs, strict=False)):
            if not isinstance(value, Tensor):
                raise TypeError(f"input {position} is {type(value).__name__}, not a tensor")
            if check_finite and value.is_floating_point() and not torch.isfinite(value).all():
                raise FloatingPointError(f"input {position} (type {plan.input_atoms[position]}) contains NaN or inf")
            wires[wire] = value
        batch = inputs[0].shape[0] if inputs else (batch_size or 1)
        reference: Tensor = self._ref  # type: ignore[assignment]
        like = reference.new_empty((batch,))
        draws: dict[int, tuple[Tensor, ...]] = {}
        for index, step in enumerate(plan.steps):
            args = [wires[w] for w in step.ins]
            if replay is not None and index in replay:
                outs = tuple(replay[index])
            else:
                kwargs: dict[str, Any] = {}
                if not step.deterministic:
                    kwargs["generator"] = generator
                if not step.ins:
                    kwargs["like"] = like
                try:
                    result = self._callable(step)(*args, **kwargs)
                except Exception as error:
                    shapes = ", ".join(str(tuple(getattr(a, "shape", ()))) for a in args) or "no inputs"
                    raise InterpretationError(
                        f"box {step.name!r} failed on inputs of shapes {shapes}{_misshapen(plan, step, wires)}: "
                        f"{type(error).__name__}: {error}"
                    ) from error
                outs = _as_outputs(step, result)
            if not step.deterministic:
                draws[index] = outs
            for wire, value in zip(step.outs, outs, strict=False):
                if check_finite and isinstance(value, Tensor) and value.is_floating_point():
                    if not torch.isfinite(value).all():
                        raise FloatingPointError(f"box {step.name!r} produced NaN or inf (it is the first to do so)")
                wires[wire] = value
        return Trace(tuple(wires[w] for w in plan.outputs), wires, draws)


def _as_outputs(step: Step, result: Any) -> tuple[Any, ...]:
    m = len(step.outs)
    if m == 1:
        return (result,)
    if not isinstance(result, (tuple, list)) or len(result) != m:
        raise InterpretationError(f"box {step.name!r} must return a tuple of {m} tensors, got {type(result).__name__}")
    return tuple(result)




def _make_class(name: str, source: str, functions: tuple[tuple[str, Any], ...]) -> type[CompiledDiagram]:
    return make_class(name, source, functions, CompiledDiagram, __name__)


def _restore(name: str, source: str, functions: tuple[tuple[str, Any], ...]) -> CompiledDiagram:
    cls = _make_class(name, source, functions)
    return cls.__new__(cls)


def _misshapen(plan: Any, step: Any, wires: Mapping[Any, Any]) -> str:
    """Where a failing box's input came from a box that returned the wrong per-example shape: that box, named."""
    producers = {wire: (earlier.name, atom) for earlier in plan.steps
                 for wire, atom in zip(earlier.outs, earlier.out_atoms, strict=False)}
    for wire in step.ins:
        if wire not in producers:
            continue
        name, atom = producers[wire]
        spec, value = plan.specs.get(atom), wires[wire]
        if spec is not None and isinstance(value, Tensor) and not spec.matches(tuple(value.shape[1:])):
            return (f" (the fault is upstream: box {name!r} returned per-example shape {tuple(value.shape[1:])}, "
                    f"but its type {atom} is specified as {spec})")
    return ""

def compile(  # noqa: A001 - the backend's verb
    diagram: Diagram | Any,
    interpretation: Interpretation | Mapping[Any, Any],
    *,
    types: Mapping[Any, Spec] | None = None,
    samples: int | None = None,
    reduce: str | None = None,
    check: bool = True,
    name: str | None = None,
    ave_samples: int = 32,
    fuse: bool = True,
    symmetry: GroupActions | None = None,
    validate: bool = True,
) -> CompiledDiagram:
    """Compile ``diagram`` (or a C^G morphism, e.g. from :func:`markovcat.symmetrisation.sym`) to an ``nn.Module``.

    For a C^G morphism the axioms of its group and of its domain's and codomain's
    actions are checked as well, whether or not ``interpretation`` declares them.

    ``samples=n`` folds ``n`` independent samples into the batch: the inputs are repeated,
    the diagram runs once on ``batch * n`` rows, and each output gets shape
    ``(batch, n, ...)`` (``reduce="mean"`` averages them: Monte-Carlo ``ave``).
    ``check=False`` skips the dry run and the axiom checks (missing boxes are always refused).
    A box made by :func:`markovcat.symmetrisation.ave` and not interpreted otherwise becomes
    the Monte-Carlo mean of its body over ``ave_samples`` samples, drawn in one batched pass.
    ``fuse=False`` ignores the interpretation's fusions.  The model keeps the C^G morphism
    as ``model.morphism`` and ``symmetry`` (the torch group and actions) as ``model.symmetry``.
    ``validate=False`` compiles a ``forward`` that does not check its inputs (the bare fast path;
    also ``model.validate = False`` later); see :mod:`~markovcat.backends.torch.validation` for what the checks cover.
    The interpretation's modules are never modified, not even for the dry run.
    """
    if not isinstance(interpretation, Interpretation):
        interpretation = Interpretation(boxes=interpretation)
    morphism = None
    if not isinstance(diagram, Diagram) and isinstance(getattr(diagram, "diagram", None), Diagram):
        morphism = diagram  # a C^G morphism: its group's and actions' axioms are checked too
        diagram = morphism.diagram
        interpretation = interpretation | Interpretation(laws=[morphism.group, morphism.dom.action,
                                                               morphism.cod.action])
        name = name or morphism.name
    if not isinstance(diagram, Diagram):
        raise TypeError(f"compile takes a Diagram or a C^G morphism, got {type(diagram).__name__} {diagram!r}")
    if types:
        interpretation = interpretation | Interpretation(types=types)
    if samples is not None and (not isinstance(samples, int) or samples < 1):
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    if reduce not in (None, "mean"):
        raise ValueError(f"reduce must be None or 'mean', got {reduce!r}")
    if reduce is not None and samples is None:
        raise ValueError("reduce='mean' averages over samples: give samples=n as well")
    interpretation = _with_averages(diagram, interpretation, ave_samples, check)
    table = resolve(diagram, interpretation.boxes)
    stochastic_calls: set[str] = set()
    for box, gen in diagram.signature.items():
        _check_callable(gen, table[box])
        if isinstance(table[box], CompiledDiagram) and not table[box].deterministic:
            stochastic_calls.add(box)
    plan, bindings = make_plan(diagram, table, interpretation, samples=samples, fuse=fuse, stochastic=stochastic_calls)
    source = generate(plan, samples, reduce)
    class_name = "Compiled_" + re.sub(r"[^0-9A-Za-z_]", "_", name or diagram.label().replace("the diagram", "diagram"))
    cls = _make_class(class_name, source, bindings.functions)
    model = cls(plan, bindings.modules, validate)
    model.diagram = diagram
    model.morphism, model.symmetry = morphism, symmetry
    if check:
        from markovcat.backends.torch.checks import check_fusions, check_laws, dry_run

        check_fusions(bindings.fusion_uses, table, interpretation)
        dry_run(model, diagram)
        check_laws(diagram, interpretation)
    return model


def _with_averages(diagram: Diagram, interpretation: Interpretation, samples: int, check: bool) -> Interpretation:
    from markovcat.symmetrisation import averaged

    extra: dict[str, Any] = {}
    for name, gen in diagram.signature.items():
        body = None if name in interpretation.boxes else averaged(gen)
        if body is not None:
            extra[name] = compile(body, interpretation, samples=samples, reduce="mean", check=check,
                                  name=f"ave_{name}", validate=False)  # its inputs are wires the outer model made
    return interpretation | Interpretation(extra) if extra else interpretation


def _check_callable(gen: Generator, value: Any) -> None:
    if not callable(value):
        raise InterpretationError(f"box {gen.name!r} is interpreted by {type(value).__name__}, not a function")
    if not gen.deterministic and not _accepts(value, "generator"):
        raise InterpretationError(
            f"box {gen.name!r} is stochastic, so its interpretation must be a sampler taking a keyword "
            "generator=... (a torch.Generator or None); declare the box deterministic=True if it is a function"
        )
    if not len(gen.dom) and not _accepts(value, "like"):
        raise InterpretationError(
            f"box {gen.name!r} has no inputs, so its interpretation must take a keyword like=... "
            "(a tensor of shape (batch,) on the model's device and dtype)"
        )


def __getattr__(name: str) -> Any:
    """``Symmetry``, the old name of :class:`GroupActions` (beside the group ``Symmetric``), deprecated."""
    if name == "Symmetry":
        warnings.warn(f"{__name__}.Symmetry is deprecated: use GroupActions", DeprecationWarning, stacklevel=2)
        return GroupActions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
