"""The group library: every group's and action's axioms in float64, Haar laws, exact inverses, homomorphisms."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from markovcat.backends import torch as mct
from markovcat.groups import Action, Group, Homomorphism, direct_product, semidirect_product
from markovcat.syntax import Ty

TOLERANCE = 1e-12  # max relative error of every axiom, float64


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def interpret(group: mct.TorchGroup, actions: list[mct.TorchAction]) -> tuple[Group, mct.Interpretation]:
    G = Group(group.name)
    pairs = [(Action(f"act{i}", G, Ty(f"{group.name}_X{i}")), a) for i, a in enumerate(actions)]
    return G, group.interpretation(G, *pairs)


O3, SO3 = mct.Orthogonal(3), mct.Orthogonal(3, special=True)
GL3, T3, E3, SE3 = mct.GeneralLinear(3), mct.Translation(3), mct.Euclidean(3), mct.Euclidean(3, special=True)
O3xO2 = mct.Product(mct.Orthogonal(3), mct.Orthogonal(2))
S5, P5 = mct.Symmetric(5), mct.PermutationMatrices(5)

CASES: list[tuple[mct.TorchGroup, Callable[[], list[mct.TorchAction]]]] = [
    (O3, lambda: [O3.points(5), O3.vectors(), O3.left(4), O3.conjugation(), O3.trivial(mct.Spec((4,))),
                  mct.diagonal(O3.points(2), O3.vectors())]),
    (SO3, lambda: [SO3.points(4), SO3.conjugation()]),
    (GL3, lambda: [GL3.left(4), GL3.points(5), GL3.conjugation(), mct.vectors(GL3)]),
    (T3, lambda: [T3.points(4), T3.vectors()]),
    (E3, lambda: [E3.points(6)]),
    (SE3, lambda: [SE3.points(6)]),
    (O3xO2, lambda: [O3xO2.two_sided(), O3xO2.two_sided(swap=True),
                     O3xO2.factor_action(1, mct.Orthogonal(2).vectors())]),
    (mct.Product(mct.Cyclic(4), mct.Symmetric(3)), lambda: []),
    (mct.Cyclic(4), lambda: [mct.Cyclic(4).images(2, 5)]),
    (mct.Dihedral(4), lambda: [mct.Dihedral(4).images(2, 5), mct.Dihedral(4).plane()]),
    (mct.Dihedral(2), lambda: [mct.Dihedral(2).images(1, 4)]),
    (mct.Dihedral(7), lambda: [mct.Dihedral(7).plane()]),
    (S5, lambda: [S5.sets(2), mct.sequences(S5), mct.graphs(S5)]),
    (P5, lambda: [P5.sets(2), mct.sequences(P5), mct.graphs(P5)]),
]


@pytest.mark.parametrize(("group", "actions"), CASES, ids=[g.name for g, _ in CASES])
def test_group_and_action_axioms(group: mct.TorchGroup, actions: Callable[[], list[mct.TorchAction]]) -> None:
    """Associativity, units, inverses, compatibility and unit of each action: on 16 random elements, not a proof."""
    _, interpretation = interpret(group, actions())
    mct.check_laws(None, interpretation, tolerance=TOLERANCE)


def test_diagram_level_diagonal_action_is_interpreted_by_its_factors() -> None:
    G, X, Y = Group("O3"), Ty("P"), Ty("V")
    on_points, on_vectors = Action("pts", G, X), Action("vec", G, Y)
    interpretation = O3.interpretation(G, (on_points, O3.points(4)), (on_vectors, O3.vectors()))
    both = on_points.tensor(on_vectors)  # copy g, act on each factor
    mct.check_laws(None, mct.Interpretation(interpretation.boxes, interpretation.types, [both]), tolerance=TOLERANCE)


@pytest.mark.parametrize(
    "phi",
    [E3.rotation_part(), E3.embed_rotation(), E3.embed_translation(), O3xO2.projection(0), GL3.orthogonal(),
     mct.Dihedral(4).rotations()],
    ids=lambda p: p.name,
)
def test_homomorphisms_and_restrictions(phi: mct.TorchHomomorphism) -> None:
    """Each homomorphism preserves mul and unit, and restricting an action along it gives an action."""
    H, G = Group(f"H_{phi.source.name}"), Group(f"G_{phi.target.name}")
    diagram_phi = Homomorphism(phi.name, H, G)
    actions = {"E(3)": E3.points(3), "O(3) x O(2)": O3xO2.two_sided(), "GL(3)": GL3.left(2),
               "D4": mct.Dihedral(4).images(1, 3), "O(3)": O3.points(3)}
    target_action = actions[phi.target.name]
    act = Action("act", G, Ty("X"))
    interpretation = (phi.source.interpretation(H) | phi.target.interpretation(G, (act, target_action))
                      | phi.interpretation(diagram_phi))
    mct.check_laws(None, interpretation, tolerance=TOLERANCE)
    restricted = target_action.restrict(phi)
    _, direct = interpret(phi.source, [restricted])
    mct.check_laws(None, direct, tolerance=TOLERANCE)
    mct.check_laws(None, mct.Interpretation(interpretation.boxes, interpretation.types, [act.restrict(diagram_phi)]),
                   tolerance=TOLERANCE)


@pytest.mark.parametrize("group", [O3, SO3, GL3, T3, E3, SE3, O3xO2, mct.Dihedral(5), S5, P5], ids=lambda g: g.name)
def test_inverses_are_exact(group: mct.TorchGroup) -> None:
    g = group.sample(64, seeded(), torch.float64)
    product = group.mul(g, group.inv(g))
    unit = group.unit(like=torch.zeros(64, dtype=torch.float64))
    if product.is_floating_point():
        assert float(mct.relative_error(product, unit).max()) < 1e-12
    else:
        assert torch.equal(product, unit)


def test_haar_samplers_land_in_the_group_and_are_uniform() -> None:
    so = SO3.haar_sampler()(like=torch.zeros(500, dtype=torch.float64), generator=seeded())
    assert torch.allclose(torch.linalg.det(so), torch.ones(500, dtype=torch.float64), atol=1e-12)
    dihedral = mct.Dihedral(4).sample(8000, seeded(1))
    counts = torch.bincount(dihedral, minlength=8).double() / 8000
    assert counts.sub(1 / 8).abs().max() < 0.02
    m = P5.sample(100, seeded(2), torch.float64)
    assert torch.equal(m.sum(-1), torch.ones(100, 5, dtype=torch.float64))
    assert torch.equal(m @ m.transpose(-1, -2), torch.eye(5, dtype=torch.float64).expand(100, 5, 5))
    pair = O3xO2.haar_sampler()(like=torch.zeros(10, dtype=torch.float64), generator=seeded(3))
    a, b = O3xO2.split(pair)
    assert torch.allclose(b @ b.transpose(-1, -2), torch.eye(2, dtype=torch.float64).expand(10, 2, 2), atol=1e-12)
    for group in (GL3, T3, E3):
        with pytest.raises(mct.InterpretationError, match="not compact"):
            group.haar_sampler()


def test_grid_actions_are_exact_and_dihedral_relations_hold() -> None:
    d4 = mct.Dihedral(4)
    act = d4.images(1, 3).act
    image = torch.arange(9.0).view(1, 1, 3, 3)
    r, f = torch.tensor([1]), torch.tensor([4])
    assert torch.equal(act(r, image), torch.rot90(image, 1, dims=(-2, -1)))
    assert torch.equal(act(f, image), torch.flip(image, dims=(-1,)))
    assert torch.equal(d4.mul(d4.mul(f, r), f), d4.inv(r))  # f r f = r^-1
    with pytest.raises(mct.InterpretationError, match="no exact action"):
        mct.Dihedral(3).images(1, 4)


def test_two_representations_of_s_n_agree() -> None:
    p = S5.sample(20, seeded())
    m = P5.from_indices(p, torch.float64)
    x = torch.randn(20, 5, 2, generator=seeded(1), dtype=torch.float64)
    adjacency = torch.randn(20, 5, 5, generator=seeded(2), dtype=torch.float64)
    assert torch.equal(S5.sets(2).act(p, x), P5.sets(2).act(m, x))
    assert torch.equal(mct.graphs(S5).act(p, adjacency), mct.graphs(P5).act(m, adjacency))
    assert torch.equal(P5.to_indices(m), p)
    assert mct.elements(P5).shape == (120, 5, 5) and mct.elements(mct.Dihedral(3)).tolist() == list(range(6))


def test_a_broken_group_fails_its_axioms() -> None:
    """The checker catches a wrong multiplication (D4 multiplied as if it were C8)."""
    class NotDihedral(mct.Dihedral):
        def mul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.remainder(a + b, 2 * self.n)

    _, interpretation = interpret(NotDihedral(4), [NotDihedral(4).images(1, 4)])
    with pytest.raises(mct.InterpretationError, match="fails its axiom"):
        mct.check_laws(None, interpretation)


def test_diagram_level_products_are_interpreted_factor_by_factor() -> None:
    """``direct_product`` and ``T(3) x| O(3)`` as two wires: premises checked, and they agree with the packed groups."""
    mct.check_laws(None, O3xO2.factor_interpretation(direct_product(Group("A"), Group("B"))), tolerance=TOLERANCE)
    T, R = Group("T3"), Group("O3")
    product = semidirect_product(T, R, Action("theta", R, T.ty))
    interpretation = E3.semidirect_interpretation(product)
    mct.check_laws(None, interpretation, tolerance=TOLERANCE)  # both groups, theta's action and automorphism axioms
    t1, t2 = T3.sample(16, seeded(), torch.float64), T3.sample(16, seeded(1), torch.float64)
    r1, r2 = O3.sample(16, seeded(2), torch.float64), O3.sample(16, seeded(3), torch.float64)
    for equation in product.axioms:  # absolute error: the translation part of g g^-1 is an exact zero
        inputs = [(T3 if atom == T.ty.atoms[0] else O3).sample(16, seeded(i), torch.float64)
                  for i, atom in enumerate(equation.dom.atoms)]
        left, right = (mct.compile(side, interpretation, check=False)(*inputs) for side in equation.sides)
        for a, b in zip(left if isinstance(left, tuple) else (left,), right if isinstance(right, tuple) else (right,)):
            assert float((a - b).abs().max()) < 1e-12, equation.name
    t, r = mct.compile(product.mul, interpretation, check=False)(t1, r1, t2, r2)
    assert torch.allclose(E3.element(t, r), E3.mul(E3.element(t1, r1), E3.element(t2, r2)), atol=1e-12)
    t, r = mct.compile(product.inv, interpretation, check=False)(t1, r1)
    assert torch.allclose(E3.element(t, r), E3.inv(E3.element(t1, r1)), atol=1e-12)
