"""Compile a diagram to a ``torch.nn.Module`` (the Stoch backend).

Objects are interpreted as :class:`Spec` s (a per-example shape and a dtype; every
tensor carries a leading batch dimension), boxes by callables:

* a **deterministic** box ``f : A1 @ ... @ An -> B1 @ ... @ Bm`` by a torch function or
  an ``nn.Module`` called as ``f(a1, ..., an)``;
* a **stochastic** box by a sampler called as ``k(a1, ..., an, generator=g)``, where ``g``
  is a ``torch.Generator`` or ``None`` (the global generator), so a seeded run is
  reproducible bit for bit;
* a box with no inputs (``unit : I -> G``, a prior ``I -> Z``) additionally receives
  ``like=t``, a tensor whose leading dimension is the batch size, on the model's device
  and with its floating dtype (the first input of the diagram when that is a floating
  tensor, else an empty tensor of shape ``(batch,)``); only its shape[0], dtype and
  device are meaningful.

One output is returned as a tensor, several as a tuple.  :func:`compile` writes the
forward pass as straight-line Python (see ``model.code``): one line per box occurrence,
structural wiring resolved at compile time, boxes whose outputs are all discarded
dropped (the Markov law ``k >> del = del``).  Every ``nn.Module`` is registered once, so
a box used twice shares its parameters.  Before returning it checks that every box is
interpreted, runs the diagram once on meta tensors to check every wire against its
type's spec (naming the box at fault), and checks the axioms of every declared group
and action numerically (:mod:`markovcat.backends.torch.checks`).  None of this touches
the interpretation's modules: the dry run runs a copy of the model whose parameters live
on the meta device, so concurrent compiles sharing a module are safe.

The generated code holds only identifiers the compiler made (``x0``, ``w3``, ``f_net``,
``self.b_net``; box names are reduced to ASCII letters, digits and ``_``, and made
unique); a box's own name appears only ``ascii``-escaped in a comment, and in full in
``model.boxes`` (one entry per generated line).

**Input validation.**  By default the generated ``forward`` first checks its inputs and
raises ``TypeError``/``ValueError`` naming the input, its type and the box that reads it:
the number of inputs, that each is a tensor with a batch dimension in front of its
type's per-example shape (an unbatched input is refused, not broadcast), one batch size
for all inputs, the dtype (a Spec's dtype, or else the model's floating dtype: that of
its parameters, following ``model.to(dtype)``; a model without parameters takes any
floating dtype), and that floating inputs are finite.  The metadata checks cost no
tensor work; the finiteness check is one fused reduction, read back on the CPU and
asserted on the device elsewhere (``torch._assert_async``: no synchronisation, but a
failure on CUDA is a device-side assertion that ends the CUDA context, so call
:meth:`CompiledDiagram.check_inputs` first on data you do not trust there).  Under
``torch.compile`` the same checks are traced (with ``fullgraph=True`` a refused input is
reported as dynamo's "Observed exception", which quotes the message).  Opt out with
``compile(..., validate=False)`` or ``model.validate = False`` for the bare fast path.
"""

from __future__ import annotations

import builtins
import copy
import itertools
import linecache
import math
import re
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from markovcat.backends.python import InterpretationError, box_name, resolve
from markovcat.backends.torch.linalg import accepts as _accepts
from markovcat.backends.torch.linalg import rand, randn
from markovcat.syntax import Diagram, Generator, Node, Ty

__all__ = [
    "Spec",
    "Interpretation",
    "CompiledDiagram",
    "Trace",
    "Symmetry",
    "Gaussian",
    "Invariant",
    "compile",
    "InterpretationError",
    "randn",
    "rand",
]

def _gaussian(batch: int, shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype,
              device: torch.device | str) -> Tensor:
    return randn((batch, *shape), generator, dtype, device)


