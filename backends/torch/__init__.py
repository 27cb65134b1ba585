"""The PyTorch backend (Stoch): compile diagrams to ``nn.Module`` s, with batched groups, gammas and procedures.

``from markovcat.backends import torch as mct``.  One concern per submodule:

* :mod:`~markovcat.backends.torch.interpretation` - :class:`Spec` (what a type means),
  :class:`Interpretation` (what the boxes mean), :class:`Gaussian` (the one noise sampler),
  :class:`GroupActions` (the group and actions a compiled model carries);
* :mod:`~markovcat.backends.torch.compile` - :func:`compile` (a diagram or a ``C^G`` morphism and an
  :class:`Interpretation` to straight-line generated code), with the plan
  (:mod:`~markovcat.backends.torch.plan`), the generated code (:mod:`~markovcat.backends.torch.codegen`)
  and the input checks (:mod:`~markovcat.backends.torch.validation`) in their own modules;
* :mod:`~markovcat.backends.torch.checks` - the checks run before a model is returned (the dry run
  on a copy of the model, group and action axioms, fusions);
* :mod:`~markovcat.backends.torch.equivariance` - :func:`check_equivariance`, the numerical checker
  (deterministic, pathwise, two-sample), and what each verdict proves; the two-sample test and
  its power in :mod:`~markovcat.backends.torch.two_sample`;
* :mod:`~markovcat.backends.torch.linalg` - the one QR with a sign fix, the samplers, ``accepts``;
* :mod:`~markovcat.backends.torch.groups`, :mod:`~markovcat.backends.torch.matrix_groups`,
  :mod:`~markovcat.backends.torch.finite_groups`, :mod:`~markovcat.backends.torch.homomorphisms` -
  batched groups, their actions and homomorphisms;
* :mod:`~markovcat.backends.torch.frames` - deterministic canonicalisers and frames (those for
  permutations and finite groups in :mod:`~markovcat.backends.torch.sorting`, how they refuse
  degenerate input in :mod:`~markovcat.backends.torch.refusals`);
* :mod:`~markovcat.backends.torch.gammas` (a package) - the one gamma type, :class:`~.gammas.Gamma`,
  its guarantees, its networks, the builders and the named table (``mct.gammas``);
* :mod:`~markovcat.backends.torch.procedures` - the named procedures (:func:`symmetrise`,
  :func:`canonicalise`, :func:`frame_average`, ...) and :func:`check_model` (``check_equivariance`` with
  the symmetry a model carries).

>>> import torch
>>> from markovcat import Box, Ty
>>> X = Ty("X")
>>> double = Box("double", X, X, deterministic=True)
>>> model = compile(double >> double, Interpretation({double: lambda x: 2 * x}, {X: Spec((3,))}))
>>> model(torch.ones(1, 3))
tensor([[4., 4., 4.]])
>>> print(model.code.splitlines()[0])  # the generated forward: one line per box (see model.code)
def forward(self, x0, *, generator=None):
"""

import warnings
from typing import Any

from markovcat.backends.torch import checks, equivariance, frames, gammas, groups, linalg, procedures
from markovcat.backends.torch.checks import check_fusions, check_laws, dry_run, relative_error
from markovcat.backends.torch.compile import (
    CompiledDiagram,
    Gaussian,
    GroupActions,
    Interpretation,
    InterpretationError,
    Invariant,
    Spec,
    Trace,
    compile,
)
from markovcat.backends.torch.equivariance import EquivarianceReport, check_equivariance
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
from markovcat.backends.torch.gammas import Gamma, Guarantee, as_gamma
from markovcat.backends.torch.groups import (
    ByValue,
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
from markovcat.backends.torch.procedures import (
    canonicalise,
    check_model,
    frame_average,
    janossy,
    probabilistic_symmetrise,
    stochastic_symmetrise,
    symmetrise,
    symmetrise_along,
)

__all__ = [
    # submodules
    "checks",
    "equivariance",
    "frames",
    "gammas",
    "groups",
    "linalg",
    "procedures",
    # compiling and checking
    "compile",
    "Spec",
    "Interpretation",
    "GroupActions",
    "check_equivariance",
    "EquivarianceReport",
    "check_model",
    # gammas and procedures
    "Gamma",
    "Guarantee",
    "as_gamma",
    "symmetrise",
    "canonicalise",
    "frame_average",
    "probabilistic_symmetrise",
    "janossy",
    "stochastic_symmetrise",
    "symmetrise_along",
    # the rest of the toolbox
    "CompiledDiagram",
    "Gaussian",
    "InterpretationError",
    "Trace",
    "check_fusions",
    "check_laws",
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
    "ByValue",
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
]


#: Old names, kept for a while with a ``DeprecationWarning``: old name -> (the new name, what it is).
#: ``check`` stood beside the module ``checks``; ``Symmetry`` beside the group ``Symmetric``.
_DEPRECATED: dict[str, tuple[str, Any]] = {
    "check": ("check_model", check_model),
    "Symmetry": ("GroupActions", GroupActions),
}


def __getattr__(name: str) -> Any:
    """The old names of ``_DEPRECATED``, each with a ``DeprecationWarning`` naming its new name."""
    if name in _DEPRECATED:
        new, value = _DEPRECATED[name]
        warnings.warn(f"markovcat.backends.torch.{name} is deprecated: use {new}", DeprecationWarning, stacklevel=2)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
