"""The documentation build's own checks (``docs/_hooks``): each finds what it is for, and passes what is right.

What this proves: the maths hook renders a formula with the vendored KaTeX and reports a formula it
cannot parse, raw TeX left in prose and a literal ``\\|``; the API checks report an entry with no
description and a cross-reference that does not resolve.  The site build itself (``mkdocs build
--strict`` in ``.ci/run``) runs them on every page.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).parent.parent / "docs"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("node") is None, reason="KaTeX runs under Node.js")
def test_the_maths_hook_renders_formulas_and_reports_a_bad_one(tmp_path: Path) -> None:
    maths = _load("docs_maths", DOCS / "_hooks" / "maths.py")
    page = tmp_path / "index.html"
    page.write_text('<p>Inline <span class="arithmatex">\\(\\alpha &lt; \\beta\\)</span>.</p>'
                    '<div class="arithmatex">\\[\\mathcal{C}(X, Y)\\]</div>'
                    '<p><span class="arithmatex">\\(\\frac{1}\\)</span></p>')
    problems = maths.render_site(tmp_path)
    assert len(problems) == 1 and "\\\\frac{1}" in problems[0] and "KaTeX cannot render" in problems[0]
    text = page.read_text()
    assert text.count('class="katex"') == 2 and text.count('class="katex-display"') == 1
    assert "<annotation" in text and "\\alpha &lt; \\beta" in text  # the MathML keeps the source
    assert maths.raw_maths(tmp_path) == [f"index.html: raw maths {s!r}" for s in ["\\(\\frac{1}\\)"]]


def test_raw_maths_and_escaped_pipes_in_a_page_are_reported(tmp_path: Path) -> None:
    maths = _load("docs_maths", DOCS / "_hooks" / "maths.py")
    (tmp_path / "a.html").write_text(
        "<p>fine: x -> g x</p><pre><code>print('\\\\(not prose\\\\)')</code></pre>"
        "<p>$$\\mathcal{C}$$</p><table><td><code>\\|G\\|</code></td></table>")
    assert maths.raw_maths(tmp_path) == ["a.html: raw maths '$$\\\\mathcal{C}$$'",
                                         "a.html: a literal '\\|' in '\\\\|G\\\\|'"]
    (tmp_path / "a.html").write_text("<p>fine: x -> g x</p><pre><code>a \\| b</code></pre>")
    assert maths.raw_maths(tmp_path) == []


def test_an_api_entry_without_a_description_is_reported(tmp_path: Path) -> None:
    reference = _load("docs_reference", DOCS / "_hooks" / "reference.py")
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "index.html").write_text(
        '<div class="doc doc-object doc-class"><h2 id="m.C" class="doc doc-heading">C</h2>'
        '<div class="doc-signature"><pre><code>C()</code></pre></div>'
        '<div class="doc doc-contents"><p>A class.</p><div class="doc doc-children">'
        '<div class="doc doc-object doc-function"><h3 id="m.C.f" class="doc doc-heading">f</h3>'
        '<div class="doc doc-contents"></div></div>'
        '<div class="doc doc-object doc-attribute"><h3 id="m.C.x" class="doc doc-heading">x</h3>'
        '<div class="doc doc-contents"><p>The x.</p></div></div>'
        '</div></div></div>'
        '<div class="doc doc-object doc-function"><h2 id="m.g" class="doc doc-heading">g</h2>'
        '<div class="doc doc-contents"><div class="doc doc-children"><div class="doc doc-object doc-attribute">'
        '<h3 id="m.g.y" class="doc doc-heading">y</h3><div class="doc doc-contents"><p>Inner.</p></div></div>'
        '</div></div></div>')
    assert reference.entries(tmp_path)["api/index.html"] == {"m.C": "A class.", "m.C.f": "", "m.C.x": "The x.",
                                                              "m.g": "", "m.g.y": "Inner."}
    assert reference.undescribed(tmp_path) == ["api/index.html: m.C.f", "api/index.html: m.g"]


def test_docstring_roles_become_cross_references_that_must_resolve() -> None:
    """A role naming a markovcat object links to it; a module or another package's name stays code;
    a name that means nothing stays a reference autorefs cannot resolve (so the build fails where it is shown)."""
    griffe = pytest.importorskip("griffe")
    ext = _load("docs_docstrings", DOCS / "_hooks" / "docstrings.py")
    package = griffe.load("markovcat", resolve_aliases=False)
    sym = package["symmetrisation"]["sym"]
    link = ext.linker(sym)
    assert link("markovcat.symmetrisation.ave") == "markovcat.symmetrisation.ave"
    assert link("ave") == "markovcat.symmetrisation.ave"  # in the module's scope
    assert link("markovcat.check_equivariance") == "markovcat.backends.torch.check_equivariance"  # forwarded
    assert link("markovcat.symmetrisation") is None  # a module: code
    assert link("torch.nn.Module") is None  # another package: code
    assert link("no_such_name") == "no_such_name"
    text = ext.markdown("See :func:`~markovcat.symmetrisation.ave` and :mod:`markovcat.symmetrisation`.", link)
    assert text == "See [`ave`][markovcat.symmetrisation.ave] and `markovcat.symmetrisation`."
