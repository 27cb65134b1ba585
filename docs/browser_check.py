"""Look at the built site in a real browser: ``python docs/browser_check.py [SITE_DIR] [--out DIR]``.

Serves SITE_DIR (default ``build/site``, made by ``mkdocs build``) on a loopback port, opens each
main page in headless Chromium at 1280 x 900 px (Playwright driving the system's Chromium: ``pip
install playwright`` and Debian's ``chromium``; no browser is downloaded), writes a full-page
screenshot of each to DIR (default ``build/screenshots``), and reports:

* **horizontal overflow** on the prose pages (all but the API reference): the page itself wider
  than the window, or a code block, table or figure in the content that scrolls sideways
  (its ``scrollWidth`` past its ``clientWidth``);
* **figure text size**: for each figure of the content (not the gallery index's thumbnails),
  the height of its smallest text as shown, in CSS pixels.  For a Matplotlib SVG this is read
  from the file (each text group's font scale times the shown width over the ``viewBox``
  width); for a PNG from its ``smallest text px`` metadata, written by
  ``markovcat.experiments.runner.save_figure``, times the shown width over the PNG's width.  A
  figure below ``--min-text`` px (default 9) is a problem; one whose text size cannot be read is
  listed as such.

Exit status 0 when no page has a problem, 1 when some do (each printed), 2 when SITE_DIR is not a
built site or no browser can be started.  What it does not check: colours, contrast, or pages
left out of :data:`PAGES`.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import struct
import sys
import threading
import zlib
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: The pages looked at (paths under the site); the API reference pages are not prose.
PAGES = (
    "", "getting-started/", "concepts/boxes/", "concepts/copy-discard/", "concepts/equality/",
    "concepts/groups/", "concepts/adjunction/", "how-to/symmetrise/", "how-to/own-groups/", "how-to/gammas/",
    "how-to/check-equivariance/", "how-to/proofs/", "how-to/figures/", "how-to/compile/", "how-to/discopy/",
    "gallery/", "gallery/sym/", "gallery/actions/", "experiments/matrix/", "experiments/nbody/",
    "experiments/symdiff/", "about/", "api/markovcat/", "api/torch/", "api/gammas/",
)
WIDTH, HEIGHT = 1280, 900
#: The elements of the content that must not scroll sideways, and what to call them.
OVERFLOW_JS = """() => {
  const out = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1)
    out.push(`the page is ${doc.scrollWidth} px wide in a ${window.innerWidth} px window`);
  const selector = "article pre, article pre > code, article .md-typeset__scrollwrap, article .md-typeset__table, "
    + "article table, article img";
  for (const el of document.querySelectorAll(selector)) {
    if (el.scrollWidth > el.clientWidth + 1) {
      const what = el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ")[0] : "");
      const text = (el.innerText || el.getAttribute("src") || "").trim().split("\\n")[0].slice(0, 60);
      out.push(`${what} scrolls sideways (${el.scrollWidth} px of content in ${el.clientWidth} px): ${text}`);
    }
  }
  return out;
}"""
FIGURES_JS = """() => Array.from(document.querySelectorAll("article img:not(.thumbnail)")).map(img => ({
  src: img.currentSrc || img.src, shown: img.getBoundingClientRect().width, natural: img.naturalWidth}))"""
SVG_SCALE = re.compile(r'<g id="text_\d+">\s*(?:<!--.*?-->\s*)?<g transform="translate\([^)]*\) scale\(([\d.e-]+)',
                       re.S)


def svg_text_px(svg: str, shown: float) -> float | None:
    """The smallest text of a Matplotlib SVG (text drawn as paths) in CSS px when ``shown`` px wide."""
    box = re.search(r'viewBox="[\d.\-]+ [\d.\-]+ ([\d.]+) [\d.]+"', svg)
    scales = [float(s) for s in SVG_SCALE.findall(svg)]
    if not box or not scales:
        return None
    return min(scales) * 100 * shown / float(box.group(1))  # Matplotlib's path text: scale = size / 100


def png_text(data: bytes) -> dict[str, str]:
    """The text chunks (``tEXt``, ``zTXt``) of a PNG file."""
    out, at = {}, 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind in (b"tEXt", b"zTXt"):
            key, _, value = body.partition(b"\0")
            text = zlib.decompress(value[1:]) if kind == b"zTXt" else value
            out[key.decode("latin-1")] = text.decode("latin-1")
        at += 12 + length
    return out


def png_text_px(data: bytes, shown: float, natural: int) -> float | None:
    """The smallest text of a PNG written by ``save_figure`` in CSS px when ``shown`` px wide."""
    value = png_text(data).get("smallest text px")
    return None if value is None or not natural else float(value) * shown / natural


def figure_problems(site: Path, figures: list[dict[str, object]], minimum: float) -> tuple[list[str], list[str]]:
    """(lines describing each figure's smallest text, problems) for the figures of one page."""
    lines, problems = [], []
    for fig in figures:
        path = site / unquote(urlsplit(str(fig["src"])).path).lstrip("/")
        shown, natural = float(fig["shown"]), int(fig["natural"])  # type: ignore[call-overload]
        if shown < 1 or not path.is_file():
            continue
        if path.suffix == ".svg":
            px = svg_text_px(path.read_text(encoding="utf-8", errors="replace"), shown)
        elif path.suffix == ".png":
            px = png_text_px(path.read_bytes(), shown, natural)
        else:
            px = None
        name = path.relative_to(site).as_posix()
        if px is None:
            lines.append(f"  figure {name}: {shown:.0f} px wide, text size unknown")
            continue
        lines.append(f"  figure {name}: {shown:.0f} px wide, smallest text {px:.1f} px")
        if px < minimum:
            problems.append(f"figure {name}: smallest text {px:.1f} px (below {minimum:g} px)")
    return lines, problems


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", type=Path, default=Path("build/site"))
    parser.add_argument("--out", type=Path, default=Path("build/screenshots"), help="screenshots folder")
    parser.add_argument("--min-text", type=float, default=9.0, help="smallest figure text, CSS px (default 9)")
    parser.add_argument("--browser", default=shutil.which("chromium") or shutil.which("chromium-browser"),
                        help="the Chromium executable (default: chromium on the PATH)")
    args = parser.parse_args(argv)
    site = args.site.resolve()
    if not (site / "index.html").is_file():
        print(f"{site} is not a built site (no index.html): run mkdocs build first", file=sys.stderr)
        return 2
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("Playwright is not installed: pip install playwright (it drives the system's Chromium)", file=sys.stderr)
        return 2
    if not args.browser:
        print("no Chromium found: apt-get install chromium, or pass --browser", file=sys.stderr)
        return 2
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    args.out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.browser, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            for path in PAGES:
                if not (site / path / "index.html").is_file():
                    problems.append(f"/{path}: no such page in the site")
                    continue
                page.goto(base + path, wait_until="networkidle")
                shot = args.out / ((path.strip("/").replace("/", "_") or "index") + ".png")
                page.screenshot(path=str(shot), full_page=True)
                mine = [] if path.startswith("api/") else list(page.evaluate(OVERFLOW_JS))
                lines, figs = figure_problems(site, page.evaluate(FIGURES_JS), args.min_text)
                mine += figs
                print(f"/{path}: {'ok' if not mine else f'{len(mine)} problem(s)'} ({shot})")
                print("\n".join(lines + [f"  PROBLEM {m}" for m in mine]) if lines or mine else "", end="\n" * bool(
                    lines or mine))
                problems += [f"/{path}: {m}" for m in mine]
            browser.close()
    finally:
        server.shutdown()
    print(f"{len(PAGES)} pages, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
