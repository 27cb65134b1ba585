"""The PyTorch backend: compile diagrams to ``nn.Module`` s, with batched groups.

``from markovcat.backends import torch as mct`` gives :func:`compile`, :class:`Spec`,
:class:`Interpretation`, the groups :class:`Orthogonal`, :class:`Cyclic`,
:class:`Symmetric` and the gamma constructions :class:`HaarSampler`,
:class:`MomentCanonicaliser`, :class:`SortCanonicaliser`.  See :mod:`markovcat.backends.torch.compile`
(compiling), :mod:`markovcat.backends.torch.checks` (checks before compiling) and
:mod:`markovcat.backends.torch.groups` (groups).  It also re-exports the group library
(:mod:`~markovcat.backends.torch.matrix_groups`: ``GeneralLinear``, ``Translation``,
``Euclidean``, ``Product`` and matrix actions; :mod:`~markovcat.backends.torch.finite_groups`:
``Dihedral``, ``PermutationMatrices``, ``sequences``, ``graphs``, ``elements``) and the
gamma constructions (:mod:`~markovcat.backends.torch.frames`: deterministic canonicalisers and
frames; :mod:`~markovcat.backends.torch.gammas`: the ``Gamma`` bundles, as
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

from markovcat.backends.torch import gammas
from markovcat.backends.torch.checks import check_fusions, check_laws, dry_run, relative_error
from markovcat.backends.torch.compile import (
    CompiledDiagram,
    Gaussian,
    Interpretation,
    InterpretationError,
    Invariant,
    Spec,
    Trace,
    compile,
)
from markovcat.backends.torch.finite_groups import Dihedral, PermutationMatrices, elements, graphs, sequences
from markovcat.backends.torch.frames import (
    Centroid,
    Lexsort,
    LowerCholesky,
    MomentCanonicaliser,
    OrbitArgmax,
    PCACanonicaliser,
    PCAFrames,
    SortCanonicaliser,
    UniformFrame,
    UniformPCAFrame,
)
from markovcat.backends.torch.groups import (
    Cyclic,
    HaarSampler,
    LeftTranslation,
    Orthogonal,
    Symmetric,
    TorchAction,
    TorchGroup,
)
from markovcat.backends.torch.homomorphisms import TorchHomomorphism, diagonal
from markovcat.backends.torch.linalg import haar_orthogonal, orthonormalise, qr_positive
from markovcat.backends.torch.matrix_groups import (
    Euclidean,
    GeneralLinear,
    Product,
    Translation,
    conjugation,
    left_multiplication,
    right_transpose,
    vectors,
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
    "MomentCanonicaliser",
    "SortCanonicaliser",
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
    "PCACanonicaliser",
    "UniformPCAFrame",
    "orthonormalise",
    "qr_positive",
    "PCAFrames",
    "UniformFrame",
    "Centroid",
    "Lexsort",
    "OrbitArgmax",
    "LowerCholesky",
    "gammas",
]
