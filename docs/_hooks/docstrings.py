"""A griffe extension: render the project's docstrings (reST roles, doctests) as Markdown.

The docstrings use reST cross-reference roles (``:func:`~markovcat.sym```), double-backtick
literals and ``>>>`` doctest examples.  This extension rewrites them once griffe has loaded the
package: a role whose target is an object of ``markovcat`` becomes a cross-reference to it
(``[`sym`][markovcat.symmetrisation.sym]``, resolved by mkdocs-autorefs, which warns, and so fails
``mkdocs build --strict``, when the target has no entry in the site), a role naming anything else
(``torch.nn.Module``) inline code; a double-backtick literal becomes a single-backtick one, and each
run of doctest lines a fenced ``pycon`` block.  A role's target is looked up as Python would from
the docstring's object: its own members, then its class's, its module's and the module's imports.
It changes only what the API pages show, never the source.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterator
from typing import Any

import griffe

import markovcat

ROLE = re.compile(r":(func|class|meth|mod|data|attr|obj|exc|const|py:\w+):`(~?)([^`<]*?)(?:\s*<([^>]+)>)?`")
LITERAL = re.compile(r"``(.+?)``")
#: The names ``markovcat`` forwards to the torch backend (its ``__getattr__``); they are documented there.
FORWARDED = frozenset(markovcat._FORWARDED)


def _role(match: re.Match[str], link: Callable[[str], str | None] | None) -> str:
    kind, short, text, target = match.group(1), match.group(2), match.group(3).strip(), match.group(4)
    name = text or (target or "")
    path = link(name.lstrip(".")) if link is not None else None
    if kind == "mod":  # a module is shown by its full name (``compile`` the module is not ``compile`` the function)
        return f"`{name.lstrip('.')}`"
    if short or name.startswith("."):
        name = name.lstrip(".").rsplit(".", 1)[-1]
    return f"[`{name}`][{path}]" if path else f"`{name}`"


def markdown(text: str, link: Callable[[str], str | None] | None = None) -> str:
    """``text`` (a docstring) with roles, double-backtick literals and doctests made Markdown.

    ``link`` maps a role's target to the full path of the object to link to (``None``: inline code).
    """
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
            line = LITERAL.sub(r"`\1`", ROLE.sub(lambda m: _role(m, link), line))
            if line.endswith("::"):
                line = line[:-1]  # reST's "text::" introducing a literal block
        out.append(line)
        i += 1
    return "\n".join(out)


def _find(obj: griffe.Object, name: str) -> griffe.Object | griffe.Alias | None:
    """The object ``name`` means in ``obj``'s docstring (a full path, or a name in scope), if loaded."""
    first, _, rest = name.partition(".")
    paths = [name]
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            paths.append(scope.resolve(first) + (f".{rest}" if rest else ""))
            break
        except griffe.NameResolutionError:
            scope = scope.parent
    for path in paths:
        try:
            found = obj.modules_collection[path]
        except (KeyError, ValueError, AttributeError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue
        return found  # type: ignore[no-any-return]
    return None


def linker(obj: griffe.Object) -> Callable[[str], str | None]:
    """A ``link`` for :func:`markdown`: a name in ``obj``'s docstring -> what to cross-reference.

    A markovcat object: its full path.  A module, or an object outside markovcat (``torch.nn.Module``):
    ``None`` (inline code; the reference documents public names, not the module layout).  A name that
    means nothing in scope: the name itself, which autorefs cannot resolve, so the build fails where
    that docstring is shown.
    """

    def link(name: str) -> str | None:
        if name.startswith("markovcat.") and name.removeprefix("markovcat.") in FORWARDED:
            return f"markovcat.backends.torch.{name.removeprefix('markovcat.')}"
        found = _find(obj, name)
        if found is None:
            first = name.partition(".")[0]
            try:
                outside = not obj.resolve(first).startswith("markovcat")
            except griffe.NameResolutionError:
                # another package: a dotted name, or the name of an installed module
                outside = first != "markovcat" and ("." in name or importlib.util.find_spec(first) is not None)
            return None if outside else name
        try:
            target = found.final_target if isinstance(found, griffe.Alias) else found
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return name
        if target.is_module or not (target.path == "markovcat" or target.path.startswith("markovcat.")):
            return None
        short = target.path.removeprefix("markovcat.")
        if short in FORWARDED:  # looked up in the torch backend on first use, and documented there
            return f"markovcat.backends.torch.{short}"
        return target.path

    return link


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not isinstance(member, griffe.Alias):
            yield from _objects(member)


def comment_docstring(obj: griffe.Object) -> str | None:
    """The ``#:`` comment lines just above an attribute's assignment (Sphinx's attribute comments), or the
    comment that ends the assignment's line (``validate: bool = True  # whether forward checks its inputs``)."""
    if not obj.is_attribute or obj.lineno is None or isinstance(obj.filepath, list):
        return None
    try:
        lines = obj.lines_collection[obj.filepath]
    except KeyError:
        return None
    found: list[str] = []
    line = lines[obj.lineno - 1] if obj.lineno - 1 < len(lines) else ""
    if obj.endlineno == obj.lineno and "  # " in line:
        code, _, comment = line.partition("  # ")
        if code.count('"') % 2 == 0 and code.count("'") % 2 == 0 and comment.strip():  # not inside a string
            comment = comment.strip()
            return comment[0].upper() + comment[1:] + ("" if comment.endswith(".") else ".")
    at = obj.lineno - 2
    while at >= 0 and lines[at].strip().startswith("#:"):
        found.insert(0, lines[at].strip()[2:].strip())
        at -= 1
    return " ".join(found) or None


def inherited_docstring(obj: griffe.Object) -> griffe.Docstring | None:
    """The docstring of the member of the same name in the nearest base class that has one (a protocol's)."""
    parent = obj.parent
    if not isinstance(parent, griffe.Class):
        return None
    try:
        bases = parent.mro()
    except (ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    for base in bases:
        member = base.members.get(obj.name)
        if member is not None:
            try:
                if member.docstring is not None:
                    return member.docstring
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue
    return None


CLAUSE = re.compile(r"(?<=[.;:])\s+(?=[A-Z`(*])|\n\s*\n|\n\s*[*-]\s|(?<=\.)\s+(?=`)")


def field_docstring(obj: griffe.Object) -> str | None:
    """For a class attribute with no docstring, the clause of its class's docstring that describes it.

    A clause is a sentence, or a part of one between semicolons (a list item counts as one); it
    describes the field when it opens with the field's name as code (`` `name` maps ...``,
    `` `support` is ...``).  ``None`` when none does.
    """
    parent = obj.parent
    if not obj.is_attribute or not isinstance(parent, griffe.Class) or parent.docstring is None:
        return None
    mark = f"`{obj.name}`"
    for clause in CLAUSE.split(parent.docstring.value):
        for part in clause.split("; "):
            if part.strip().startswith(mark) and "```" not in part:
                text = " ".join(part.split()).strip(" ,;")
                return text if text.endswith((".", ")", ":")) else text + "."
    return None


class ReSTToMarkdown(griffe.Extension):
    """Rewrite every docstring of the loaded package with :func:`markdown`, roles linked by :func:`linker`.

    An object with no docstring takes its ``#:`` comment (an attribute), else the docstring of the
    member it overrides (a method of a protocol such as ``TorchGroup.mul``).
    """

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        objects = list(_objects(pkg))
        for obj in objects:
            if obj.docstring is None and (comment := comment_docstring(obj)) is not None:
                obj.docstring = griffe.Docstring(comment, parent=obj)
        for obj in objects:
            if obj.docstring is not None:
                obj.docstring.value = markdown(obj.docstring.value, linker(obj))
        for obj in objects:  # after the rewrite, so that a docstring is rewritten once, in its own scope
            if obj.docstring is None and (inherited := inherited_docstring(obj)) is not None:
                obj.docstring = griffe.Docstring(inherited.value, parent=obj)
            elif obj.docstring is None and (clause := field_docstring(obj)) is not None:
                obj.docstring = griffe.Docstring(clause, parent=obj)
