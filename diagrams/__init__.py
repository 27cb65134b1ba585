"""The gallery: the library's diagrams and proofs, built with markovcat.  Installed as ``markovcat.diagrams``.

One module per construction (:data:`MODULES`); each has ``figures() -> dict[str,
Diagram | Equation]`` and, where the rewriting engine ships them, ``proofs()``.
:func:`render_all` (or ``python -m markovcat.diagrams [OUT_DIR]``) draws every
figure as SVG and PNG into ``diagrams/figures/`` with an index ``README.md``.

Every figure is drawn as written (no box pruned or merged); actions are labelled
``act_<space>`` (``act_X``, drawn act with subscript X) throughout, as in the library.
"""

from __future__ import annotations

from .render import MODULES, Figure, all_figures, render_all

__all__ = ["MODULES", "Figure", "all_figures", "render_all"]
