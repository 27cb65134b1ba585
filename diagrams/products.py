"""Direct and semidirect products, built from their factors' boxes.

``E(d) = T(d) x| O(d)``: ``(t, R)(t', R') = (t + R t', R R')``.  A semidirect product
with the trivial twist is the direct product, a Markov-law identity (the copy of
``R`` goes unused).  The ``E(d)`` gamma: ``gamma(x) = (mean(x), R)`` with
``R ~ gamma_O(x - mean(x))``.
"""

from __future__ import annotations

from typing import Any

from markovcat.equation import Equation
from markovcat.groups import Action, Group, direct_product, semidirect_product
from markovcat.program import program
from markovcat.syntax import Box, Diagram, Ty

T, O = Group("T"), Group("O")  # noqa: E741
rot_T = Action("rot_T", O, T.ty)
E = semidirect_product(T, O, rot_T, name="E")
TxO = direct_product(T, O)
X = Ty("X")
translate = Action("trans_X", T, X)
rotate = Action("rot_X", O, X)
mean = Box("mean", X, T.ty, deterministic=True)
gamma_O = Box("gamma_O", X, O.ty)


def gamma_E() -> Diagram:
    """``x |-> (mean(x), R)``, ``R ~ gamma_O(x - mean(x))``."""

    def body(x: Any) -> Any:
        t = mean(x)
        return t, gamma_O(translate.act(T.inv(t), x))

    body.__name__ = "gamma_E"
    return program(X, E.ty)(body)


def figures() -> dict[str, Diagram | Equation]:
    trivial = semidirect_product(T, O, Action.trivial(O, T.ty))
    return {
        "direct_mul": TxO.mul,
        "semidirect_mul": E.mul,
        "semidirect_inv": E.inv,
        "trivial_twist": Equation(trivial.mul, TxO.mul, name="trivial twist = direct product"),
        "gamma_E": gamma_E(),
    }
