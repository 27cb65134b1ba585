"""A group in a Markov category and its axioms.

The structure maps ``mul``, ``unit``, ``inv`` are deterministic boxes; associativity
is drawn as in Cornish 2024.  None of the axioms is a Markov law: they are assumptions.
"""

from __future__ import annotations

from markovcat.equation import Equation
from markovcat.proof import Proof
from markovcat.syntax import Diagram

from ._example import G


def figures() -> dict[str, Diagram | Equation]:
    figs: dict[str, Diagram | Equation] = {"structure": G.mul @ G.unit @ G.inv}
    for eq in G.axioms:
        figs[eq.name.replace(" ", "_") if eq.name else "axiom"] = eq
    return figs


def proofs() -> dict[str, Proof]:
    """The shipped proofs about this construction (``markovcat.theorems``), unchecked."""
    from markovcat import theorems as proofs

    return {
        "inverse_of_unit": proofs.inverse_of_unit(G),
        "double_inverse": proofs.double_inverse(G),
        "cancel_product": proofs.cancel_product(G),
        "inverse_of_product": proofs.inverse_of_product(G),
    }
