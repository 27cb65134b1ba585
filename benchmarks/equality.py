"""Benchmark: markovcat.equal against DisCoPy 1.2.2's hypergraph equality.

Usage::

    python benchmarks/equality.py [--max-size N] [--discopy-timeout 30] [--repeats 7]

For each size (number of boxes) the script builds a random diagram ``a`` and a
differently built diagram ``b`` equal to it, then times, on the same pair:

* ``markovcat.equal(a, b)``;
* DisCoPy's ``==`` on ``to_discopy(a)``, ``to_discopy(b)`` under
  ``markov.Diagram.hypergraph_equality`` (this includes DisCoPy's ``to_hypergraph``);
* DisCoPy's ``Hypergraph.__eq__`` on hypergraphs built directly from the term
  graphs (``to_hypergraph``; the graph isomorphism check alone).

``b`` is ``a`` with its nodes put in another random topological order, its wires
renumbered, and rebuilt as a ``>>``-composite of blocks whose boundaries list the
crossing wires in random order, with some wires duplicated at a boundary (the copies
are either discarded or share the later reads: counit, coassociativity and
cocommutativity).  The pair is equal in the free gs-monoidal category, so both tools
must answer ``True``.  One unequal pair per size (``b`` with the inputs of one live
box exchanged) must give ``False`` for both.  A third pair, equal only in the free
Markov category (``b`` plus discarded boxes and repeated deterministic boxes), is
timed with markovcat only (DisCoPy's theory answers ``False`` there).

``--gc`` instead times ``markovcat.equal`` alone at 10,000 and 100,000 boxes three ways: as
shipped (the cyclic garbage collector paused during normalisation of large diagrams), with
that pause switched off (``markov.GC_PAUSE_ABOVE`` raised: the collector runs as it likes), and
with the collector off for the whole run; the growth from 10k to 100k is reported beside
each (10x is linear).  The table goes to ``benchmarks/results/equality_gc.md``.

DisCoPy runs in a forked process; a run over the timeout is reported as ``> T s``
and DisCoPy is skipped for larger sizes.  Times are medians of several repeats.
The Markdown table is printed and written to ``benchmarks/results/equality.md``.
"""

from __future__ import annotations

import argparse
import heapq
import multiprocessing
import operator
import platform
import random
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import markovcat as mc
from markovcat.backends import discopy as _discopy
from markovcat.syntax import Diagram, Generator, Node, Ty

SIZES = (10, 30, 100, 300, 1000, 3000, 10000)
ATOMS = ("A", "B", "C")


def signature() -> list[Generator]:
    """Boxes with 0 to 3 inputs and 1 to 3 outputs, deterministic and stochastic."""
    rng = random.Random(12345)
    gens = []
    shapes = [(0, 1), (1, 1), (1, 1), (1, 2), (1, 3), (2, 1), (2, 1), (2, 2), (3, 1), (3, 2)]
    for i, (m, n) in enumerate(shapes * 2):
        dom, cod = Ty(*rng.choices(ATOMS, k=m)), Ty(*rng.choices(ATOMS, k=n))
        det = i < len(shapes)
        gens.append(Generator(f"{'f' if det else 'k'}{i}", dom, cod, deterministic=det))
    return gens


def random_diagram(n: int, rng: random.Random, width: int = 8) -> Diagram:
    """A random term graph with ``n`` boxes and about ``width`` live wires (linear time).

    Most wires are read once, some several times (copies), a few never (discards),
    so nearly all boxes reach the outputs.
    """
    gens = signature()
    shrink = [g for g in gens if len(g.dom) > len(g.cod)]
    grow = [g for g in gens if len(g.dom) < len(g.cod)]
    dom = Ty(*rng.choices(ATOMS, k=3))
    wire_type: list[str] = list(dom.atoms)
    pool: dict[str, list[int]] = {a: [] for a in ATOMS}
    for w, a in enumerate(dom.atoms):
        pool[a].append(w)
    live = len(dom)
    nodes: list[Node] = []
    while len(nodes) < n:
        preferred = shrink if live > width else grow if live < width // 2 else gens
        feasible = [g for g in preferred if all(pool[a] for a in g.dom.atoms)]
        gen = rng.choice(feasible or [g for g in gens if all(pool[a] for a in g.dom.atoms)])
        ins = [rng.choice(pool[a]) for a in gen.dom.atoms]
        for w, a in zip(ins, gen.dom.atoms):
            if w in pool[a] and rng.random() < 0.75 and live > 2:  # last read; otherwise it is copied
                pool[a].remove(w)
                live -= 1
        outs = list(range(len(wire_type), len(wire_type) + len(gen.cod)))
        wire_type.extend(gen.cod.atoms)
        for w, a in zip(outs, gen.cod.atoms):
            pool[a].append(w)
            live += 1
        if rng.random() < 0.03 and live > 2:  # drop a wire: discarded if nothing read it
            a = rng.choice([a for a in ATOMS if pool[a]])
            pool[a].pop(rng.randrange(len(pool[a])))
            live -= 1
        nodes.append(Node(gen, tuple(ins), tuple(outs)))
    outputs = [w for a in ATOMS for w in pool[a]]
    rng.shuffle(outputs)
    outputs += rng.sample(outputs, k=min(2, len(outputs)))  # copied outputs
    cod = Ty(*(wire_type[w] for w in outputs))
    return Diagram(dom, cod, range(len(dom)), nodes, outputs, len(wire_type))


