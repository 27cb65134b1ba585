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
``markovcat.theorems``).
"""

import importlib
import warnings
from typing import Any

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
from markovcat.gspace import Cosets, Equivariant, Evidence, GSpace, NotEquivariant, equivariance_equation
from markovcat.markov import NormalForm, NotEqual, assert_equal, equal, explain, normal_form
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
from markovcat.termgraph import to_networkx

__version__ = "0.1.0"

#: The one place where the core names code outside it.  ``mc.symmetrise`` and friends are
#: torch procedures: they live in the torch backend, and ``import markovcat`` must not import
#: torch, so each name below is looked up in its module on first use (module ``__getattr__``).
#: The core never imports a backend by an import statement, not even inside a function; the
#: import contract (``tests/test_layering.py``) allows this table and nothing else.
_FORWARDED: dict[str, str] = {
    "check_equivariance": "markovcat.backends.torch.equivariance",
    "EquivarianceReport": "markovcat.backends.torch.equivariance",
    "symmetrise": "markovcat.backends.torch.procedures",
    "canonicalise": "markovcat.backends.torch.procedures",
    "frame_average": "markovcat.backends.torch.procedures",
    "probabilistic_symmetrise": "markovcat.backends.torch.procedures",
    "janossy": "markovcat.backends.torch.procedures",
    "stochastic_symmetrise": "markovcat.backends.torch.procedures",
    "symmetrise_along": "markovcat.backends.torch.procedures",
}


#: Old names, kept for a while with a ``DeprecationWarning``: old name -> (the new name, what it is).
_DEPRECATED: dict[str, tuple[str, Any]] = {
    "canonical": ("NormalForm.of", NormalForm.of),
    "equivariance": ("equivariance_equation", equivariance_equation),
}


def __getattr__(name: str) -> Any:
    """``mc.symmetrise`` etc.: the torch procedure of that name, imported on first use (see ``_FORWARDED``)."""
    if name in _DEPRECATED:
        new, value = _DEPRECATED[name]
        warnings.warn(f"markovcat.{name} is deprecated: use markovcat.{new}", DeprecationWarning, stacklevel=2)
        return value
    module = _FORWARDED.get(name)
    if module is None:
        raise AttributeError(f"module 'markovcat' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """The module's names and the forwarded ones (which ``__getattr__`` resolves)."""
    return sorted({*globals(), *_FORWARDED})


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
    "equivariance_equation",
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
    "to_networkx",
]
# The forwarded names are public (``mc.symmetrise``, listed by ``dir(mc)``) but not in ``__all__``:
# ``from markovcat import *`` must not import torch.
