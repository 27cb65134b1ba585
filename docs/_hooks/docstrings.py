"""A griffe extension: render the project's docstrings (reST roles, doctests) as Markdown.

The docstrings use reST cross-reference roles (``:func:`~markovcat.sym```), double-backtick
literals and ``>>>`` doctest examples.  This extension rewrites them when griffe loads each
object: a role becomes inline code of its (short) target, a double-backtick literal a single-
backtick one, and each run of doctest lines a fenced ``pycon`` block.  It changes only what the
API pages show, never the source.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc|const|py:\w+):`(~?)([^`<]*?)(?:\s*<([^>]+)>)?`")
LITERAL = re.compile(r"``(.+?)``")


def _role(match: re.Match[str]) -> str:
    short, text, target = match.group(1), match.group(2).strip(), match.group(3)
    name = text or (target or "")
    if short or name.startswith("."):
        name = name.lstrip(".").rsplit(".", 1)[-1]
    return f"`{name}`"


def markdown(text: str) -> str:
    """``text`` (a docstring) with roles, double-backtick literals and doctests made Markdown."""
    lines = text.splitlines()
    out: list[str] = []
    i, fenced = 0, False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.lstrip().startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            block = []
            while i < len(lines) and lines[i].strip() and lines[i].startswith(indent):
                block.append(lines[i][len(indent):])
                i += 1
            if out and out[-1].strip():
                out.append("")
            out += [f"{indent}```pycon", *(indent + b for b in block), f"{indent}```", ""]
            continue
        if not fenced and not line.startswith("    "):  # an indented line is a literal block: left as is
            line = LITERAL.sub(r"`\1`", ROLE.sub(_role, line))
            if line.endswith("::"):
                line = line[:-1]  # reST's "text::" introducing a literal block
        out.append(line)
        i += 1
    return "\n".join(out)


class ReSTToMarkdown(griffe.Extension):
    """Rewrite every loaded docstring with :func:`markdown`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
