"""markovcat: neural-network symmetrisation as string diagrams in Markov categories.

The core language (this package) is the free Markov category: :class:`Ty`,
:class:`Box`, :func:`Copy`, :func:`Discard`, :func:`Swap`, :func:`Id`, ``>>`` and
``@``, the :func:`program` syntax, and decided equality (:func:`equal`,
:func:`normal_form`, :func:`explain`).  Interpretations live in
``markovcat.backends`` and the gallery of the seed's diagrams in
``markovcat.diagrams``.
"""

from markovcat.equation import Equation
from markovcat.markov import NormalForm, NotEqual, assert_equal, canonical, equal, explain, normal_form
from markovcat.program import Wire, program
from markovcat.syntax import Box, Copy, Diagram, Discard, Generator, Id, Node, Swap, Ty, TypeMismatch

__version__ = "0.1.0"

__all__ = [
    "Ty",
    "Box",
    "Generator",
    "Node",
    "Diagram",
    "Id",
    "Copy",
    "Discard",
    "Swap",
    "TypeMismatch",
    "program",
    "Wire",
    "equal",
    "explain",
    "normal_form",
    "canonical",
    "NormalForm",
    "assert_equal",
    "NotEqual",
    "Equation",
]
