"""FinStoch: diagrams as stochastic matrices between finite sets (exact, numpy).

Each atom is a finite set ``{0, .., n-1}``; a box ``A -> B`` is a row-stochastic
array of shape ``(|A|, |B|)`` (rows indexed by input tuples in lexicographic order),
a deterministic box a 0/1 array with one 1 per row.  :func:`evaluate` returns the
matrix of the whole diagram by summing over every assignment of its wires, so it
costs ``n ** wires``: meant for small diagrams, as an independent semantic check of
:func:`markovcat.equal` (soundness: equal diagrams have equal matrices).

>>> import numpy as np
>>> from markovcat import Ty, Box, Copy
>>> X = Ty("X")
>>> coin = Box("coin", Ty(), X)
>>> model = {"coin": np.array([[0.5, 0.5]])}
>>> evaluate(coin >> Copy(X), model, {"X": 2}).round(2).tolist()   # one draw, copied
[[0.5, 0.0, 0.0, 0.5]]
>>> evaluate(Copy(Ty()) >> (coin @ coin), model, {"X": 2}).round(2).tolist()  # two draws
[[0.25, 0.25, 0.25, 0.25]]
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from markovcat.syntax import Diagram, Generator

__all__ = ["evaluate", "random_model"]


def _size(atoms: tuple[str, ...], sizes: Mapping[str, int]) -> int:
    return int(np.prod([sizes[a] for a in atoms])) if atoms else 1


def _index(values: tuple[int, ...], atoms: tuple[str, ...], sizes: Mapping[str, int]) -> int:
    index = 0
    for value, atom in zip(values, atoms):
        index = index * sizes[atom] + value
    return index


def evaluate(diagram: Diagram, model: Mapping[str, np.ndarray], sizes: Mapping[str, int]) -> np.ndarray:
    """The stochastic matrix ``(|dom|, |cod|)`` of ``diagram`` under ``model``."""
    for node in diagram.nodes:
        if node.gen.name not in model:
            raise KeyError(f"box {node.gen.name!r} has no matrix in the model")
    dom, cod = diagram.dom.atoms, diagram.cod.atoms
    result = np.zeros((_size(dom, sizes), _size(cod, sizes)))
    for values in itertools.product(*(range(sizes[a]) for a in dom)):
        states: dict[tuple[tuple[int, int], ...], float] = {tuple(zip(diagram.inputs, values)): 1.0}
        for node in diagram.nodes:
            matrix = model[node.gen.name]
            gen = node.gen
            new: dict[tuple[tuple[int, int], ...], float] = {}
            for state, p in states.items():
                env = dict(state)
                row = matrix[_index(tuple(env[w] for w in node.ins), gen.dom.atoms, sizes)]
                for outs in itertools.product(*(range(sizes[a]) for a in gen.cod.atoms)):
                    q = row[_index(outs, gen.cod.atoms, sizes)]
                    if q:
                        key = state + tuple(zip(node.outs, outs))
                        new[key] = new.get(key, 0.0) + p * q
            states = new
        row_index = _index(values, dom, sizes)
        for state, p in states.items():
            env = dict(state)
            result[row_index, _index(tuple(env[w] for w in diagram.outputs), cod, sizes)] += p
    return result


def random_model(
    generators: Mapping[str, Generator] | list[Generator], sizes: Mapping[str, int], seed: int = 0
) -> dict[str, np.ndarray]:
    """Generic random matrices: Dirichlet rows for stochastic boxes, random functions otherwise."""
    rng = np.random.default_rng(seed)
    gens = generators.values() if isinstance(generators, Mapping) else generators
    model = {}
    for gen in gens:
        rows, cols = _size(gen.dom.atoms, sizes), _size(gen.cod.atoms, sizes)
        if gen.deterministic:
            matrix = np.zeros((rows, cols))
            matrix[np.arange(rows), rng.integers(0, cols, size=rows)] = 1.0
        else:
            matrix = rng.dirichlet(np.ones(cols), size=rows)
        model[gen.name] = matrix
    return model
