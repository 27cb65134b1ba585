"""The documentation site: every Python snippet of docs/ runs as written, and the site's checks work.

Each page's ``python`` blocks run in order in one namespace, in a temporary folder (pages that
draw write their files there).  What this proves: the snippets run and their asserts hold with
this checkout.  What it does not: that the prose around them is right, or that the site builds
(``mkdocs build --strict`` in ``.ci/run`` does that, followed by ``docs/check_links.py``).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if not any(part.startswith("_") for part in p.relative_to(DOCS).parts))
BLOCK = re.compile(r"^(?P<indent> *)```python[^\n]*\n(?P<body>.*?)^(?P=indent)```", flags=re.S | re.M)


def python_blocks(text: str) -> list[str]:
    """The ``python`` fenced blocks of a Markdown page, dedented (blocks inside admonitions are indented)."""
    blocks = []
    for m in BLOCK.finditer(text):
        indent = len(m.group("indent"))
        blocks.append("".join(line[indent:] for line in m.group("body").splitlines(keepends=True)))
    return blocks


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_python_blocks_are_found_also_inside_admonitions() -> None:
    text = "a\n```python\nx = 1\n```\n\n!!! note\n    ```python\n    y = x + 1\n    ```\n```bash\nls\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = x + 1\n"]


WITH_CODE = [p for p in PAGES if python_blocks(p.read_text())]


def test_the_written_pages_have_snippets() -> None:
    """Every guide page shows code (the API pages are generated from docstrings, the gallery by the build)."""
    without = {str(p.relative_to(DOCS)) for p in PAGES} - {str(p.relative_to(DOCS)) for p in WITH_CODE}
    assert without == {str(p.relative_to(DOCS)) for p in (DOCS / "api").glob("*.md")}


@pytest.mark.parametrize("page", WITH_CODE, ids=[str(p.relative_to(DOCS)) for p in WITH_CODE])
def test_page_snippets_run(page: Path, tmp_path: Path) -> None:
    blocks = python_blocks(page.read_text())
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict[str, object] = {"__name__": "__docs__"}
        for i, block in enumerate(blocks):
            exec(compile(block, f"{page.relative_to(ROOT)} (block {i + 1})", "exec"), namespace)
    finally:
        os.chdir(cwd)


def test_every_page_and_gallery_module_is_in_the_nav() -> None:
    """A page missing from ``nav`` would be built but unreachable; a new gallery module needs a page."""
    from markovcat.diagrams import MODULES

    nav = set(re.findall(r"([\w./-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.M))
    written = {str(p.relative_to(DOCS)) for p in PAGES}
    generated = {"gallery/index.md", "readme.md", "experiments/matrix.md", "experiments/nbody.md",
                 "experiments/symdiff.md", *(f"gallery/{m}.md" for m in MODULES)}
    assert written - nav == set(), "pages not in mkdocs.yml's nav"
    assert nav - written - generated == set(), "nav entries with no page"
    assert generated <= nav


def test_the_link_checker_finds_broken_links_and_images(tmp_path: Path) -> None:
    checker = _load("check_links", DOCS / "check_links.py")
    site = tmp_path / "site"
    (site / "a").mkdir(parents=True)
    (site / "img.svg").write_text("<svg/>")
    (site / "index.html").write_text(
        '<a href="a/">ok</a><a href="a/#sec">anchor</a><img src="img.svg"><a href="https://example.org/x">out</a>'
        '<a href="#top">self</a><p id="top"></p>')
    (site / "a" / "index.html").write_text('<h2 id="sec">s</h2><a href="../index.html">up</a>')
    assert checker.broken_links(site) == []
    (site / "a" / "index.html").write_text(
        '<h2 id="sec">s</h2><a href="../missing/">x</a><img src="../nope.png"><a href="../#nowhere">y</a>')
    broken = checker.broken_links(site)
    assert [b.split(": ", 1)[1] for b in broken] == [
        "href ../missing/ -> missing/index.html does not exist",
        "src ../nope.png -> nope.png does not exist",
        "href ../#nowhere -> index.html has no id 'nowhere'",
    ]
    assert checker.main([str(site)]) == 1 and checker.main([str(tmp_path / "none")]) == 2


def test_docstring_extension_makes_markdown() -> None:
    """The API pages' docstrings: reST roles and doctests become Markdown (what the reader sees)."""
    pytest.importorskip("griffe")
    ext = _load("docstrings", DOCS / "_hooks" / "docstrings.py")
    text = "Use :func:`~markovcat.sym` and :class:`Box`, ``x``::\n\n    literal :func:`kept`\n\n>>> 1 + 1\n2\n"
    assert ext.markdown(text) == ("Use `sym` and `Box`, `x`:\n\n    literal :func:`kept`\n\n"
                                  "```pycon\n>>> 1 + 1\n2\n```\n")


def test_the_gallery_pages_show_the_code_that_draws_each_figure(tmp_path: Path) -> None:
    """Under each gallery figure the site shows code (``docs/_hooks/site.py``) that builds that figure and draws it.

    Every figure's code is run up to its ``draw`` call and must build the item the gallery draws;
    one figure of each kind (diagram, equation, proof) is drawn from it here, the whole gallery by
    the site build.
    """
    site = _load("docs_site", DOCS / "_hooks" / "site.py")
    from markovcat.diagrams import all_figures

    figures = all_figures()
    drawn: set[str] = set()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for fig in figures:
            code = site._code(fig)
            build, draw = code.split("\nfigure.draw(")
            draw = "figure.draw(" + draw
            assert draw.startswith(f'figure.draw("{fig.stem}.svg"'), code
            namespace: dict[str, object] = {}
            exec(build, namespace)
            assert namespace["figure"] == fig.drawable(), code
            if fig.kind not in drawn:
                exec(draw, namespace)
                assert (tmp_path / f"{fig.stem}.svg").stat().st_size > 0
                drawn.add(fig.kind)
    finally:
        os.chdir(cwd)
    assert drawn == {"diagram", "equation", "proof"}


def test_a_public_name_missing_from_the_api_pages_is_reported(tmp_path: Path) -> None:
    """The build's coverage check (``on_post_build``, a warning: fails ``--strict``) finds a missing entry."""
    import importlib
    import types

    import markovcat

    site = _load("docs_site", DOCS / "_hooks" / "site.py")
    entries: dict[str, list[str]] = {}
    for module_name, page in site.API_PAGES.items():
        module = importlib.import_module(module_name)
        public = [*module.__all__, *(markovcat._FORWARDED if module is markovcat else ())]
        names = [n for n in public if not isinstance(getattr(module, n, None), types.ModuleType)]
        entries.setdefault(page, []).extend(f"{module_name}.{n}" for n in names)
    dropped = "markovcat.backends.torch.symmetrise"
    for page, ids in entries.items():
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text("".join(f'<h2 id="{i}"></h2>' for i in ids if i != dropped))
    assert sorted(site.undocumented(tmp_path)) == ["markovcat.backends.torch.symmetrise", "markovcat.symmetrise"]
