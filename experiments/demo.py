"""``markovcat demo``: build the seed's diagrams, check them, draw them, compile and run sym."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import markovcat as mc

Out = Callable[[str], object]


def core(out_dir: Path, out: Out = print) -> None:
    """The core language: the seed's sampling program, decided equality, figures."""
    X, Y, G = mc.Ty("X"), mc.Ty("Y"), mc.Ty("G")
    gamma, k = mc.Box("gamma", X, G), mc.Box("k", X, Y)
    inv = mc.Box("inv", G, G, deterministic=True)
    act_x = mc.Box("act_X", G @ X, X, deterministic=True)
    act_y = mc.Box("act_Y", G @ Y, Y, deterministic=True)

    @mc.program(X, Y)
    def sym_k(x):  # type: ignore[no-untyped-def]
        g = gamma(x)  # G ~ gamma(x)
        y = k(act_x(inv(g), x))  # Y ~ k(G^-1 . x)
        return act_y(g, y)  # return G . Y

    combinators = (
        mc.Copy(X)
        >> (gamma @ mc.Id(X))
        >> (mc.Copy(G) @ mc.Id(X))
        >> (mc.Id(G) @ ((inv @ mc.Id(X)) >> act_x >> k))
        >> act_y
    )
    out("== The free Markov category ==")
    out(f"sym_k : {sym_k.dom} -> {sym_k.cod}, {len(sym_k)} boxes, written as the seed's sampling program")
    out(f"  program form == combinator form: {mc.equal(sym_k, combinators)}")
    markov = mc.Equation(sym_k >> mc.Discard(Y), mc.Discard(X), name="I is terminal")
    out(f"  {markov.name}: sym_k >> del == del: {markov.check()}")
    twice = mc.Equation(k >> mc.Copy(Y), mc.Copy(X) >> (k @ k), name="copying a stochastic box")
    out(f"  {twice.name}: k >> copy == copy >> (k @ k): {twice.check()}")
    out(f"    why not: {mc.explain(twice.lhs, twice.rhs)}")
    written = []
    for suffix in (".svg", ".png"):
        sym_k.draw(out_dir / f"sym_program{suffix}", title="G ~ gamma(x); Y ~ k(G^-1 . x); return G . Y")
        twice.draw(out_dir / f"copy_stochastic{suffix}", title="not a law: copying a stochastic box")
        written += [f"sym_program{suffix}", f"copy_stochastic{suffix}"]
    out(f"  figures: {', '.join(str(out_dir / w) for w in written)}")


def run(out_dir: str | Path = "markovcat-demo", out: Out = print, train_seconds: float = 60) -> int:
    """Run every section of the demo; figures go to ``out_dir``; ``train_seconds=0`` skips training."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    core(out_dir, out)
    out("")
    out("== sym in C^G, from the adjunction, with checked proofs ==")
    from markovcat.diagrams.demo import demo as cg_demo

    cg_demo(out_dir, out)
    out("")
    out("== Compiled to PyTorch and checked for equivariance ==")
    from markovcat.experiments.torch_demo import demo as backend_demo

    backend_demo(out=out)
    out("")
    if train_seconds > 0:
        out("== Training: covariance estimation, an MLP and its stochastic symmetrisation ==")
        from markovcat.experiments.train_demo import demo as train_demo

        train_demo(out=out, seconds=train_seconds)
        out("")
    out(f"demo finished in {time.perf_counter() - start:.1f} s; figures in {out_dir}/")
    return 0
