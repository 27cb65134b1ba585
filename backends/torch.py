"""The PyTorch backend: compile diagrams to ``nn.Module`` s, with batched groups.

``from markovcat.backends import torch as mct`` gives :func:`compile`, :class:`Spec`,
:class:`Interpretation`, the groups :class:`Orthogonal`, :class:`Cyclic`,
:class:`Symmetric` and the gamma constructions :class:`HaarSampler`,
:class:`PointCloudFrame`, :class:`SortFrame`.  See :mod:`markovcat.backends.torch_compile`
(compiling), :mod:`markovcat.backends.torch_checks` (checks before compiling) and
:mod:`markovcat.backends.torch_groups` (groups).  It also re-exports the group library
(:mod:`~markovcat.backends.groups_matrix`: ``GeneralLinear``, ``Translation``,
``Euclidean``, ``Product`` and matrix actions; :mod:`~markovcat.backends.groups_discrete`:
``Dihedral``, ``PermutationMatrices``, ``sequences``, ``graphs``, ``elements``) and the
gamma constructions (:mod:`~markovcat.backends.gammas`: deterministic canonicalisers and
frames; :mod:`~markovcat.backends.gammas_learned`: the ``Gamma`` bundles, as
``mct.gammas``).

>>> import torch
>>> from markovcat import Box, Ty
>>> X = Ty("X")
>>> double = Box("double", X, X, deterministic=True)
>>> model = compile(double >> double, Interpretation({double: lambda x: 2 * x}, {X: Spec((3,))}))
>>> model(torch.ones(1, 3))
tensor([[4., 4., 4.]])
>>> print(model.code, end="")
def forward(self, x0, *, generator=None):
    w1 = f_double(x0)  # double
    w2 = f_double(w1)  # double
    return w2
"""

from markovcat.backends import gammas_learned as gammas
from markovcat.backends.gammas import (
    Centroid,
    Lexsort,
    LowerCholesky,
    OrbitArgmax,
    PCAFrame,
    PCAFrames,
    UniformFrame,
)
from markovcat.backends.groups_discrete import Dihedral, PermutationMatrices, elements, graphs, sequences
from markovcat.backends.groups_generic import TorchHomomorphism, diagonal
from markovcat.backends.groups_matrix import (
    Euclidean,
    GeneralLinear,
    Product,
    Translation,
    conjugation,
    left_multiplication,
    right_transpose,
    vectors,
)
from markovcat.backends.torch_checks import check_fusions, check_laws, dry_run, relative_error
from markovcat.backends.torch_compile import (
    CompiledDiagram,
    Gaussian,
    Interpretation,
    InterpretationError,
    Invariant,
    Spec,
    Trace,
    compile,
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
    "check_fusions",
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
    "TorchHomomorphism",
    "diagonal",
    "GeneralLinear",
    "Translation",
    "Euclidean",
    "Product",
    "left_multiplication",
    "conjugation",
    "right_transpose",
    "vectors",
    "Dihedral",
    "PermutationMatrices",
    "sequences",
    "graphs",
    "elements",
    "PCAFrame",
    "PCAFrames",
    "UniformFrame",
    "Centroid",
    "Lexsort",
    "OrbitArgmax",
    "LowerCholesky",
    "gammas",
]
