"""``markovcat demo``: build the symmetrisation diagrams, check them, draw them, compile sym, run it and train it.

One package: :func:`run` (this module) runs the core part here, the ``C^G`` part from
:mod:`markovcat.diagrams.demo`, the backend part from :mod:`~markovcat.experiments.demo.backend`
(compile, run, check) and the training part from :mod:`~markovcat.experiments.demo.training`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import markovcat as mc

Out = Callable[[str], object]

#: Adam steps per model in the demo's training section (about 10 s of CPU for both models, on one thread).
STEPS = 1000


def core(out_dir: Path, out: Out = print) -> None:
    """The core language: the symmetrisation as a sampling program, decided equality, figures."""
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
    out("== 1. Diagrams in the free Markov category: decided equality ==")
    out(f"sym_k : {sym_k.dom} -> {sym_k.cod}, {len(sym_k)} boxes, written as a sampling program "
        "(G ~ gamma(x); Y ~ k(G^-1 . x); return G . Y).")
    out("Each line below is an equation and mc.equal's verdict (True = equal in every Markov category):")
    out(f"  the program equals the same diagram built from >>, @, Copy and Id: {mc.equal(sym_k, combinators)}")
    markov = mc.Equation(sym_k >> mc.Discard(Y), mc.Discard(X), name="I is terminal")
    out(f"  sym_k >> discard == discard (a Markov law: discarding a sample forgets its box): {markov.check()}")
    twice = mc.Equation(k >> mc.Copy(Y), mc.Copy(X) >> (k @ k), name="copying a stochastic box")
    out(f"  k >> copy == copy >> (k @ k) for a stochastic k: {twice.check()}, as expected "
        "(drawing twice is not drawing once and copying);")
    out(f"    mc.explain says: {mc.explain(twice.lhs, twice.rhs)}")
    written = []
    for suffix in (".svg", ".png"):
        sym_k.draw(out_dir / f"sym_program{suffix}", title="G ~ gamma(x); Y ~ k(G^-1 . x); return G . Y")
        twice.draw(out_dir / f"copy_stochastic{suffix}", title="not a law: copying a stochastic box")
        written += [f"sym_program{suffix}", f"copy_stochastic{suffix}"]
    out(f"  drew {', '.join(str(out_dir / w) for w in written)}")


def run(out_dir: str | Path = "markovcat-demo", out: Out = print, train_steps: int | None = None,
        progress: bool = True) -> int:
    """Run every section of the demo; figures go to ``out_dir``.

    ``train_steps`` is the number of Adam steps per model in the training section
    (default :data:`STEPS`); ``0`` skips training.
    Everything printed but the final timing line is the same on every run.
    """
    steps = STEPS if train_steps is None else train_steps
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"train_steps must be a non-negative integer (0 skips training), got {train_steps!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    core(out_dir, out)
    out("")
    out("== 2. sym in C^G (the category of G-spaces), built from the adjunction, with checked proofs ==")
    from markovcat.diagrams.demo import demo as cg_demo

    cg_demo(out_dir, out)
    out("")
    out("== 3. Compiled to PyTorch, run, and checked for equivariance ==")
    from markovcat.experiments.demo.backend import demo as backend_demo

    backend_demo(out=out)
    out("")
    if steps > 0:
        out("== 4. Training: covariance estimation, an MLP against its stochastic symmetrisation ==")
        from markovcat.experiments.demo.training import demo as train_demo

        train_demo(out=out, steps=steps, progress=progress)
        out("")
    else:
        out("(training skipped: --train-steps 0)")
    out(f"demo finished in {time.perf_counter() - start:.1f} s; figures in {out_dir}/")
    return 0
