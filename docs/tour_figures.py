"""Regenerate the pictures embedded in the README's tour: ``python docs/tour_figures.py``."""

from pathlib import Path

import markovcat as mc

HERE = Path(__file__).parent

X, Y, G = mc.Ty("X"), mc.Ty("Y"), mc.Ty("G")
gamma, k = mc.Box("gamma", X, G), mc.Box("k", X, Y)
f = mc.Box("f", X, Y, deterministic=True)
inv = mc.Box("inv", G, G, deterministic=True)
act_x = mc.Box("act_X", G @ X, X, deterministic=True)
act_y = mc.Box("act_Y", G @ Y, Y, deterministic=True)


@mc.program(X, Y)
def sym_k(x):  # type: ignore[no-untyped-def]
    g = gamma(x)
    y = k(act_x(inv(g), x))
    return act_y(g, y)


if __name__ == "__main__":
    sym_k.draw(HERE / "tour_sym.svg")
    mc.Equation(f >> mc.Copy(Y), mc.Copy(X) >> (f @ f), name="a function commutes with copy").draw(
        HERE / "tour_law.svg"
    )
    mc.Equation(k >> mc.Copy(Y), mc.Copy(X) >> (k @ k), name="not a law: a kernel does not").draw(
        HERE / "tour_not_a_law.svg"
    )
