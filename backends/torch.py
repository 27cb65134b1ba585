"""The PyTorch backend: compile diagrams to ``nn.Module`` s, with batched groups.

``from markovcat.backends import torch as mct`` gives :func:`compile`, :class:`Spec`,
:class:`Interpretation`, the groups :class:`Orthogonal`, :class:`Cyclic`,
:class:`Symmetric` and the gamma constructions :class:`HaarSampler`,
:class:`PointCloudFrame`, :class:`SortFrame`.  See :mod:`markovcat.backends.torch_compile`
and :mod:`markovcat.backends.torch_groups`.
"""

from markovcat.backends.torch_compile import (
    CompiledDiagram,
    Gaussian,
    Interpretation,
    InterpretationError,
    Invariant,
    Spec,
    Trace,
    check_laws,
    compile,
    dry_run,
    relative_error,
)
from markovcat.backends.torch_groups import (
    Cyclic,
    HaarSampler,
    LeftTranslation,
    Orthogonal,
    PointCloudFrame,
    SortFrame,
    Symmetric,
    TorchAction,
    TorchGroup,
    haar_orthogonal,
)

__all__ = [
    "CompiledDiagram",
    "Gaussian",
    "Interpretation",
    "InterpretationError",
    "Spec",
    "Trace",
    "check_laws",
    "compile",
    "dry_run",
    "relative_error",
    "Cyclic",
    "HaarSampler",
    "Invariant",
    "LeftTranslation",
    "Orthogonal",
    "PointCloudFrame",
    "SortFrame",
    "Symmetric",
    "TorchAction",
    "TorchGroup",
    "haar_orthogonal",
]
