"""Check every internal link and image of the built site: ``python docs/check_links.py [SITE_DIR]``.

Reads every ``.html`` file under SITE_DIR (default ``build/site``) and every ``href`` and ``src``
that points inside the site (no scheme, not ``//host``): the file it names must exist (a folder
means its ``index.html``), and a ``#fragment`` must be an ``id`` of the target page.  Exit status 0
when all resolve, 1 when some do not (each printed), 2 when SITE_DIR is not a built site.  What it
does not check: external links, and links written by JavaScript at run time.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

ATTRIBUTES = ("href", "src")


class _Page(HTMLParser):
    """The ids of one page and its (attribute, url) references."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            elif name in ATTRIBUTES:
                self.refs.append((name, value))


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def _internal(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and not url.startswith("//")


def _target(site: Path, page: Path, path: str) -> Path:
    """The file of the site that ``path`` (relative to ``page``, or to the site root if it starts with /) names."""
    base = PurePosixPath("/") if path.startswith("/") else PurePosixPath("/", *page.parent.relative_to(site).parts)
    parts: list[str] = []
    for part in (base / unquote(path)).parts[1:]:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    target = site.joinpath(*parts)
    return target / "index.html" if path.endswith("/") or target.is_dir() else target


def broken_links(site: Path) -> list[str]:
    """Every internal reference of the built ``site`` that does not resolve, as ``page: what is wrong``."""
    site = site.resolve()
    pages = {p: _parse(p) for p in sorted(site.rglob("*.html"))}
    problems: list[str] = []
    for page, parsed in pages.items():
        for attribute, url in parsed.refs:
            if not _internal(url) or not url.strip():
                continue
            parts = urlsplit(url)
            target = _target(site, page, parts.path) if parts.path else page
            where = target.relative_to(site).as_posix() if target.is_relative_to(site) else str(target)
            if not target.is_file():
                problems.append(f"{page.relative_to(site).as_posix()}: {attribute} {url} -> {where} does not exist")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{page.relative_to(site).as_posix()}: {attribute} {url} -> {where} has no id "
                                    f"{unquote(parts.fragment)!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    site = Path(args[0] if args else "build/site")
    if not (site / "index.html").is_file():
        print(f"check_links: {site} is not a built site (no index.html): run `mkdocs build --strict` first",
              file=sys.stderr)
        return 2
    problems = broken_links(site)
    for problem in problems:
        print(problem)
    pages = sum(1 for _ in site.rglob("*.html"))
    if problems:
        print(f"check_links: {len(problems)} broken internal link(s) or image(s) in {site}", file=sys.stderr)
        return 1
    print(f"check_links: every internal link and image of {pages} pages resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