def _random_topological_order(d: Diagram, rng: random.Random) -> list[Node]:
    producer = {w: i for i, node in enumerate(d.nodes) for w in node.outs}
    waiting = [0] * len(d.nodes)
    readers: list[list[int]] = [[] for _ in d.nodes]
    for i, node in enumerate(d.nodes):
        for p in {producer[w] for w in node.ins if w in producer}:
            waiting[i] += 1
            readers[p].append(i)
    heap = [(rng.random(), i) for i, c in enumerate(waiting) if c == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, i = heapq.heappop(heap)
        order.append(d.nodes[i])
        for r in readers[i]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(heap, (rng.random(), r))
    return order


def rebuild(d: Diagram, rng: random.Random, blocks: int = 16) -> Diagram:
    """An equal diagram built differently: reordered, renumbered, composed of blocks with ``>>``."""
    order = _random_topological_order(d, rng)
    perm = list(range(d.n_wires))
    rng.shuffle(perm)
    order = [Node(n.gen, tuple(perm[w] for w in n.ins), tuple(perm[w] for w in n.outs)) for n in order]
    inputs = [perm[w] for w in d.inputs]
    outputs = [perm[w] for w in d.outputs]
    types = {perm[w]: a for w, a in d.wire_types().items()}
    last_read = {w: -1 for w in types}
    for i, node in enumerate(order):
        for w in node.ins:
            last_read[w] = i
    for w in outputs:
        last_read[w] = len(order)
    born = {w: -1 for w in inputs}
    for i, node in enumerate(order):
        for w in node.outs:
            born[w] = i
    k = max(1, min(blocks, len(order) // 4))
    cuts = [round(j * len(order) / k) for j in range(k + 1)]
    fresh = max(types, default=-1) + 1
    result: Diagram | None = None
    dom_wires = list(inputs)
    for j in range(k):
        lo, hi = cuts[j], cuts[j + 1]
        block_nodes = order[lo:hi]
        if j == k - 1:
            cod_wires = list(outputs)
        else:
            cod_wires = [w for w in types if born[w] < hi and last_read[w] >= hi]
            rng.shuffle(cod_wires)
            cod_wires += rng.sample(cod_wires, k=min(2, len(cod_wires)))  # duplicated at the boundary
        diagram = Diagram(
            Ty(*(types[w] for w in dom_wires)),
            Ty(*(types[w] for w in cod_wires)),
            dom_wires,
            block_nodes,
            cod_wires,
            fresh,
        )
        result = diagram if result is None else result >> diagram
        if j < k - 1:
            # the next block reads duplicated wires through fresh names, sharing reads at random
            seen: set[int] = set()
            dom_wires = []
            alias: dict[int, list[int]] = {}
            for w in cod_wires:
                if w in seen:
                    types[fresh] = types[w]
                    born[fresh], last_read[fresh] = hi - 1, -1  # read in the next block only
                    alias.setdefault(w, []).append(fresh)
                    dom_wires.append(fresh)
                    fresh += 1
                else:
                    seen.add(w)
                    dom_wires.append(w)
            if alias:
                hi2 = cuts[j + 2]
                for i in range(hi, hi2):
                    node = order[i]
                    if any(w in alias for w in node.ins):
                        ins = tuple(rng.choice([w, *alias[w]]) if w in alias else w for w in node.ins)
                        order[i] = Node(node.gen, ins, node.outs)
                if j + 1 == k - 1:
                    outputs = [rng.choice([w, *alias[w]]) if w in alias else w for w in outputs]
    assert result is not None
    return result


def markov_variant(d: Diagram, rng: random.Random, rate: float = 0.05) -> Diagram:
    """``d`` plus discarded boxes and repeated deterministic boxes: equal only in the Markov category."""
    gens = [g for g in signature() if len(g.dom) > 0]
    types = d.wire_types()
    fresh = d.n_wires
    nodes: list[Node] = []
    redirect: dict[int, int] = {}
    available: list[int] = list(d.inputs)
    for node in d.nodes:
        ins = tuple(redirect.get(w, w) if rng.random() < 0.5 else w for w in node.ins)
        nodes.append(Node(node.gen, ins, node.outs))
        available.extend(node.outs)
        if rng.random() < rate and node.gen.deterministic:  # the same deterministic box again
            outs = tuple(range(fresh, fresh + len(node.outs)))
            fresh += len(outs)
            nodes.append(Node(node.gen, node.ins, outs))
            redirect.update(zip(node.outs, outs))
            types.update(zip(outs, node.gen.cod.atoms))
        if rng.random() < rate:  # a box whose outputs are all discarded
            gen = rng.choice(gens)
            by_type: dict[str, list[int]] = {}
            for w in available[-20:]:
                by_type.setdefault(types[w], []).append(w)
            if all(a in by_type for a in gen.dom.atoms):
                ins = tuple(rng.choice(by_type[a]) for a in gen.dom.atoms)
                outs = tuple(range(fresh, fresh + len(gen.cod)))
                fresh += len(outs)
                nodes.append(Node(gen, ins, outs))
    outputs = [redirect.get(w, w) if rng.random() < 0.5 else w for w in d.outputs]
    return Diagram(d.dom, d.cod, d.inputs, nodes, outputs, fresh)


def unequal_variant(d: Diagram, rng: random.Random) -> Diagram:
    """``d`` with the two inputs of one live box exchanged (or one box renamed), checked unequal."""
    candidates = list(range(len(d.nodes)))
    rng.shuffle(candidates)
    gens = signature()
    for i in candidates:
        node = d.nodes[i]
        for p in range(len(node.ins)):
            for q in range(p + 1, len(node.ins)):
                if node.gen.dom.atoms[p] == node.gen.dom.atoms[q] and node.ins[p] != node.ins[q]:
                    ins = list(node.ins)
                    ins[p], ins[q] = ins[q], ins[p]
                    other = _replace(d, i, Node(node.gen, tuple(ins), node.outs))
                    if not mc.equal(d, other):
                        return other
        for gen in gens:
            if gen != node.gen and gen.dom == node.gen.dom and gen.cod == node.gen.cod:
                other = _replace(d, i, Node(gen, node.ins, node.outs))
                if not mc.equal(d, other):
                    return other
    types = d.wire_types()
    for j, w in enumerate(d.outputs):  # fall back on reading another wire at one output
        for v, a in types.items():
            if v != w and a == types[w]:
                outputs = list(d.outputs)
                outputs[j] = v
                other = Diagram(d.dom, d.cod, d.inputs, d.nodes, outputs, d.n_wires)
                if not mc.equal(d, other):
                    return other
    raise RuntimeError("no unequal variant found")


def _replace(d: Diagram, i: int, node: Node) -> Diagram:
    nodes = list(d.nodes)
    nodes[i] = node
    return Diagram(d.dom, d.cod, d.inputs, nodes, d.outputs, d.n_wires)


# -- timing ---------------------------------------------------------------------------

CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def median_time(
    fn: Callable[[], Any], repeats: int, clock: Callable[[], float] = time.process_time, budget: float = 3.0
) -> tuple[float, Any]:
    """Median time of ``fn()`` over ``repeats`` runs (fewer once ``budget`` seconds are spent); and its value."""
    times = []
    value = None
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = clock()
        value = fn()
        times.append(clock() - t0)
        if time.perf_counter() - start > budget:
            break
    return statistics.median(times), value


def _child(conn: Any, prepare: Callable[[], Callable[[], Any]], repeats: int, clock: str, budget: float = 3.0) -> None:
    tick = CLOCKS[clock]
    try:
        fn = prepare()
        conn.send(("ready", None))
        start = time.perf_counter()
        for _ in range(repeats):
            t0 = tick()
            value = fn()
            conn.send(("run", (tick() - t0, value)))
            if time.perf_counter() - start > budget:
                break
        conn.send(("done", None))
    except BaseException as error:  # report to the parent instead of hanging it
        conn.send(("error", type(error).__name__))
        traceback.print_exc()
    finally:
        conn.close()


def timed_in_subprocess(
    prepare: Callable[[], Callable[[], Any]], repeats: int, timeout: float, clock: str
) -> tuple[float, Any] | str:
    """Time ``prepare()()`` in a forked process: ``(median time, value)``, or why there is none.

    ``prepare`` (converting the diagrams, not timed) gets ``3 * timeout`` seconds.  The process is
    killed as soon as one run takes more than ``timeout`` seconds of wall time (plus some slack);
    a run over ``timeout`` on the chosen clock also counts as a timeout.
    """
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(child, prepare, repeats, clock))
    process.start()
    child.close()
    runs: list[tuple[float, Any]] = []
    outcome = "timeout"
    ready = parent.poll(3 * timeout + 2.0)
    while ready and parent.poll(timeout * 1.5 + 2.0):
        kind, payload = parent.recv()
        if kind == "ready":
            continue
        if kind == "run":
            runs.append(payload)
            if payload[0] > timeout:
                break
        else:
            outcome = "done" if kind == "done" else str(payload)
            break
    process.kill()
    process.join()
    if outcome != "done":
        return outcome
    seconds = statistics.median(t for t, _ in runs)
    return (seconds, runs[-1][1]) if seconds <= timeout else "timeout"


def _prepare(
    convert: Callable[[Diagram], Any], compare: Callable[[Any, Any], bool], a: Diagram, b: Diagram
) -> Callable[[], bool]:
    return partial(compare, convert(a), convert(b))


Cell = float | str | None  # seconds; "timeout" or an error name; None: not run


def measure(
    n: int, seed: int, repeats: int, timeout: float, clock: str, run_discopy: dict[str, bool]
) -> dict[str, Any]:
    """Build the three pairs of size ``n`` and time both tools on them, asserting the answers."""
    rng = random.Random(seed * 1_000_003 + n)
    t0 = time.perf_counter()
    a = random_diagram(n, rng)
    b = rebuild(a, rng)
    c = markov_variant(b, rng)
    u = unequal_variant(b, rng)
    row: dict[str, Any] = dict(n=n, wires=a.n_wires, live=len(mc.NormalForm.of(a).nodes),
                               build=time.perf_counter() - t0)
    tick = CLOCKS[clock]
    for key, other, expected in (("eq", b, True), ("ne", u, False), ("mk", c, True)):
        row[f"mc_{key}"], answer = median_time(partial(mc.equal, a, other), repeats, tick)
        assert answer is expected, f"markovcat.equal answered {answer} on the {key} pair of size {n}"
    for kind in ("diagram", "hypergraph"):
        for key in ("eq", "ne"):
            row[f"{kind}_{key}"] = None
        if not run_discopy[kind]:
            continue
        convert = _discopy.to_discopy if kind == "diagram" else _discopy.to_hypergraph
        compare = _discopy.discopy_diagrams_equal if kind == "diagram" else operator.eq
        for key, other, expected in (("eq", b, True), ("ne", u, False)):
            prepare = partial(_prepare, convert, compare, a, other)
            result = timed_in_subprocess(prepare, min(repeats, 3), timeout, clock)
            if isinstance(result, str):
                row[f"{kind}_{key}"] = result
                run_discopy[kind] = False  # skip larger sizes
                break
            seconds, answer = result
            assert answer is expected, f"DisCoPy ({kind}) answered {answer} on the {key} pair of size {n}"
            row[f"{kind}_{key}"] = seconds
    return row


def fmt(value: Cell, timeout: float) -> str:
    if value is None:
        return "skipped"
    if value == "timeout":
        return f"> {timeout:g} s"
    if isinstance(value, str):
        return value
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} s"


def speedup(other: Cell, ours: float, timeout: float) -> str:
    if other == "timeout":
        return f"> {timeout / ours:,.0f}x"
    if isinstance(other, float):
        return f"{other / ours:,.0f}x"
    return ""


def render(rows: list[dict[str, Any]], timeout: float, repeats: int, clock: str) -> str:
    lines = [
        "| boxes | reaching the outputs | markovcat `equal` | DisCoPy `==` (hypergraph_equality) | speedup | "
        "DisCoPy `Hypergraph.__eq__` | speedup | markovcat, unequal pair | DisCoPy `Hypergraph.__eq__`, "
        "unequal pair | markovcat, Markov-only pair |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        t = row["mc_eq"]
        cols = [
            f"{row['n']:,}",
            f"{row['live']:,}",
            fmt(t, timeout),
            fmt(row["diagram_eq"], timeout),
            speedup(row["diagram_eq"], t, timeout),
            fmt(row["hypergraph_eq"], timeout),
            speedup(row["hypergraph_eq"], t, timeout),
            fmt(row["mc_ne"], timeout),
            fmt(row["hypergraph_ne"], timeout),
            fmt(row["mc_mk"], timeout),
        ]
        lines.append("| " + " | ".join(cols) + " |")
    what = "CPU time (`time.process_time`)" if clock == "cpu" else "wall-clock time"
    lines += [
        "",
        f"Median {what} of {repeats} runs (DisCoPy: 3) on one pair per size; Python "
        f"{platform.python_version()}, {platform.machine()}. Equal pairs are equal in the free "
        "gs-monoidal category, so both tools must say True (asserted); the unequal pair must give False "
        "(asserted); the Markov-only pair adds discarded and repeated deterministic boxes, which DisCoPy's "
        "theory does not identify, so only markovcat is timed there. DisCoPy `==` includes its "
        "`to_hypergraph`; `Hypergraph.__eq__` is its graph-isomorphism check on hypergraphs built directly "
        f"from the term graphs. A DisCoPy run over {timeout:g} s is cut and larger sizes are skipped.",
        "",
    ]
    return "\n".join(lines)


GC_SIZES = (10_000, 100_000)


def measure_gc(seed: int, repeats: int) -> str:
    """``mc.equal`` with the collector paused (as shipped), not paused, and off; growth 10k -> 100k."""
    import gc

    from markovcat import markov

    shipped = markov.GC_PAUSE_ABOVE
    modes = {
        "as shipped (collector paused while normalising)": (shipped, True),
        "collector on throughout (no pause)": (10**12, True),
        "collector off for the whole run": (shipped, False),
    }
    pairs = {}
    for n in GC_SIZES:
        rng = random.Random(seed * 1_000_003 + n)
        a = random_diagram(n, rng)
        b = rebuild(a, rng)
        assert len(a.nodes) + len(b.nodes) > 0  # join both term graphs before timing
        pairs[n] = (a, b)
    times: dict[str, dict[int, float]] = {}
    for mode, (pause_above, enabled) in modes.items():
        times[mode] = {}
        markov.GC_PAUSE_ABOVE = pause_above
        try:
            for n, (a, b) in pairs.items():
                if not enabled:
                    gc.disable()
                try:
                    seconds, answer = median_time(partial(mc.equal, a, b), repeats, time.process_time, budget=20.0)
                finally:
                    gc.enable()
                assert answer is True
                times[mode][n] = seconds
        finally:
            markov.GC_PAUSE_ABOVE = shipped
        print(f"{mode}: " + ", ".join(f"{n}: {fmt(t, 0)}" for n, t in times[mode].items()), file=sys.stderr)
    small, large = GC_SIZES
    lines = [
        f"| `mc.equal` | {small:,} boxes | {large:,} boxes | growth |",
        "|---|---:|---:|---:|",
    ]
    for mode, row in times.items():
        lines.append(f"| {mode} | {fmt(row[small], 0)} | {fmt(row[large], 0)} | {row[large] / row[small]:.1f}x |")
    lines += [
        "",
        f"Median CPU time (`time.process_time`) of up to {repeats} runs on one equal pair per size (the pairs of the "
        f"main table); Python {platform.python_version()}, {platform.machine()}. Linear growth is 10x.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="markovcat.equal against DisCoPy's hypergraph equality")
    parser.add_argument("--max-size", type=int, default=SIZES[-1], help="largest number of boxes (default 10000)")
    parser.add_argument("--discopy-timeout", type=float, default=30.0, help="seconds before a DisCoPy run is cut")
    parser.add_argument("--repeats", type=int, default=7, help="runs per timing (the median is reported)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="CPU time (default) or wall time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="where the Markdown table goes")
    parser.add_argument("--gc", action="store_true", help="time mc.equal with and without the collector instead")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(1000)  # the default: markovcat needs no deeper stack, even at 10,000 boxes
    results = Path(__file__).parent / "results"
    if args.gc:
        table = measure_gc(args.seed, args.repeats)
        print(table)
        out = args.out or results / "equality_gc.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table)
        return 0
    args.out = args.out or results / "equality.md"
    run_discopy = {"diagram": True, "hypergraph": True}
    rows = []
    for n in [s for s in SIZES if s <= args.max_size]:
        row = measure(n, args.seed, args.repeats, args.discopy_timeout, args.clock, run_discopy)
        rows.append(row)
        print(
            f"n={n}: {row['live']} boxes reach the outputs, {row['wires']} wires; markovcat "
            f"{fmt(row['mc_eq'], args.discopy_timeout)}; DisCoPy == {fmt(row['diagram_eq'], args.discopy_timeout)}, "
            f"Hypergraph == {fmt(row['hypergraph_eq'], args.discopy_timeout)} (pairs built in {row['build']:.2f} s)",
            file=sys.stderr,
            flush=True,
        )
    table = render(rows, args.discopy_timeout, args.repeats, args.clock)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
