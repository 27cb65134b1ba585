"""Actions ``act_X : G @ X -> X`` and the derived ones.

The regular action ``(G, *)`` is ``mul``; the trivial action is ``del_G @ id_X`` (its
axioms are Markov laws); on ``X @ Y`` the diagonal action copies ``g``.
"""

from __future__ import annotations

from markovcat.equation import Equation
from markovcat.groups import Action
from markovcat.gspace import GSpace
from markovcat.proof import Proof
from markovcat.syntax import Diagram

from ._example import REG, SX, SY, G, X, act_X


def figures() -> dict[str, Diagram | Equation]:
    compat, unit = act_X.axioms
    trivial = GSpace.trivial(X, G)
    return {
        "compatibility": compat,
        "unit": unit,
        "regular": REG.act,
        "trivial": trivial.act,
        "trivial_compatibility": Action.trivial(G, X).axioms[0],
        "diagonal": (SX @ SY).act,
    }


def proofs() -> dict[str, Proof]:
    """The shipped proofs about this construction (``markovcat.theorems``), unchecked."""
    from markovcat import theorems as proofs

    return {
        "act_cancel": proofs.act_cancel(SX),
        "act_cancel_inverse": proofs.act_cancel_inverse(SX),
    }
