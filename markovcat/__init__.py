"""markovcat: neural-network symmetrisation as string diagrams in Markov categories.

The core language is the free Markov category: :class:`Ty`,
:class:`Box`, :func:`Copy`, :func:`Discard`, :func:`Swap`, :func:`Id`, ``>>`` and
``@``, the :func:`program` syntax, and decided equality (:func:`equal`,
:func:`normal_form`, :func:`explain`).  Interpretations live in
``markovcat.backends`` and the gallery of the seed's diagrams in
``markovcat.diagrams``.  On top of the core: groups, actions and ``C^G``
(:class:`Group`, :class:`GSpace`, :class:`Equivariant`), the adjunction and
symmetrisation (:func:`sharp`, :func:`flat`, :func:`sym`, :func:`ave`), and checked
equational proofs (:class:`Rule`, :class:`Proof`; shipped proofs in
``markovcat.proofs``).
"""

from typing import TYPE_CHECKING

from markovcat.equation import Equation
from markovcat.groups import (
    Action,
    DirectProduct,
    Group,
    Homomorphism,
    SemidirectProduct,
    direct_product,
    semidirect_product,
)
from markovcat.gspace import Cosets, Equivariant, Evidence, GSpace, NotEquivariant, equivariance
from markovcat.markov import NormalForm, NotEqual, assert_equal, canonical, equal, explain, normal_form
from markovcat.program import Wire, program
from markovcat.proof import Proof, ProofError
from markovcat.rewrite import Match, Rule, matches, rewrite, rewrites
from markovcat.symmetrisation import (
    Average,
    ave,
    flat,
    haar,
    haar_gamma,
    recursive_gamma,
    sharp,
    sym,
    sym_along,
    sym_in_stages,
    sym_program,
)
from markovcat.syntax import Box, Copy, Diagram, Discard, Generator, Id, Node, Swap, Ty, TypeMismatch

__version__ = "0.1.0"

if TYPE_CHECKING:
    from markovcat.equivariance import EquivarianceReport, check_equivariance
    from markovcat.procedures import (
        canonicalise,
        frame_average,
        janossy,
        probabilistic_symmetrise,
        stochastic_symmetrise,
        symmetrise,
        symmetrise_along,
    )

#: Torch-backed names, loaded on first use so that ``import markovcat`` does not import torch.
_LAZY = {
    "check_equivariance": "markovcat.equivariance",
    "EquivarianceReport": "markovcat.equivariance",
    "symmetrise": "markovcat.procedures",
    "canonicalise": "markovcat.procedures",
    "frame_average": "markovcat.procedures",
    "probabilistic_symmetrise": "markovcat.procedures",
    "janossy": "markovcat.procedures",
    "stochastic_symmetrise": "markovcat.procedures",
    "symmetrise_along": "markovcat.procedures",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'markovcat' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "Ty",
    "Box",
    "Generator",
    "Node",
    "Diagram",
    "Id",
    "Copy",
    "Discard",
    "Swap",
    "TypeMismatch",
    "program",
    "Wire",
    "equal",
    "explain",
    "normal_form",
    "canonical",
    "NormalForm",
    "assert_equal",
    "NotEqual",
    "Equation",
    "Group",
    "Action",
    "Homomorphism",
    "DirectProduct",
    "SemidirectProduct",
    "direct_product",
    "semidirect_product",
    "GSpace",
    "Cosets",
    "Equivariant",
    "Evidence",
    "NotEquivariant",
    "equivariance",
    "sharp",
    "flat",
    "sym",
    "sym_program",
    "sym_along",
    "sym_in_stages",
    "haar",
    "haar_gamma",
    "recursive_gamma",
    "ave",
    "Average",
    "Rule",
    "Match",
    "matches",
    "rewrite",
    "rewrites",
    "Proof",
    "ProofError",
    "check_equivariance",
    "EquivarianceReport",
    "symmetrise",
    "canonicalise",
    "frame_average",
    "probabilistic_symmetrise",
    "janossy",
    "stochastic_symmetrise",
    "symmetrise_along",
]
