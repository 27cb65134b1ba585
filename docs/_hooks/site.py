"""MkDocs hooks of the documentation site: the API sources, the gallery and the experiment pages.

* ``on_config``: the API reference is read from source by griffe, which expects one folder per
  package; the installed ``markovcat.backends``, ``.diagrams`` and ``.experiments`` live in
  top-level folders (``[tool.setuptools.package-dir]``), so a temporary tree of links puts them
  where griffe looks.
* ``on_files``: the gallery is drawn at build time with ``markovcat.diagrams.all_figures()`` (one
  page per gallery module, each figure with the code that draws it), and the experiment pages
  include the committed result tables and figures of ``experiments/results/``.
* ``on_post_build``: every public name (``__all__``) of the documented modules has an entry in
  its API page; a missing one is a warning, so ``mkdocs build --strict`` fails.
"""

from __future__ import annotations

import ast
import atexit
import html
import importlib
import inspect
import logging
import re
import shutil
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

try:
    from mkdocs.plugins import event_priority
except ImportError:  # the tests import this module to run the gallery's snippets, with or without mkdocs

    def event_priority(priority: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:  # type: ignore[misc]
        return lambda function: function

ROOT = Path(__file__).resolve().parents[2]
#: Installed package -> its folder in the source tree (mirrors pyproject.toml's package-dir).
PACKAGE_DIRS = {"markovcat/backends": "backends", "markovcat/diagrams": "diagrams",
                "markovcat/experiments": "experiments"}


def source_tree() -> Path:
    """A temporary folder holding ``markovcat/`` laid out as installed (links into the checkout)."""
    tmp = Path(tempfile.mkdtemp(prefix="markovcat-docs-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    package = tmp / "markovcat"
    package.mkdir()
    for entry in (ROOT / "markovcat").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for installed, folder in PACKAGE_DIRS.items():
        (tmp / installed).symlink_to(ROOT / folder, target_is_directory=True)
    return tmp


@event_priority(100)  # before mkdocstrings reads its handler options
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    python = config.plugins["mkdocstrings"].config["handlers"].setdefault("python", {})
    python["paths"] = [str(source_tree())]
    options = python.setdefault("options", {})
    options["extensions"] = [str(ROOT / e) if isinstance(e, str) and e.startswith("docs/") else e
                             for e in options.get("extensions", [])]  # found from any working directory
    config["site_name"] = f"{config['site_name']} {version()}"  # the version in every page's header
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    from mkdocs.structure.files import File

    for path, content in [*gallery_pages(), *experiment_pages(), *readme_page()]:
        files.append(File.generated(config, path, content=content))
    return files


def version() -> str:
    """The version of the markovcat being documented."""
    import markovcat

    return str(markovcat.__version__)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """``{{ version }}`` in a page is the version documented."""
    return markdown.replace("{{ version }}", version())


# -- the README and the files it links to --------------------------------------------------------------
LINK = re.compile(r"(\]\()([^)\s#]+)((?:#[^)\s]*)?\))")


def readme_page() -> list[tuple[str, str | bytes]]:
    """``readme.md``: the repository's README, and under ``files/`` a copy of every repository file it links to.

    A link to a Markdown file or a log points to a plain-text copy (``.txt`` appended), so that the
    site serves it as the repository holds it rather than as a page; the notebooks go along too.
    """
    out: list[tuple[str, str | bytes]] = []
    linked = {f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb")}

    def rewrite(match: re.Match[str]) -> str:
        target = match.group(2)
        if "://" in target or not (ROOT / target).is_file():
            return match.group(0)
        linked.add(target)
        return f"{match.group(1)}files/{_served(target)}{match.group(3)}"

    text = LINK.sub(rewrite, (ROOT / "README.md").read_text()).replace('src="docs/', 'src="../')  # docs/ is the site
    for target in sorted(linked):
        out.append((f"files/{_served(target)}", (ROOT / target).read_bytes()))
    note = ("*The repository's README, as it stands in the checkout this site was built from; the files it "
            "links to are served beside it as they are in the repository.*\n\n")
    title, _, rest = text.partition("\n")
    return [("readme.md", f"{title}\n\n{note}{rest}"), *out]


def _served(path: str) -> str:
    return path + ".txt" if path.endswith((".md", ".log")) else path


# -- the gallery ---------------------------------------------------------------------------------------
def _options(fig: Any) -> dict[str, Any]:
    """The drawing options the gallery uses for ``fig`` (``Figure.options()``; a title on older galleries)."""
    if callable(getattr(fig, "options", None)):
        return dict(fig.options())
    title = getattr(fig.item, "name", None) if fig.kind != "diagram" else None
    return {"title": title or fig.key.replace("_", " ")}


def _code(fig: Any) -> str:
    """The code that builds ``fig`` (a ``markovcat.diagrams.Figure``) and draws it as the gallery does.

    Read from its gallery module: the module's imports (made absolute) and the names it defines,
    the statements of ``figures()`` (or ``proofs()``) before its ``return``, and the expression of
    the returned dict's entry for ``fig.key`` (the whole function when its entries are built in a
    loop); then the ``draw`` call with the gallery's options.
    """
    module_name = f"markovcat.diagrams.{fig.module}"
    source = inspect.getsource(importlib.import_module(module_name))
    tree = ast.parse(source)
    builder = "proofs" if fig.kind == "proof" else "figures"
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == builder)
    *before, returned = function.body
    entries = (dict(zip(returned.value.keys, returned.value.values, strict=True))
               if isinstance(returned, ast.Return) and isinstance(returned.value, ast.Dict) else {})
    entry = next((v for k, v in entries.items() if isinstance(k, ast.Constant) and k.value == fig.key), None)
    lines = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = node.module or ""
            where = f"{module_name.rsplit('.', 1)[0]}.{base}" if node.level else base
            lines.append(f"from {where.rstrip('.')} import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Import):
            lines.append(ast.get_source_segment(source, node) or "")
    defined = [t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
               for target in (n.targets if isinstance(n, ast.Assign) else [n.target])
               for t in ast.walk(target) if isinstance(t, ast.Name)]
    defined += [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
                and n.name not in ("figures", "proofs")]  # the module's helpers, imported from it
    if defined:
        lines.append(f"from {module_name} import {', '.join(defined)}")
    lines.append("")
    name = "proof" if fig.kind == "proof" else "figure"
    if entry is None:  # built in a loop: the whole function, then its entry
        lines += [textwrap.dedent(ast.get_source_segment(source, function) or ""), "",
                  f'{name} = {builder}()["{fig.key}"]']
    else:
        lines += [textwrap.dedent(ast.get_source_segment(source, n) or "") for n in before
                  if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]  # not the docstring
        lines.append(f"{name} = {' '.join((ast.get_source_segment(source, entry) or '').split())}")
    if fig.kind == "proof":
        lines += ["proof.check()  # the chain, step by step", "figure = proof.equation()"]
    options = "".join(f", {key}={value!r}" for key, value in _options(fig).items())
    draw = f'figure.draw("{fig.stem}.svg"{options})'
    if len(draw) > 100:  # one option a line, so that the code fits the page
        draw = (f'figure.draw("{fig.stem}.svg",\n' + ",\n".join(f"            {key}={value!r}" for key, value in
                                                                 _options(fig).items()) + ")")
    lines.append(draw)
    return "\n".join(lines)


def gallery_pages() -> list[tuple[str, str | bytes]]:
    """``gallery/index.md``, one page per gallery module, and every figure as SVG."""
    import matplotlib

    matplotlib.use("Agg")
    from markovcat.diagrams import MODULES, all_figures

    figures = all_figures()
    out: list[tuple[str, str | bytes]] = []
    index = ["# Gallery", "",
             "Every figure of `markovcat.diagrams`, drawn when this site was built, with the code that draws it.",
             "`markovcat gallery OUTDIR` (or `python -m markovcat.diagrams OUTDIR`) draws them all as files.",
             "Deterministic boxes are square and shaded, stochastic ones rounded; copy and discard are dots.", "",
             "Each module's page shows, under every figure, the code that builds and draws it.", "",
             "| | module | what it shows | figures |", "|---|---|---|---:|"]
    with tempfile.TemporaryDirectory() as tmp, matplotlib.rc_context({"svg.hashsalt": "markovcat"}):
        for name in MODULES:
            module = importlib.import_module(f"markovcat.diagrams.{name}")
            mine = [f for f in figures if f.module == name]
            summary = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            thumbnail = (f"[![{mine[0].key}](img/{mine[0].stem}.svg){{ width=\"90\" .thumbnail }}]({name}.md)"
                         if mine else "")
            index.append(f"| {thumbnail} | [`{name}`]({name}.md) | {summary} | {len(mine)} |")
            lines = [f"# {summary.split('. ')[0].rstrip('.')} (`{name}`)", "", summary, ""]
            lines += ['??? example "The module that builds these figures: `markovcat.diagrams.' + name + '`"', "",
                      "    ```python", *("    " + ln if ln else "" for ln in inspect.getsource(module).splitlines()),
                      "    ```", ""]
            for fig in mine:
                svg = Path(tmp) / f"{fig.stem}.svg"
                fig.drawable().draw(str(svg), **_options(fig))
                out.append((f"gallery/img/{fig.stem}.svg", svg.read_bytes()))
                heading = f"Proof `{fig.key}`" if fig.kind == "proof" else f"`{fig.key}`"
                lines += [f"## {heading}", "", f"*{html.escape(fig.status())}*", "",
                          f"![{fig.key}](img/{fig.stem}.svg)", "", "```python", _code(fig), "```", ""]
                if fig.kind == "proof":
                    lines += ["The checked chain, one justification per step:", "", "```text", str(fig.item), "```", ""]
            out.append((f"gallery/{name}.md", "\n".join(lines)))
    out.append(("gallery/index.md", "\n".join(index) + "\n"))
    return out


# -- experiments ---------------------------------------------------------------------------------------
MATRIX = ROOT / "experiments" / "results" / "matrix"
MATRIX_INTRO = """# Matrix tasks

The synthetic matrix tasks of Cornish 2024, section 7.3 (`markovcat.experiments.matrix`), each
learned by the paper's five methods (a plain MLP, `mlp`; an EMLP backbone, `emlp`; the MLP
symmetrised with the Haar gamma, `haar`, with Kim et al.'s gamma through an EMLP, `kim-emlp`,
and with the paper's recursive gamma, `recursive`) and one beyond the paper (the "scalars"
gamma of Villar et al. 2021, `scalars`):

| task | input `x` | target | input action | output action |
|---|---|---|---|---|
| `cov` | `A Z` (`Z` is d x 25) | `A Aᵀ` | `x -> g x` | `y -> g y gᵀ` |
| `linreg` | `[Z; yᵀ Z + u]` | `y` | `g` on `Z` | `y -> g y` |
| `expm` | d x d | `exp(x)` | `x -> g x gᵀ` | `y -> g y gᵀ` |
| `inv` | d x d | `x⁻¹` | `(g, h): x -> g x hᵀ` | `y -> h y gᵀ` |
| `inv1` | d x d | `x⁻¹` | `x -> g x` | `y -> y gᵀ` |

Run them with `markovcat experiment matrix --all` (the CPU configuration: d in {4, 8}, seeds
{0, 1, 2}, 10,000 steps on fresh batches, the paper's data protocol; the sweep resumes where it
stopped, and the runs finished so far are below). The table and figure are the committed results in
`experiments/results/matrix/`, included here when the site is built;
[the README](../readme.md#experiments-the-matrix-tasks-of-cornish-2024-section-73) compares them
with the paper's claims.

"""


NBODY = ROOT / "experiments" / "results" / "nbody"
NBODY_INTRO = """# N-body

The charged-particle task of Satorras et al. 2021 (EGNN, section 5.1), on our own simulator
(`markovcat.experiments.nbody`): 5 particles in 3D with charges ±1; from positions, velocities
and charges, predict the positions 1,000 simulator steps later. Every contender is trained on
the same data, with the same optimiser and step budget, over 3 seeds, and selected on
validation. **The data is not the EGNN paper's, so the absolute numbers are not comparable with
the published ones; the comparison that counts is side by side, below.** Run it with
`markovcat experiment nbody --all --jobs 2`, then `markovcat experiment nbody-plot`; what a
record holds and the GPU recipe are in `experiments/results/nbody/README.md`.

The contenders (all but `egnn` share one small transformer over particles, or one MLP):

| contender | what it is |
|---|---|
| `mlp`, `transformer` | the plain backbones: an MLP over the flattened system, a transformer over particles |
| `mlp-aug`, `transformer-aug` | the same, trained on inputs turned by a random element of E(3) |
| `egnn` | EGNN from the `egnn-pytorch` library (4 layers, width 64, with the paper's velocity term) |
| `fa-peer` | frame averaging of the transformer with the `frame-averaging-pytorch` library |
| `fa` | the same frame averaging written with markovcat, `mc.frame_average` |
| `canon` | `mc.canonicalise` of the transformer with the PCA canonicaliser (one frame, not an average) |
| `haar` | `mc.symmetrise` of the transformer with the Haar gamma (a uniformly random rotation) |
| `recursive` | `mc.symmetrise` with the recursive gamma (a learned network summing over particles) |

`fa` and `fa-peer` have the same numbers because they are the same model: frame averaging of
the same transformer over the same PCA frame of the cloud `[x, x + v]`, once through markovcat and
once through the peer library. They agree to rounding on any input (a test checks it), so with the
same seeds they train identically; the pair is there to show that the compiled diagram costs
nothing against the hand-written library (compare their steps/s). `haar` and `recursive` are
stochastic: their test MSE averages 16 draws per system where that lowered the validation MSE
("draws at test"), and their equivariance is checked in law (the two-sample method).

"""


SYMDIFF = ROOT / "experiments" / "results" / "symdiff"
SYMDIFF_INTRO = """# SymDiff on QM9

The follow-up of Cornish 2024, SymDiff (`markovcat.experiments.symdiff`): a diffusion model for molecules
whose denoiser is `sym` of an unconstrained transformer over atoms (a DiT) with the recursive
gamma, built with `mc.symmetrise` from the diagram. Four contenders from the same code:

| contender | denoiser |
|---|---|
| `symdiff` | SymDiff: `sym` of the DiT with the recursive gamma (a learned choice of rotation, equivariant in law) |
| `symdiff-h` | SymDiff-H: `sym` of the DiT with the Haar gamma (a uniformly random rotation) |
| `dit` | the plain DiT, not equivariant |
| `dit-aug` | the DiT trained on molecules turned by a random element of O(3) |

They are selected on a validation estimate of the variational bound (one time step in each of 16
strata per molecule, the same draws for every contender); each record holds the test bound,
EDM's sample metrics, the O(3) check of the trained denoiser and a test of the O(3) invariance
of the samples' law. Run it with `markovcat experiment symdiff --all --config cpu-small --jobs 2`,
then `markovcat experiment symdiff-plot`. **The `cpu-small` budget is far below the SymDiff paper's:
its numbers are not comparable with the published Table 1 rows shown below the table.** SymDiff
and DiT-Aug in ten minutes on one GPU: `experiments/symdiff/gpu.sh` (configuration `gpu-10min`,
the README says how it is sized).

!!! note "The sign of the NLL"
    Our "test NLL" is the variational bound on `-log p(x)` of a test molecule, in nats, as our
    code computes it: lower is better, and at this budget it is positive (about +120). The
    published column is printed as in the SymDiff paper's Table 1, where it is negative (about
    -129 at the full budget). We have not established that the two are normalised alike (the
    units of the coordinates, the dequantisation of the atom types, the centre-of-mass subspace),
    so neither the sign nor the size of one says anything about the other; compare contenders
    within one table only.

"""


def experiment_pages() -> list[tuple[str, str | bytes]]:
    """``experiments/{matrix,nbody,symdiff}.md``: the committed results tables and their figures.

    The SymDiff page says how to make its table when ``experiments/results/symdiff/symdiff.md`` is not there.
    """
    table = (MATRIX / "matrix.md").read_text()
    figure = "![test error against d, one panel per task](matrix.png)\n"
    pages: list[tuple[str, str | bytes]] = [
        ("experiments/matrix.md", MATRIX_INTRO + table.rstrip() + "\n\n" + figure),
        ("experiments/matrix.png", (MATRIX / "matrix.png").read_bytes())]
    nbody = (NBODY / "nbody.md").read_text()
    figure = "![validation MSE against training steps, and test MSE per contender](nbody.png)\n"
    pages += [("experiments/nbody.md", NBODY_INTRO + nbody.rstrip() + "\n\n" + figure),
              ("experiments/nbody.png", (NBODY / "nbody.png").read_bytes())]
    if not (SYMDIFF / "symdiff.md").exists() or not (SYMDIFF / "symdiff.png").exists():
        missing = "*No table yet: `markovcat experiment symdiff-plot` writes it from the records.*\n"
        return pages + [("experiments/symdiff.md", SYMDIFF_INTRO + missing)]
    figure = ("![validation NLL bound and training loss against steps, and the first generated molecules of each "
              "contender](symdiff.png)\n")
    return pages + [("experiments/symdiff.md", SYMDIFF_INTRO + (SYMDIFF / "symdiff.md").read_text().rstrip() + "\n\n"
                     + figure), ("experiments/symdiff.png", (SYMDIFF / "symdiff.png").read_bytes())]


# -- the API reference covers every public name ----------------------------------------------------------
#: Module -> the API page (under the site) that documents its public names.
API_PAGES = {
    "markovcat": "api/markovcat/index.html",
    "markovcat.theorems": "api/theorems/index.html",
    "markovcat.backends.torch": "api/torch/index.html",
    "markovcat.backends.torch.gammas": "api/gammas/index.html",
    "markovcat.backends.python": "api/backends/index.html",
    "markovcat.backends.finstoch": "api/backends/index.html",
    "markovcat.backends.sympy": "api/backends/index.html",
    "markovcat.backends.discopy": "api/backends/index.html",
    "markovcat.diagrams": "api/diagrams/index.html",
}
log = logging.getLogger("mkdocs.hooks.api_coverage")


def undocumented(site: Path) -> list[str]:
    """``module.name`` for every public name of :data:`API_PAGES`' modules without an entry in its page.

    A name's entry is a heading whose id ends in ``.name``; submodules listed in ``__all__`` are
    skipped, and the names ``markovcat`` forwards to the torch backend are looked up there.
    """
    import types

    import markovcat

    ids = {page: set(re.findall(r'id="([^"]+)"', (site / page).read_text())) for page in set(API_PAGES.values())}
    missing = []
    for module_name, page in API_PAGES.items():
        module = importlib.import_module(module_name)
        forwarded = list(markovcat._FORWARDED) if module is markovcat else []  # public, kept out of __all__
        for name in [*getattr(module, "__all__", ()), *forwarded]:
            if isinstance(getattr(module, name, None), types.ModuleType):
                continue
            where = API_PAGES["markovcat.backends.torch"] if (
                module is markovcat and name in markovcat._FORWARDED) else page
            if not any(i == name or i.endswith(f".{name}") for i in ids[where]):
                missing.append(f"{module_name}.{name}")
    return missing


def on_post_build(config: MkDocsConfig) -> None:
    for name in undocumented(Path(config["site_dir"])):
        log.warning("the API reference has no entry for the public name %s", name)