@dataclass(frozen=True)
class Spec:
    """The interpretation of an atomic type: per-example ``shape`` and ``dtype``.

    ``dtype=None`` means the model's floating dtype (it follows ``model.to(dtype)``);
    a ``None`` entry in ``shape`` matches any size.  ``sample(batch, generator, dtype,
    device)`` draws random elements, used by the axiom and equivariance checks; it
    defaults to standard Gaussian entries for floating specs.
    """

    shape: tuple[int | None, ...] = ()
    dtype: torch.dtype | None = None
    sample: Callable[..., Tensor] | None = None

    def random(self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        """``batch`` random elements of this type."""
        dtype = self.dtype or dtype or torch.get_default_dtype()
        if self.sample is not None:
            return self.sample(batch, generator, dtype, device)
        if None in self.shape:
            raise InterpretationError(f"cannot draw random elements of a spec with a free dimension {self.shape}")
        if not dtype.is_floating_point:
            raise InterpretationError(f"a spec of dtype {dtype} needs a sample function to draw random elements")
        return _gaussian(batch, tuple(self.shape), generator, dtype, device)  # type: ignore[arg-type]

    def matches(self, per_example: tuple[int, ...]) -> bool:
        return len(per_example) == len(self.shape) and all(
            s is None or s == t for s, t in zip(self.shape, per_example, strict=False)
        )

    def __str__(self) -> str:
        dims = ", ".join("*" if s is None else str(s) for s in self.shape)
        return f"({dims})" + ("" if self.dtype is None else f" {self.dtype}")


def _atom(key: str | Ty) -> str:
    if isinstance(key, Ty):
        if len(key) != 1:
            raise TypeError(f"a spec interprets one atomic type, got {key}")
        return key.atoms[0]
    if not isinstance(key, str):
        raise TypeError(f"types are keyed by atom names or atomic Ty, got {type(key).__name__} {key!r}")
    return key


@dataclass
class Interpretation:
    """What the boxes and types of a diagram mean in PyTorch.

    ``boxes`` maps box names (or Boxes) to callables; ``types`` maps atom names (or atomic
    ``Ty``) to :class:`Spec`; ``laws`` lists the :class:`~markovcat.groups.Group` and
    :class:`~markovcat.groups.Action` objects whose axioms the boxes must satisfy;
    ``couplings`` maps stochastic box names to ``coupling(g, *draws) -> draws``, the
    law-preserving map that :func:`markovcat.check_equivariance` uses to replay a
    box's draw when the input is moved by ``g`` (e.g. ``R0 -> g R0`` for a Haar draw);
    a sampler with a ``coupling`` attribute declares its own.  ``fusions`` maps a pair
    ``(inner, outer)`` of deterministic box names to ``fused(a, *rest)``, equal to
    ``outer(inner(a), *rest)``: the compiler then emits one call where ``outer``'s first
    input comes from ``inner`` (e.g. ``act(inv(g), x)`` as ``x @ g`` for rotations), after
    checking the equality on random elements.  Combine interpretations with ``|``;
    replace some boxes' meanings with :meth:`override` (which drops their fusions).
    """

    boxes: Mapping[Any, Any] = field(default_factory=dict)
    types: Mapping[Any, Spec] = field(default_factory=dict)
    laws: Sequence[Any] = ()
    couplings: Mapping[Any, Callable[..., Any]] = field(default_factory=dict)
    fusions: Mapping[tuple[Any, Any], Callable[..., Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fusions = {(box_name(a), box_name(b)): f for (a, b), f in self.fusions.items()}
        self.boxes = {box_name(k): v for k, v in self.boxes.items()}
        self.types = {_atom(k): v for k, v in self.types.items()}
        self.couplings = {box_name(k): v for k, v in self.couplings.items()}
        self.laws = tuple(self.laws)
        for atom, spec in self.types.items():
            if not isinstance(spec, Spec):
                raise TypeError(f"type {atom!r} is interpreted by {type(spec).__name__} {spec!r}, not a Spec")

    def override(self, boxes: Mapping[Any, Any]) -> Interpretation:
        """A copy in which ``boxes`` replace the meanings of the boxes they name."""
        names = {box_name(k) for k in boxes}
        fusions = {pair: f for pair, f in self.fusions.items() if not names & set(pair)}  # they may no longer hold
        return Interpretation({**self.boxes, **{box_name(k): v for k, v in boxes.items()}}, self.types, self.laws,
                              self.couplings, fusions)

    def __or__(self, other: Interpretation) -> Interpretation:
        if not isinstance(other, Interpretation):
            return NotImplemented
        for mine, theirs, what in ((self.boxes, other.boxes, "box"), (self.types, other.types, "type")):
            for key in mine.keys() & theirs.keys():
                if mine[key] is not theirs[key] and mine[key] != theirs[key]:
                    raise InterpretationError(f"two interpretations give {what} {key!r} different meanings")
        laws = list(self.laws) + [law for law in other.laws if law not in self.laws]
        return Interpretation({**self.boxes, **other.boxes}, {**self.types, **other.types}, laws,
                              {**self.couplings, **other.couplings}, {**self.fusions, **other.fusions})


# --------------------------------------------------------------------------------------
# The plan: the diagram reduced to what the compiled module needs (picklable).


@dataclass(frozen=True)
class _Step:
    name: str
    ins: tuple[int, ...]
    outs: tuple[int, ...]
    out_atoms: tuple[str, ...]
    deterministic: bool
    ref: str  # "self.<attr>" (a module) or the global name of a function


def _comment(name: str, limit: int = 60) -> str:
    """``name`` for a comment in generated code: ``ascii``-escaped, so no line break or odd character survives."""
    text = ascii(name)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _live(nodes: Sequence[Node], outputs: Iterable[int]) -> list[Node]:
    """The nodes some output of which reaches ``outputs`` (the Markov law drops the others)."""
    live = set(outputs)
    keep: list[Node] = []
    for node in reversed(nodes):
        if any(w in live for w in node.outs):
            keep.append(node)
            live.update(node.ins)
    return keep[::-1]


def _fuse(nodes: list[Node], fusions: Mapping[tuple[str, str], Any]) -> tuple[list[Node], dict[str, tuple[str, str]]]:
    """Replace ``outer(inner(a), *rest)`` by one fused node wherever a fusion is declared."""
    producer = {w: node for node in nodes for w in node.outs}
    fused: dict[str, tuple[str, str]] = {}
    result = []
    for node in nodes:
        inner = producer.get(node.ins[0]) if node.ins else None
        pair = (inner.gen.name, node.gen.name) if inner is not None else None
        if (inner is not None and pair in fusions and len(inner.gen.dom) == len(inner.gen.cod) == 1
                and inner.gen.deterministic and node.gen.deterministic):
            name = f"{node.gen.name}({inner.gen.name})"
            gen = Generator(name, inner.gen.dom @ node.gen.dom[1:], node.gen.cod, True)
            fused[name] = pair  # type: ignore[assignment]
            node = Node(gen, (inner.ins[0], *node.ins[1:]), node.outs)
        result.append(node)
    return result, fused


def _identifier(name: str, taken: set[str], prefix: str = "b_") -> str:
    """A fresh Python identifier for box ``name``: ASCII letters, digits and ``_`` only.

    (Non-ASCII letters are replaced too: Python NFKC-normalises identifiers, so ``f_\ufb01``
    would silently be the same name as ``f_fi``.)
    """
    base = prefix + (re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_")[:40] or "box")
    candidate, k = base, 1
    while candidate in taken:
        k += 1
        candidate = f"{base}_{k}"
    taken.add(candidate)
    return candidate


class Invariant:
    """The coupling ``(g, *draws) -> draws``, for noise whose law ignores the input and ``g``."""

    def __call__(self, g: Tensor, *draws: Tensor) -> Any:
        return draws[0] if len(draws) == 1 else draws

    def __repr__(self) -> str:
        return "Invariant()"


class Gaussian:
    """A sampler of standard Gaussian noise of per-example ``shape`` (for boxes ``I -> E`` or ``X -> E``).

    Its law ignores the inputs, so its :attr:`coupling` leaves draws unchanged.
    """

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(shape)

    def __call__(self, *inputs: Tensor, generator: torch.Generator | None = None, like: Tensor | None = None) -> Tensor:
        reference = inputs[0] if inputs else like
        if reference is None:
            raise InterpretationError("Gaussian noise with no inputs needs like=... for the batch size")
        dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
        return randn((reference.shape[0], *self.shape), generator, dtype, reference.device)

    coupling = Invariant()


@dataclass(frozen=True)
class Symmetry:
    """The torch group and actions a model is equivariant for: what :func:`check_equivariance` needs.

    ``group`` is a :class:`~markovcat.backends.torch.groups.TorchGroup`, ``input`` and
    ``output`` its :class:`~markovcat.backends.torch.groups.TorchAction` s on the model's
    input and output.  A compiled model carries it as ``model.symmetry``.
    """

    group: Any
    input: Any
    output: Any


class Trace:
    """The value of every wire of one run, and the draws of every stochastic box occurrence."""

    def __init__(self, outputs: tuple[Tensor, ...], wires: dict[int, Tensor], draws: dict[int, tuple[Tensor, ...]]):
        self.outputs, self.wires, self.draws = outputs, wires, draws

    @property
    def output(self) -> Any:
        return self.outputs[0] if len(self.outputs) == 1 else self.outputs


class CompiledDiagram(nn.Module):
    """A diagram compiled to straight-line PyTorch; ``forward`` is generated per diagram.

    Attributes: ``code`` (the generated source), ``boxes`` (the box name behind each generated
    call, in order), ``diagram``, ``morphism`` and ``symmetry`` (kept through ``copy.deepcopy``,
    which shares these immutable values, and through ``pickle`` / ``torch.save``),
    ``validate`` (whether ``forward`` checks its inputs; see the module docstring),
    ``deterministic``, ``samples``, ``input_atoms`` / ``output_atoms`` and ``specs``.
    :meth:`trace` evaluates the same boxes node by node (for debugging and for coupled
    equivariance checks).
    """

    _source: str = ""
    _functions: tuple[tuple[str, Any], ...] = ()
    diagram: Diagram | None = None
    morphism: Any = None  # the C^G morphism it was compiled from, with its evidence (None for a plain diagram)
    symmetry: Symmetry | None = None  # the torch group and actions it is equivariant for, when known
    validate: bool = True  # whether forward checks its inputs (False: the bare fast path)
    _typed: bool = True  # whether some parameter or buffer fixes the model's floating dtype

    def __init__(self, plan: dict[str, Any], modules: Mapping[str, nn.Module], validate: bool = True) -> None:
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
    def code(self) -> str:
        return self._source

    @property
    def boxes(self) -> tuple[str, ...]:
        """The name of the box each generated call runs, in order (names never enter the code itself)."""
        return tuple(s.name for s in self._plan["steps"])

    @property
    def deterministic(self) -> bool:
        return bool(self._plan["deterministic"])

    @property
    def samples(self) -> int | None:
        samples = self._plan["samples"]
        return None if samples is None else int(samples)

    @property
    def input_atoms(self) -> tuple[str, ...]:
        return tuple(self._plan["input_atoms"])

    @property
    def output_atoms(self) -> tuple[str, ...]:
        return tuple(self._plan["output_atoms"])

    @property
    def specs(self) -> dict[str, Spec]:
        return dict(self._plan["specs"])

    @property
    def couplings(self) -> dict[str, Callable[..., Any]]:
        return dict(self._plan["couplings"])

    @property
    def stochastic_boxes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.name for s in self._plan["steps"] if not s.deterministic))

    def extra_repr(self) -> str:
        return self._plan["signature"]

    def check_inputs(self, *inputs: Tensor) -> None:
        """Raise a clear error unless the inputs fit the diagram's input types (shape, dtype, finite values).

        The same checks as the validating ``forward`` (whatever ``model.validate`` says), but the
        finiteness is always read back to the host: a recoverable ``ValueError`` on any device, at the
        cost of one synchronisation.  It proves the inputs well formed, nothing about the outputs.
        """
        _check_inputs(self, inputs, synchronise=True)

    def _validate_inputs(self, *inputs: Tensor) -> None:
        """Called first by the generated ``forward``: the input checks unless ``self.validate`` is False."""
        if self.validate:
            _check_inputs(self, inputs, synchronise=False)

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
    def _callable(self, step: _Step) -> Any:
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
        if len(inputs) != len(plan["inputs"]):
            raise TypeError(f"the diagram takes {len(plan['inputs'])} inputs ({plan['signature']}), got {len(inputs)}")
        wires: dict[int, Tensor] = {}
        for position, (wire, value) in enumerate(zip(plan["inputs"], inputs, strict=False)):
            if not isinstance(value, Tensor):
                raise TypeError(f"input {position} is {type(value).__name__}, not a tensor")
            if check_finite and value.is_floating_point() and not torch.isfinite(value).all():
                raise FloatingPointError(f"input {position} (type {plan['input_atoms'][position]}) contains NaN or inf")
            wires[wire] = value
        batch = inputs[0].shape[0] if inputs else (batch_size or 1)
        reference: Tensor = self._ref  # type: ignore[assignment]
        like = reference.new_empty((batch,))
        draws: dict[int, tuple[Tensor, ...]] = {}
        for index, step in enumerate(plan["steps"]):
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
                        f"box {step.name!r} failed on inputs of shapes {shapes}: {type(error).__name__}: {error}"
                    ) from error
                outs = _as_outputs(step, result)
            if not step.deterministic:
                draws[index] = outs
            for wire, value in zip(step.outs, outs, strict=False):
                if check_finite and isinstance(value, Tensor) and value.is_floating_point():
                    if not torch.isfinite(value).all():
                        raise FloatingPointError(f"box {step.name!r} produced NaN or inf (it is the first to do so)")
                wires[wire] = value
        return Trace(tuple(wires[w] for w in plan["outputs"]), wires, draws)


def _as_outputs(step: _Step, result: Any) -> tuple[Any, ...]:
    m = len(step.outs)
    if m == 1:
        return (result,)
    if not isinstance(result, (tuple, list)) or len(result) != m:
        raise InterpretationError(f"box {step.name!r} must return a tuple of {m} tensors, got {type(result).__name__}")
    return tuple(result)


_classes = itertools.count()  # makes each generated class's file name unique (names only, no state)


def _make_class(name: str, source: str, functions: tuple[tuple[str, Any], ...]) -> type[CompiledDiagram]:
    """The class whose ``forward`` is ``source``; its ``linecache`` entry (for tracebacks) lives as long as it."""
    namespace: dict[str, Any] = dict(functions)
    namespace["torch"] = torch
    filename = f"<markovcat-compiled {name} {next(_classes)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(builtins.compile(source, filename, "exec"), namespace)
    cls = type(name, (CompiledDiagram,), {"forward": namespace["forward"], "_source": source,
                                          "_functions": functions, "__module__": __name__})
    weakref.finalize(cls, linecache.cache.pop, filename, None)
    return cls


def _restore(name: str, source: str, functions: tuple[tuple[str, Any], ...]) -> CompiledDiagram:
    cls = _make_class(name, source, functions)
    return cls.__new__(cls)


def _assert_finite(value: Tensor, message: str) -> None:
    """Assert on ``value``'s device that it holds no NaN or inf: one reduction (fused under ``torch.compile``),
    no host synchronisation.

    A failure raises ``RuntimeError(message)`` on the CPU and under ``torch.compile``; on CUDA it is a
    device-side assertion, reported at the next synchronisation.
    """
    torch._assert_async(torch.isfinite(value).all(), message)


@dataclass(frozen=True)
class _InputCheck:
    """What the validating ``forward`` checks of one input, prepared at compile time (strings included, so
    that the checks do no formatting unless they fail, and read as constants under ``torch.compile``)."""

    name: str  # "input 0 (type X, read by box 'net')"
    spec: Spec | None
    rank: int  # with the batch dimension (0: unknown, only a batch dimension is required)
    shape: tuple[int, ...] | None  # the per-example shape when it has no free dimension
    expected: str  # "(batch, 16, 3)"
    described: str  # str(spec)

    @classmethod
    def of(cls, name: str, spec: Spec | None) -> _InputCheck:
        if spec is None:
            return cls(name, None, 0, None, "(batch, ...)", "unspecified")
        shape = None if None in spec.shape else tuple(int(s) for s in spec.shape if s is not None)
        expected = "(batch" + "".join(f", {'*' if s is None else s}" for s in spec.shape) + ")"
        return cls(name, spec, len(spec.shape) + 1, shape, expected, str(spec))


def _check_inputs(model: CompiledDiagram, inputs: Sequence[Any], synchronise: bool) -> None:
    """The input checks of the validating ``forward`` (see the module docstring for what they prove)."""
    checks: tuple[_InputCheck, ...] = model._plan["input_checks"]
    if len(inputs) != len(checks):
        raise TypeError(f"the diagram takes {len(checks)} inputs ({model._plan['signature']}), got {len(inputs)}")
    reference: Tensor = model._ref  # type: ignore[assignment]
    floating: torch.dtype | None = reference.dtype if model._typed else None
    compiling = torch.compiler.is_compiling()
    batch = None
    for position, (value, check) in enumerate(zip(inputs, checks, strict=True)):
        name, spec = check.name, check.spec
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} is {type(value).__name__}, not a tensor")
        rank = value.dim()
        if rank == 0 or (check.rank and rank != check.rank):
            hint = ""
            if spec is not None and rank == check.rank - 1 and spec.matches(tuple(value.shape)):
                hint = ": it lacks the batch dimension; for one example use x.unsqueeze(0)"
            raise ValueError(f"{name} has shape {tuple(value.shape)}; expected {check.expected}{hint}")
        if spec is not None:
            if not (value.shape[1:] == check.shape if check.shape is not None else spec.matches(value.shape[1:])):
                raise ValueError(f"{name} has per-example shape {tuple(value.shape[1:])}, expected {check.described} "
                                 f"(with the batch dimension in front)")
            if spec.dtype is not None:
                if value.dtype != spec.dtype:
                    raise ValueError(f"{name} has dtype {value.dtype}, but its type is {check.described}: convert "
                                     f"it with x.to({spec.dtype})")
            elif not value.is_floating_point():
                raise ValueError(f"{name} has dtype {value.dtype}, but its type is floating (Spec dtype None): "
                                 f"convert it with x.to({floating or torch.get_default_dtype()}), or declare the "
                                 f"type's dtype in its Spec")
        if floating is not None and (spec is None or spec.dtype is None) and value.is_floating_point() \
                and value.dtype != floating:
            raise ValueError(f"{name} has dtype {value.dtype}, but the model's parameters are {floating}: convert "
                             f"the input with x.to({floating}) or the model with model.to({value.dtype})")
        if batch is None:
            batch = value.shape[0]
        elif value.shape[0] != batch:
            sizes = ", ".join(f"input {i} has {x.shape[0]}" for i, x in enumerate(inputs[: position + 1]))
            raise ValueError(f"the inputs have different batch sizes: {sizes}")
        if value.is_floating_point() or value.is_complex():
            if compiling or not (value.is_cpu or synchronise):
                _assert_finite(value, f"{name} contains NaN or inf")  # traceable, no host synchronisation
            elif not value.is_meta and not _finite_on_host(value):
                raise ValueError(f"{name} contains NaN or inf")


