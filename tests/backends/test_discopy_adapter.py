"""The DisCoPy adapter: conversions, and DisCoPy's hypergraph equality as a sound cross-check.

DisCoPy decides equality in the free gs-monoidal (copy-discard) category; markovcat
decides the free Markov category, a quotient of it.  So DisCoPy saying "equal" must
imply markovcat saying "equal", and the converse fails exactly on the Markov laws:
discarded boxes (``k >> del == del``) and copied deterministic boxes.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import markovcat as mc
from markovcat.backends import discopy as dc
from markovcat.backends.discopy import discopy_markov as markov
from markovcat.syntax import Diagram, Generator, Node

X, Y = mc.Ty("X"), mc.Ty("Y")
f = mc.Box("f", X, Y, deterministic=True)
k = mc.Box("k", X, Y)
m = mc.Box("m", X @ Y, X)

SIGNATURE = [
    Generator("f", X, Y, True),
    Generator("g", X @ Y, X, True),
    Generator("c", mc.Ty(), Y, True),
    Generator("n", Y, X @ Y, True),
    Generator("k", X, Y),
    Generator("m", Y, X @ Y),
    Generator("u", mc.Ty(), X),
    Generator("p", X @ X, Y),
    Generator("h", Y, mc.Ty()),
]


def random_diagram(rng: random.Random, n: int, width: int = 3) -> Diagram:
    """A random well-typed term graph: ``n`` boxes, reads with copies, some discards."""
    dom = mc.Ty(*rng.choices("XY", k=rng.randint(0, 2)))
    types = list(dom.atoms)
    pool = list(range(len(types)))
    nodes = []
    for _ in range(n):
        gen = rng.choice([g for g in SIGNATURE if all(any(types[w] == a for w in pool) for a in g.dom.atoms)])
        ins = tuple(rng.choice([w for w in pool if types[w] == a]) for a in gen.dom.atoms)
        for w in set(ins):
            if rng.random() < 0.6:
                pool.remove(w)
        outs = tuple(range(len(types), len(types) + len(gen.cod)))
        types.extend(gen.cod.atoms)
        pool.extend(outs)
        while len(pool) > width:
            pool.pop(rng.randrange(len(pool)))
        nodes.append(Node(gen, ins, outs))
    outputs = rng.sample(pool, k=rng.randint(0, len(pool))) + rng.choices(pool, k=rng.randint(0, 1) if pool else 0)
    cod = mc.Ty(*(types[w] for w in outputs))
    return Diagram(dom, cod, range(len(dom)), nodes, outputs, len(types))


def reorder(d: Diagram, rng: random.Random) -> Diagram:
    """The same term graph up to isomorphism: another topological order, renumbered wires."""
    remaining = list(d.nodes)
    written = set(d.inputs)
    order = []
    while remaining:
        ready = [node for node in remaining if all(w in written for w in node.ins)]
        node = rng.choice(ready)
        remaining.remove(node)
        written.update(node.outs)
        order.append(node)
    perm = list(range(d.n_wires))
    rng.shuffle(perm)
    nodes = [Node(n.gen, tuple(perm[w] for w in n.ins), tuple(perm[w] for w in n.outs)) for n in order]
    return Diagram(d.dom, d.cod, [perm[w] for w in d.inputs], nodes, [perm[w] for w in d.outputs], d.n_wires)


def markov_variant(d: Diagram, rng: random.Random) -> Diagram:
    """``d`` with an extra discarded box and a repeated deterministic box: Markov-equal to ``d``."""
    types = d.wire_types()
    fresh = d.n_wires
    nodes = list(d.nodes)
    gen = rng.choice([g for g in SIGNATURE if all(a in types.values() for a in g.dom.atoms)])
    ins = tuple(rng.choice([w for w, t in types.items() if t == a]) for a in gen.dom.atoms)
    nodes.append(Node(gen, ins, tuple(range(fresh, fresh + len(gen.cod)))))
    fresh += len(gen.cod)
    outputs = list(d.outputs)
    det = [i for i, node in enumerate(d.nodes) if node.gen.deterministic]
    if det:
        node = d.nodes[rng.choice(det)]
        outs = tuple(range(fresh, fresh + len(node.outs)))
        nodes.append(Node(node.gen, node.ins, outs))
        fresh += len(outs)
        alias = dict(zip(node.outs, outs))
        outputs = [alias.get(w, w) for w in outputs]
    return Diagram(d.dom, d.cod, d.inputs, nodes, outputs, fresh)


def pair(seed: int) -> tuple[Diagram, Diagram, str]:
    """A random pair and how the second was made from the first."""
    rng = random.Random(seed)
    a = random_diagram(rng, rng.randint(0, 5))
    how = rng.choice(["gs", "gs-layers", "markov", "other"])
    if how == "gs":
        b = reorder(a, rng)
    elif how == "gs-layers":
        b = dc.from_discopy(dc.to_discopy(reorder(a, rng)))
    elif how == "markov":
        b = reorder(markov_variant(a, rng), rng)
    else:
        b = random_diagram(rng, len(a.nodes))
        while b.dom != a.dom or b.cod != a.cod:
            b = random_diagram(rng, len(a.nodes))
    return a, b, how


def structural_counts(d: markov.Diagram) -> tuple[int, int, int]:
    boxes = [box for layer in d.inside for box in layer.boxes]
    copies = sum(isinstance(b, markov.Copy) and len(b.cod) > 0 for b in boxes)
    discards = sum(isinstance(b, markov.Discard) for b in boxes)
    plain = sum(type(b) is markov.Box for b in boxes)
    return plain, copies, discards


# -- conversion ---------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1))
def test_conversion_preserves_types_boxes_and_the_term_graph(seed: int) -> None:
    rng = random.Random(seed)
    d = random_diagram(rng, rng.randint(0, 6))
    dd = dc.to_discopy(d)
    assert isinstance(dd, markov.Diagram)
    assert [ob.name for ob in dd.dom.inside] == list(d.dom.atoms)
    assert [ob.name for ob in dd.cod.inside] == list(d.cod.atoms)
    plain, copies, discards = structural_counts(dd)
    assert plain == len(d.nodes)
    uses = d.uses()
    assert copies == sum(max(len(u) - 1, 0) for u in uses.values())
    assert discards == sum(len(u) == 0 for u in uses.values())
    back = dc.from_discopy(dd)
    assert (back.dom, back.cod, sorted(back.boxes, key=str)) == (d.dom, d.cod, sorted(d.boxes, key=str))
    assert mc.NormalForm.of(back) == mc.NormalForm.of(d)
    assert dc.to_hypergraph(d) == dd.to_hypergraph()


def test_conversion_examples() -> None:
    d = mc.Copy(X) >> (f @ mc.Id(X)) >> mc.Swap(Y, X) >> (mc.Id(X) @ mc.Copy(Y)) >> (m @ mc.Discard(Y))
    dd = dc.to_discopy(d)
    assert (dd.dom, dd.cod) == (markov.Ty("X"), markov.Ty("X"))
    assert structural_counts(dd) == (2, 1, 0)  # the term graph has no copy-then-discard of Y
    fd = [b for layer in dd.inside for b in layer.boxes if type(b) is markov.Box][0]
    assert (fd.name, fd.data) == ("f", {"deterministic": True})
    assert dc.from_discopy(dd).boxes == (f.generator, m.generator)
    assert dc.to_discopy(mc.Id(mc.Ty())) == markov.Diagram.id(markov.Ty())
    with pytest.raises(ValueError, match="Merge"):
        dc.from_discopy(markov.Merge(markov.Ty("X")))
    with pytest.raises(TypeError):
        dc.to_discopy(X)  # type: ignore[arg-type]


# -- soundness of the cross-check ---------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1))
def test_discopy_equal_implies_markovcat_equal(seed: int) -> None:
    check_implication(seed)


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1))
def test_discopy_equal_implies_markovcat_equal_many_examples(seed: int) -> None:
    check_implication(seed)


def check_implication(seed: int) -> None:
    """DisCoPy equal implies markovcat equal; isomorphic and Markov-law variants are equal where expected."""
    a, b, how = pair(seed)
    by_discopy = dc.discopy_hypergraph_equal(a, b)
    by_markovcat = mc.equal(a, b)
    if by_discopy:
        assert by_markovcat, (a, b)
    if how.startswith("gs"):  # isomorphic term graphs: both theories identify them
        assert by_discopy and by_markovcat
    if how == "markov":
        assert by_markovcat


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1))
def test_diagram_level_hypergraph_equality_agrees(seed: int) -> None:
    """``discopy_equal`` (DisCoPy diagrams under ``hypergraph_equality``) gives the same answers."""
    a, b, _ = pair(seed)
    assert dc.discopy_equal(a, b) == dc.discopy_hypergraph_equal(a, b)


# -- the theory gap, on known examples ------------------------------------------------


@pytest.mark.parametrize(
    "left, right",
    [
        (k >> mc.Discard(Y), mc.Discard(X)),  # Markov law: I is terminal
        (mc.Copy(X) >> (mc.Id(X) @ k) >> (mc.Id(X) @ mc.Discard(Y)), mc.Id(X)),
        (f >> mc.Copy(Y), mc.Copy(X) >> (f @ f)),  # copy naturality of a deterministic box
        (mc.Copy(X) >> (f @ f) >> mc.Box("q", Y @ Y, Y), f >> mc.Copy(Y) >> mc.Box("q", Y @ Y, Y)),
    ],
    ids=["discard-after-box", "discarded-branch", "deterministic-copy", "deterministic-copy-in-context"],
)
def test_equal_in_markov_but_not_in_gs_monoidal(left: Diagram, right: Diagram) -> None:
    assert mc.equal(left, right)
    assert not dc.discopy_equal(left, right)
    assert not dc.discopy_hypergraph_equal(left, right)


@pytest.mark.parametrize(
    "left, right, expected",
    [
        (mc.Swap(X, Y) >> mc.Swap(Y, X), mc.Id(X @ Y), True),
        (mc.Copy(X) >> (mc.Copy(X) @ mc.Id(X)), mc.Copy(X) >> (mc.Id(X) @ mc.Copy(X)), True),
        (mc.Copy(X) >> mc.Swap(X, X), mc.Copy(X), True),
        (mc.Copy(X) >> (mc.Id(X) @ mc.Discard(X)), mc.Id(X), True),
        (mc.Copy(X @ Y), (mc.Copy(X) @ mc.Copy(Y)) >> (mc.Id(X) @ mc.Swap(X, Y) @ mc.Id(Y)), True),
        (k >> mc.Copy(Y), mc.Copy(X) >> (k @ k), False),  # stochastic: both theories keep them apart
        (mc.Copy(X) >> (mc.Id(X) @ k) >> m, mc.Copy(X) >> (mc.Id(X) @ f) >> m, False),
    ],
)
def test_agreement_on_gs_monoidal_laws(left: Diagram, right: Diagram, expected: bool) -> None:
    assert mc.equal(left, right) is expected
    assert dc.discopy_equal(left, right) is expected


def test_determinism_is_part_of_a_discopy_box() -> None:
    stochastic_f = mc.Box("f", X, Y)
    assert not mc.equal(f, stochastic_f)
    assert not dc.discopy_equal(f, stochastic_f)
    assert dc.discopy_equal(f, f)


# -- importing diagrams written with DisCoPy -------------------------------------------


def test_from_discopy_declares_deterministic_boxes_by_name() -> None:
    X_, G_ = markov.Ty("X"), markov.Ty("G")
    gamma, act = markov.Box("gamma", X_, G_), markov.Box("act", G_ @ X_, X_)
    written = markov.Copy(X_) >> gamma @ X_ >> act
    plain = dc.from_discopy(written)
    assert not any(box.deterministic for box in plain.boxes)  # DisCoPy boxes say nothing: stochastic, sound
    declared = dc.from_discopy(written, deterministic={"act"})
    assert {box.name: box.deterministic for box in declared.boxes} == {"gamma": False, "act": True}
    assert not mc.equal(plain, declared)
    with pytest.raises(ValueError, match=r"\['akt'\] are not names of boxes of this diagram.*'act', 'gamma'"):
        dc.from_discopy(written, deterministic={"akt"})
    with pytest.raises(TypeError, match="collection of box names"):
        dc.from_discopy(written, deterministic="act")


def test_from_discopy_replaces_boxes_by_markovcat_diagrams() -> None:
    X_, G_ = markov.Ty("X"), markov.Ty("G")
    gamma, act = markov.Box("gamma", X_, G_), markov.Box("act", G_ @ X_, X_)
    written = markov.Copy(X_) >> gamma @ X_ >> act
    G = mc.Ty("G")
    noise, act_mc = mc.Box("noise", mc.Ty(), G), mc.Box("act", G @ X, X, deterministic=True)
    imported = dc.from_discopy(written, boxes={"gamma": mc.Discard(X) >> noise, "act": act_mc})

    @mc.program(X, X)
    def expected(x):  # type: ignore[no-untyped-def]
        return act_mc(noise(), x)

    assert mc.equal(imported, expected)
    with pytest.raises(ValueError, match="'gamma' : X -> G of the DisCoPy diagram is replaced by a diagram X -> X"):
        dc.from_discopy(written, boxes={"gamma": mc.Box("gamma", X, X)})
    with pytest.raises(ValueError, match="both declared deterministic and replaced"):
        dc.from_discopy(written, deterministic={"act"}, boxes={"act": act_mc})
    with pytest.raises(ValueError, match="not names of boxes"):
        dc.from_discopy(written, boxes={"gama": noise})


def test_a_stoch_sym_style_discopy_diagram_is_markovcats_sym_and_compiles() -> None:
    """The worked path: DisCoPy diagram -> from_discopy -> mc.equal against sym -> torch -> equivariance check."""
    import torch

    from markovcat.backends.torch.equivariance import check_equivariance
    from markovcat.experiments import covariance as cov
    from markovcat.experiments import discopy_interop as interop

    built = interop.markovcat_sym()
    imported = interop.import_sym()
    assert mc.equal(imported, built.diagram)
    broken = interop.import_sym(broken="inverse output")
    assert not mc.equal(broken, built.diagram)
    assert "act_Y" in mc.explain(broken, built.diagram)
    # the same diagram written with plain names and declared deterministic boxes is the same program
    by_name = dc.from_discopy(interop.discopy_sym(), deterministic={"f", "inv", "act_X", "act_Y"})
    assert {box.name for box in by_name.boxes} == {"gamma_0", "inv", "act_X", "f", "act_Y"}
    assert dc.to_discopy(by_name).dom == interop.discopy_sym().dom

    torch.manual_seed(0)
    model, group, x_action, y_action = interop.compile_sym(imported, cov.CovarianceMLP(width=16))
    assert check_equivariance(model, group, x_action, y_action).passed
    bad, group, x_action, y_action = interop.compile_sym(broken, cov.CovarianceMLP(width=16))
    assert not check_equivariance(bad, group, x_action, y_action, method="pathwise").passed  # caught
    data = cov.make_data(200, seed=0)
    loss = cov.train(model, data, 3, progress=False)  # it trains like any module
    assert loss == loss and loss > 0
