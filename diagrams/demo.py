"""A short tour: build ``sym_gamma(k)``, show its type in ``C^G``, what was checked, and draw it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from markovcat import theorems as proofs
from markovcat.markov import equal
from markovcat.symmetrisation import flat, sharp, sym, sym_program

from ._example import SX, SY, gamma, k


def demo(out_dir: str | Path, out: Callable[[str], object] = print) -> None:
    """Build sym for the running example, print its evidence and checks, draw it into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = sym(k, gamma, SY)
    out(f"sym_gamma(k) : {s.dom} -> {s.cod}  in C^{s.group.name}")
    out("  built as copy >> (gamma @ id) >> k#, where k# = shear^-1 >> F(k) >> counit (the adjunction)")
    out("  evidence (each node a morphism of C^G):")
    for line in s.explain().splitlines():
        out("    " + line)
    for a in s.assumptions():
        out(f"  assumed: {a.what}: {a.reason}")
    names = sorted({eq.name or "?" for eq in s.axioms_used()})
    out(f"  rests on the axioms: {', '.join(names)}")
    same = equal(sym_program(k, gamma, SY), s.diagram)
    out(f"  checked (free Markov category): program form == combinator form: {'yes' if same else 'NO'}")
    markov_only = equal(flat(sharp(k, SX, SY)), k)
    out("  flat(sharp(k)) == k " + ("holds by the Markov laws alone" if markov_only else
                                   "is not a Markov law: it holds by the group axioms (the proofs below)"))
    for name in ("flat_sharp", "sharp_flat", "sharp_equivariant", "sym_stable", "sym_equivariant"):
        proof = getattr(proofs, name)()
        proof.check()
        out(f"  proof {proof.name!r}: {len(proof)} steps, checked; assumes {len(proof.assumptions())} equations")
    proof = proofs.sym_equivariant()
    written: list[Path] = []
    for suffix in (".svg", ".png"):
        written += [out_dir / f"sym{suffix}", out_dir / f"sym_equivariant{suffix}"]
        s.diagram.draw(str(written[-2]), title="sym_gamma(k)")
        proof.equation().draw(str(written[-1]), title=proof.name, skip_repeats=True)
    out(f"  drew {', '.join(str(p) for p in written)}")