def _finite_on_host(value: Tensor) -> bool:
    """Whether ``value`` is all finite, read back to the host: one sum, exact check only if the sum is not finite.

    (A NaN or inf entry always makes the sum NaN or inf; a non-finite sum of finite entries is an overflow.)
    """
    if not value.is_complex() and math.isfinite(value.sum().item()):
        return True
    return bool(torch.isfinite(value).all())


# --------------------------------------------------------------------------------------
# Code generation


def _generate(plan: dict[str, Any], samples: int | None, reduce: str | None) -> str:
    args = [f"x{i}" for i in range(len(plan["inputs"]))]
    signature = ", ".join(["self", *args, "*"] + ([] if args else ["batch_size: int = 1"]) + ["generator=None"])
    lines = [f"def forward({signature}):"]
    if args:
        lines.append(f"    self._validate_inputs({', '.join(args)})  # unless model.validate is False")
    names: dict[int, str] = {}
    for i, wire in enumerate(plan["inputs"]):
        name = names[wire] = args[i]
        if samples is not None:
            lines.append(f"    {name} = {name}.repeat_interleave({samples}, 0)")
    steps: list[_Step] = plan["steps"]
    like = "like"
    if any(not s.ins for s in steps):
        first = plan["specs"].get(plan["input_atoms"][0]) if args else None
        if first is not None and first.dtype is None:  # a floating input already carries batch, device, dtype
            like = args[0]
        else:
            batch = f"{args[0]}.shape[0]" if args else ("batch_size" if samples is None else f"batch_size * {samples}")
            lines.append(f"    like = self._ref.new_empty(({batch},))")
    for step in steps:
        call_args = [names[w] for w in step.ins]
        if not step.deterministic:
            call_args.append("generator=generator")
        if not step.ins:
            call_args.append(f"like={like}")
        targets = [f"w{w}" for w in step.outs]
        for w, t in zip(step.outs, targets, strict=False):
            names[w] = t
        lines.append(f"    {', '.join(targets)} = {step.ref}({', '.join(call_args)})  # {_comment(step.name)}")
    results = []
    for w in plan["outputs"]:
        value = names[w]
        if samples is not None:
            value = f"{value}.unflatten(0, (-1, {samples}))"
            if reduce == "mean":
                value = f"{value}.mean(1)"
        results.append(value)
    if len(results) == 1:
        lines.append(f"    return {results[0]}")
    else:
        lines.append(f"    return ({', '.join(results)}{',' if len(results) == 1 else ''})")
    return "\n".join(lines) + "\n"


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
    symmetry: Symmetry | None = None,
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
    also ``model.validate = False`` later); see the module docstring for what the checks cover.
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
    specs = dict(interpretation.types)
    table = resolve(diagram, interpretation.boxes)
    modules: dict[str, nn.Module] = {}
    module_attr: dict[int, str] = {}
    functions: list[tuple[str, Any]] = []
    function_name: dict[int, str] = {}
    taken: set[str] = {"_ref", "_plan", "torch"}
    refs: dict[str, str] = {}
    stochastic_calls: set[str] = set()
    for box, gen in diagram.signature.items():
        value = table[box]
        _check_callable(gen, value)
        if isinstance(value, CompiledDiagram) and not value.deterministic:
            stochastic_calls.add(box)
        if isinstance(value, nn.Module):
            attr = module_attr.get(id(value))
            if attr is None:
                attr = module_attr[id(value)] = _identifier(box, taken)
                modules[attr] = value
            refs[box] = f"self.{attr}"
        else:
            known = function_name.get(id(value))
            if known is None:
                known = function_name[id(value)] = _identifier(box, taken, "f_")
                functions.append((known, value))
            refs[box] = known
    nodes = _live(diagram.nodes, diagram.outputs)
    fused: dict[str, tuple[str, str]] = {}
    if fuse:
        nodes, fused = _fuse(nodes, interpretation.fusions)
        nodes = _live(nodes, diagram.outputs)
        for name_, pair in fused.items():
            refs[name_] = _identifier(name_, taken, "f_")
            functions.append((refs[name_], interpretation.fusions[pair]))
    steps = [
        _Step(n.gen.name, n.ins, n.outs, n.gen.cod.atoms, n.gen.deterministic and n.gen.name not in stochastic_calls,
              refs[n.gen.name])
        for n in nodes
    ]
    couplings = {b: table[b].coupling for b in diagram.signature if hasattr(table[b], "coupling")}
    couplings.update({b: c for b, c in interpretation.couplings.items() if b in diagram.signature})
    plan = {
        "inputs": diagram.inputs,
        "outputs": diagram.outputs,
        "input_atoms": diagram.dom.atoms,
        "output_atoms": diagram.cod.atoms,
        "steps": steps,
        "deterministic": all(s.deterministic for s in steps),
        "samples": samples,
        "specs": specs,
        "input_checks": tuple(_InputCheck.of(_reader(i, wire, atom, steps), specs.get(atom)) for i, (wire, atom)
                              in enumerate(zip(diagram.inputs, diagram.dom.atoms, strict=True))),
        "couplings": couplings,
        "signature": f"{diagram.label()} : {diagram.dom} -> {diagram.cod}",
    }
    source = _generate(plan, samples, reduce)
    class_name = "Compiled_" + re.sub(r"[^0-9A-Za-z_]", "_", name or diagram.label().replace("the diagram", "diagram"))
    cls = _make_class(class_name, source, tuple(functions))
    model = cls(plan, modules, validate)
    model.diagram = diagram
    model.morphism, model.symmetry = morphism, symmetry
    if check:
        from markovcat.backends.torch.checks import check_fusions, check_laws, dry_run

        uses = {(fused[n.gen.name], n.gen.dom.atoms) for n in nodes if n.gen.name in fused}
        check_fusions(uses, table, interpretation)
        dry_run(model, diagram)
        check_laws(diagram, interpretation)
    return model


def _reader(position: int, wire: int, atom: str, steps: Sequence[_Step]) -> str:
    """How errors name input ``position``: its type and the first box that reads it."""
    reader = next((s.name for s in steps if wire in s.ins), None)
    return f"input {position} (type {atom}" + ("" if reader is None else f", read by box {reader!r}") + ")"


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
