"""SymDiff's gamma (Zhang et al. 2025): ``R = R0 . f(R0^T . z, eta)``, ``R0 ~ Haar(O(3))``.

This is the recursive gamma with ``G = O(3)`` acting on positions ``Z``; the
denoiser is ``sym_gamma(eps_theta)``, i.e. ``R . eps_theta(R^T . z)``.  The order
matters: ``f(R0^T z, eta) . R0`` (``R0`` on the right) is not ``sym`` of anything and
is not equivariant; it is drawn here as ``wrong_order`` for contrast.
"""

from __future__ import annotations

from typing import Any

from markovcat.equation import Equation
from markovcat.groups import Action, Group
from markovcat.gspace import GSpace
from markovcat.program import program
from markovcat.symmetrisation import haar_gamma, recursive_gamma, sym, with_noise
from markovcat.syntax import Box, Diagram, Ty

O3 = Group("O3")
Z, N = Ty("Z"), Ty("N")
rot = Action("rot", O3, Z)
SZ = GSpace(Z, rot, linear=True)
eta = Box("eta", Ty(), N)
f_theta = Box("f_theta", Z @ N, O3.ty, deterministic=True)
eps_theta = Box("eps_theta", Z, Z, deterministic=True)
gamma = recursive_gamma(with_noise(f_theta, eta), haar_gamma(SZ))


def wrong_order() -> Diagram:
    """``R = f(R0^T z, eta) . R0``: R0 multiplied on the wrong side."""

    def gamma_wrong(z: Any) -> Any:
        r0 = Box("lambda_O3", Ty(), O3.ty)()
        return O3.mul(f_theta(rot.act(O3.inv(r0), z), eta()), r0)

    return program(Z, O3.ty)(gamma_wrong)


def figures() -> dict[str, Diagram | Equation]:
    return {
        "gamma": gamma.diagram,
        "denoiser": sym(eps_theta, gamma, SZ).diagram,
        "wrong_order": wrong_order(),
    }
