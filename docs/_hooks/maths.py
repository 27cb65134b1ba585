"""MkDocs hook: render the site's maths with KaTeX when it is built, and fail on maths left raw.

``pymdownx.arithmatex`` (generic mode) wraps each formula of a page (``$...$``, ``$$...$$``,
``\\(...\\)``, ``\\[...\\]``, in the Markdown pages and the docstrings alike) in a
``<span class="arithmatex">`` or ``<div class="arithmatex">``.  After the build, ``on_post_build``
sends every such formula of every page to the vendored KaTeX (``docs/assets/katex/katex.min.js``,
run once by Node.js) and writes the HTML it returns in place; the pages then need only
``katex.min.css`` and its fonts, served from the site itself (``extra_css`` in ``mkdocs.yml``), and
no script at all to show their maths.

Then every page is read again, and each of these is a warning (so ``mkdocs build --strict``
fails), naming the page and the text:

* a formula KaTeX could not parse (its error message);
* maths left raw in the text a reader sees (outside code blocks): a TeX delimiter ``\\(``, ``\\[``,
  ``$$`` or a TeX command such as ``\\mathcal{`` or ``\\alpha``;
* a literal ``\\|`` (a table's escaped pipe that Markdown left inside a code span).

Node.js is needed to build the site (``node`` on the ``PATH``; Debian's ``nodejs`` package).
"""

from __future__ import annotations

import html
import json
import logging
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig

KATEX = Path(__file__).resolve().parents[1] / "assets" / "katex" / "katex.min.js"
FORMULA = re.compile(r'<(span|div) class="arithmatex">(.*?)</\1>', re.DOTALL)
#: What raw maths looks like in a page's visible text.
RAW = re.compile(r"\\\(|\\\[|\$\$|\\(?:[a-zA-Z]+\{|alpha|beta|gamma|otimes|cong|cdot|mathcal|frac|sum|int)\b")
log = logging.getLogger("mkdocs.hooks.maths")

RENDER_JS = """
const katex = require(process.argv[1]);
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(([tex, display]) => {
    try {
      return {html: katex.renderToString(tex, {displayMode: display, throwOnError: true, output: "htmlAndMathml"})};
    } catch (error) {
      return {error: String(error.message || error)};
    }
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def _tex(content: str) -> tuple[str, bool]:
    """The TeX of one arithmatex element's content, and whether it is displayed (``\\[...\\]``)."""
    text = html.unescape(content).strip()
    for opening, closing, display in (("\\[", "\\]", True), ("\\(", "\\)", False), ("$$", "$$", True)):
        if text.startswith(opening) and text.endswith(closing):
            return text[len(opening):-len(closing)].strip(), display
    return text, False


def render(formulas: list[tuple[str, bool]]) -> list[dict[str, str]]:
    """KaTeX's HTML (``{"html": ...}``) or its error (``{"error": ...}``) for each ``(tex, display)``."""
    if not formulas:
        return []
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        raise RuntimeError("the documentation's maths is rendered by KaTeX under Node.js, and no `node` is on the "
                           "PATH: install Node.js (Debian: apt-get install nodejs)")
    done = subprocess.run([node, "-e", RENDER_JS, str(KATEX)], input=json.dumps(formulas), capture_output=True,
                          text=True, check=False, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"KaTeX under Node.js failed (exit {done.returncode}): {done.stderr.strip()}")
    out: list[dict[str, str]] = json.loads(done.stdout)
    return out


def render_site(site: Path) -> list[str]:
    """Render every formula of the built ``site`` in place; one problem per formula KaTeX refused."""
    pages = sorted(site.rglob("*.html"))
    found: list[tuple[Path, re.Match[str]]] = []
    texts = {page: page.read_text(encoding="utf-8") for page in pages}
    for page, text in texts.items():
        found += [(page, m) for m in FORMULA.finditer(text)]
    results = render([_tex(m.group(2)) for _, m in found])
    problems: list[str] = []
    by_page: dict[Path, list[tuple[re.Match[str], dict[str, str]]]] = {}
    for (page, match), result in zip(found, results):
        by_page.setdefault(page, []).append((match, result))
    for page, items in by_page.items():
        text, pieces, last = texts[page], [], 0
        for match, result in items:
            pieces.append(text[last:match.start()])
            if "error" in result:
                problems.append(f"{page.relative_to(site).as_posix()}: KaTeX cannot render "
                                f"{_tex(match.group(2))[0]!r}: {result['error']}")
                pieces.append(match.group(0))
            else:
                tag = match.group(1)
                pieces.append(f'<{tag} class="arithmatex">{result["html"]}</{tag}>')
            last = match.end()
        pieces.append(text[last:])
        page.write_text("".join(pieces), encoding="utf-8")
    return problems


class _Visible(HTMLParser):
    """The text of a page a reader sees as prose, and its inline code, apart.

    Skipped: ``<pre>`` blocks, scripts, styles, the head, and rendered KaTeX (its MathML keeps the
    TeX source in an ``<annotation>``).
    """

    SKIP = {"pre", "script", "style", "head", "annotation", "textarea"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.skipping = 0
        self.prose: list[str] = []
        self.code: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "img", "input", "meta", "link", "hr", "wbr", "source"):
            return
        classes = (dict(attrs).get("class") or "").split()
        skip = tag in self.SKIP or "katex" in classes
        self.stack.append(tag if not skip else f"!{tag}")
        self.skipping += skip

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            top = self.stack.pop()
            if top.startswith("!"):
                self.skipping -= 1
            if top.lstrip("!") == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        (self.code if "code" in self.stack else self.prose).append(data)


def raw_maths(site: Path) -> list[str]:
    """Maths left raw in the visible text of the built ``site``, as ``page: text``."""
    problems = []
    for page in sorted(site.rglob("*.html")):
        parser = _Visible()
        parser.feed(page.read_text(encoding="utf-8"))
        where = page.relative_to(site).as_posix()
        for chunk in parser.prose:
            m = RAW.search(chunk)
            if m:
                problems.append(f"{where}: raw maths {chunk[max(0, m.start() - 30):m.end() + 30].strip()!r}")
        for chunk in [*parser.prose, *parser.code]:
            if "\\|" in chunk:
                problems.append(f"{where}: a literal '\\|' in {chunk.strip()[:80]!r}")
    return problems


def on_post_build(config: MkDocsConfig) -> None:
    site = Path(config["site_dir"])
    for problem in [*render_site(site), *raw_maths(site)]:
        log.warning(problem)
