"""MkDocs hook: every entry of the built API reference has a description.

An entry is one ``doc-object`` block that mkdocstrings rendered (a module, class, function, method
or attribute, with its heading id such as ``markovcat.backends.torch.TorchGroup.mul``); its
description is the text of its own ``doc-contents`` (not that of the entries nested in it).  In
``on_post_build`` each entry of the ``api/`` pages whose description is empty is a warning, so
``mkdocs build --strict`` fails and names it.  ``python docs/_hooks/reference.py build/site`` prints
the same list and a count, without failing.
"""

from __future__ import annotations

import logging
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig

log = logging.getLogger("mkdocs.hooks.reference")
VOID = {"br", "img", "input", "meta", "link", "hr", "wbr", "source", "col", "area", "base", "embed"}


class _Entries(HTMLParser):
    """``{heading id: description text}`` for every ``doc-object`` of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str]] = []  # (tag, role): role "object", "contents" or ""
        self.objects: list[list[str]] = []  # per open doc-object: [heading id, description text...]
        self.in_contents: list[int] = []  # for each open doc-contents, the index of its object
        self.entries: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        role = ""
        if tag == "div" and "doc-object" in classes:
            role = "object"
            self.objects.append([""])
        elif tag == "div" and "doc-contents" in classes and self.objects:
            role = "contents"
            self.in_contents.append(len(self.objects) - 1)
        elif tag.startswith("h") and tag[1:].isdigit() and "doc-heading" in classes and self.objects:
            if not self.objects[-1][0]:
                self.objects[-1][0] = values.get("id") or ""
        self.stack.append((tag, role))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            open_tag, role = self.stack.pop()
            if role == "object":
                heading, *text = self.objects.pop()
                if heading:
                    self.entries[heading] = " ".join("".join(text).split())
            elif role == "contents":
                self.in_contents.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        # The text belongs to an object's own description when the innermost open doc-contents is that object's.
        if self.in_contents and self.in_contents[-1] == len(self.objects) - 1:
            self.objects[-1].append(data)


def entries(site: Path) -> dict[str, dict[str, str]]:
    """``{page: {entry id: its description}}`` for every page under ``site/api``."""
    out = {}
    for page in sorted((site / "api").rglob("*.html")):
        parser = _Entries()
        parser.feed(page.read_text(encoding="utf-8"))
        out[page.relative_to(site).as_posix()] = parser.entries
    return out


def undescribed(site: Path) -> list[str]:
    """``page: entry id`` for every entry of the API reference with no description."""
    return [f"{page}: {entry}" for page, found in entries(site).items() for entry, text in found.items() if not text]


def on_post_build(config: MkDocsConfig) -> None:
    for item in undescribed(Path(config["site_dir"])):
        log.warning("the API reference entry %s has no description", item)


if __name__ == "__main__":
    site = Path(sys.argv[1] if len(sys.argv) > 1 else "build/site")
    missing = undescribed(site)
    print("\n".join(missing))
    print(f"{len(missing)} of {sum(len(e) for e in entries(site).values())} entries have no description")
