"""The plan: a diagram reduced to what its compiled module needs (immutable, picklable).

:func:`make_plan` keeps the boxes some output of which is used (the Markov law
``k >> del = del`` drops the others), applies the interpretation's declared fusions, gives
each box a fresh identifier (ASCII letters, digits and ``_`` only: the generated code holds
only identifiers the compiler made), registers each ``nn.Module`` once (a box used twice
shares its parameters) and prepares the input checks.  :class:`Plan` is what
:mod:`~markovcat.backends.torch.codegen` writes the ``forward`` from and what a
:class:`~markovcat.backends.torch.compile.CompiledDiagram` evaluates node by node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from markovcat.backends.torch.interpretation import Interpretation, Spec
from markovcat.backends.torch.validation import InputCheck
from markovcat.syntax import Diagram, Generator, Node

__all__ = ["Step", "Plan", "Bindings", "make_plan"]


@dataclass(frozen=True)
class Step:
    """One generated call: a box occurrence, its input and output wires, and what it calls."""

    name: str
    ins: tuple[int, ...]
    outs: tuple[int, ...]
    out_atoms: tuple[str, ...]
    deterministic: bool
    ref: str  # "self.<attr>" (a module) or the global name of a function


@dataclass(frozen=True)
class Plan:
    """The diagram as the compiled module runs it: wires in and out, the steps, the specs and checks."""

    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    input_atoms: tuple[str, ...]
    output_atoms: tuple[str, ...]
    steps: tuple[Step, ...]
    samples: int | None
    specs: Mapping[str, Spec]
    input_checks: tuple[InputCheck, ...]
    couplings: Mapping[str, Callable[..., Any]]
    signature: str  # "label : dom -> cod", for messages

    __hash__ = None  # type: ignore[assignment]  # holds dicts

    @property
    def deterministic(self) -> bool:
        return all(s.deterministic for s in self.steps)


@dataclass(frozen=True)
class Bindings:
    """What the generated code refers to: the modules (by attribute), the functions (by global name)."""

    modules: Mapping[str, nn.Module]
    functions: tuple[tuple[str, Any], ...]
    fusion_uses: tuple[tuple[tuple[str, str], tuple[str, ...]], ...]  # ((inner, outer), input atoms) per fused call


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

    (Non-ASCII letters are replaced too: Python NFKC-normalises identifiers, so ``f_\\ufb01``
    would silently be the same name as ``f_fi``.)
    """
    base = prefix + (re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_")[:40] or "box")
    candidate, k = base, 1
    while candidate in taken:
        k += 1
        candidate = f"{base}_{k}"
    taken.add(candidate)
    return candidate


def _reader(position: int, wire: int, atom: str, steps: Sequence[Step]) -> str:
    """How errors name input ``position``: its type and the first box that reads it."""
    reader = next((s.name for s in steps if wire in s.ins), None)
    return f"input {position} (type {atom}" + ("" if reader is None else f", read by box {reader!r}") + ")"


def make_plan(diagram: Diagram, table: Mapping[str, Any], interpretation: Interpretation, *,
              samples: int | None = None, fuse: bool = True, stochastic: Iterable[str] = ()) -> tuple[Plan, Bindings]:
    """The plan of ``diagram`` with its boxes meaning ``table[name]``, and the modules and functions it binds.

    ``stochastic`` names boxes declared deterministic whose meaning samples all the same (a
    stochastic compiled model); their calls receive ``generator=``.
    """
    stochastic_calls = set(stochastic)
    modules: dict[str, nn.Module] = {}
    module_attr: dict[int, str] = {}
    functions: list[tuple[str, Any]] = []
    function_name: dict[int, str] = {}
    taken: set[str] = {"_ref", "_plan", "torch"}
    refs: dict[str, str] = {}
    for box in diagram.signature:
        value = table[box]
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
        for name, pair in fused.items():
            refs[name] = _identifier(name, taken, "f_")
            functions.append((refs[name], interpretation.fusions[pair]))
    steps = tuple(
        Step(n.gen.name, n.ins, n.outs, n.gen.cod.atoms, n.gen.deterministic and n.gen.name not in stochastic_calls,
             refs[n.gen.name])
        for n in nodes
    )
    couplings = {b: table[b].coupling for b in diagram.signature if hasattr(table[b], "coupling")}
    couplings.update({b: c for b, c in interpretation.couplings.items() if b in diagram.signature})
    specs = dict(interpretation.types)
    plan = Plan(
        inputs=tuple(diagram.inputs),
        outputs=tuple(diagram.outputs),
        input_atoms=tuple(diagram.dom.atoms),
        output_atoms=tuple(diagram.cod.atoms),
        steps=steps,
        samples=samples,
        specs=specs,
        input_checks=tuple(InputCheck.of(_reader(i, wire, atom, steps), specs.get(atom)) for i, (wire, atom)
                           in enumerate(zip(diagram.inputs, diagram.dom.atoms, strict=True))),
        couplings=couplings,
        signature=f"{diagram.label()} : {diagram.dom} -> {diagram.cod}",
    )
    uses = tuple(dict.fromkeys((fused[n.gen.name], n.gen.dom.atoms) for n in nodes if n.gen.name in fused))
    return plan, Bindings(modules, tuple(functions), uses)
