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

import atexit
import html
import importlib
import inspect
import logging
import re
import shutil
import tempfile
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
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    from mkdocs.structure.files import File

    for path, content in [*gallery_pages(), *experiment_pages()]:
        files.append(File.generated(config, path, content=content))
    return files


# -- the gallery ---------------------------------------------------------------------------------------
def _options(fig: Any) -> dict[str, Any]:
    """The drawing options the gallery uses for ``fig`` (``Figure.options()``; a title on older galleries)."""
    if callable(getattr(fig, "options", None)):
        return dict(fig.options())
    title = getattr(fig.item, "name", None) if fig.kind != "diagram" else None
    return {"title": title or fig.key.replace("_", " ")}


def _code(fig: Any) -> str:
    """The lines that draw ``fig`` (a ``markovcat.diagrams.Figure``) as the gallery does."""
    source = "proofs" if fig.kind == "proof" else "figures"
    item = f'{fig.module}.{source}()["{fig.key}"]'
    drawable = f"{item}.equation()" if fig.kind == "proof" else item
    options = "".join(f", {key}={value!r}" for key, value in _options(fig).items())
    return f'from markovcat.diagrams import {fig.module}\n\n{drawable}.draw("{fig.stem}.svg"{options})'


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
             "| module | what it shows | figures |", "|---|---|---:|"]
    with tempfile.TemporaryDirectory() as tmp, matplotlib.rc_context({"svg.hashsalt": "markovcat"}):
        for name in MODULES:
            module = importlib.import_module(f"markovcat.diagrams.{name}")
            mine = [f for f in figures if f.module == name]
            summary = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            index.append(f"| [`{name}`]({name}.md) | {summary} | {len(mine)} |")
            lines = [f"# {name}", "", summary, ""]
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
learned by a plain MLP (`mlp`) and by its symmetrisations with the Haar gamma (`haar`), Kim et
al.'s learned gamma (`kim`) and the recursive gamma (`recursive`):

| task | input `x` | target | input action | output action |
|---|---|---|---|---|
| `cov` | `A Z` (`Z` is d x 25) | `A Aᵀ` | `x -> g x` | `y -> g y gᵀ` |
| `linreg` | `[Z; yᵀ Z + u]` | `y` | `g` on `Z` | `y -> g y` |
| `expm` | d x d | `exp(x)` | `x -> g x gᵀ` | `y -> g y gᵀ` |
| `inv` | d x d | `x⁻¹` | `(g, h): x -> g x hᵀ` | `y -> h y gᵀ` |
| `inv1` | d x d | `x⁻¹` | `x -> g x` | `y -> y gᵀ` |

Run them with `markovcat experiment matrix --all` (the CPU configuration below: d in {4, 8},
seeds {0, 1, 2}, 2,500 steps). The table and figure are the committed results in
`experiments/results/matrix/`, included here when the site is built; the README compares them
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

"""


SYMDIFF = ROOT / "experiments" / "results" / "symdiff"
SYMDIFF_INTRO = """# SymDiff on QM9

The follow-up of Cornish 2024, SymDiff (`markovcat.experiments.symdiff`): a diffusion model for molecules
whose denoiser is `sym` of an unconstrained transformer over atoms (a DiT) with the recursive
gamma, built with `mc.symmetrise` from the diagram. Four contenders from the same code: SymDiff,
SymDiff-H (Haar gamma), DiT and DiT-Aug (random O(3) augmentation), selected on a validation
estimate of the variational bound (one time step in each of 16 strata per molecule, the same
draws for every contender); each record holds the test bound, EDM's sample metrics, the
O(3) check of the trained denoiser and a test of the O(3) invariance of the samples' law. Run it
with `markovcat experiment symdiff --all --config cpu-small --jobs 2`, then
`markovcat experiment symdiff-plot`. **The `cpu-small` budget is far below the SymDiff paper's:
its numbers are not comparable with the published Table 1 rows shown below the table.** SymDiff
and DiT-Aug in ten minutes on one GPU: `experiments/symdiff/gpu.sh` (configuration `gpu-10min`,
the README says how it is sized).

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
