"""Gammas: the ``C^G`` morphisms ``gamma : (X, a) -> (G, *)`` that symmetrisation is built from, in torch.

One concern per module:

* :mod:`~markovcat.backends.torch.gammas.gamma` - the one gamma type, :class:`Gamma`, and
  what it promises, :class:`Guarantee` (kinds in :data:`GUARANTEES`: ``exact``, ``in law``,
  ``assumed``);
* :mod:`~markovcat.backends.torch.gammas.networks` - the networks gammas are made of
  (:class:`GroupNet`, :class:`GramNet`, :class:`EquivariantVectors`, :class:`NoisySort`);
* :mod:`~markovcat.backends.torch.gammas.builders` - the library's gammas (:func:`from_haar`,
  :func:`canonical`, :func:`uniform_frame`, :func:`recursive`, :func:`noise_outsourced`, ...);
* :mod:`~markovcat.backends.torch.gammas.table` - the built-in gammas by name (:data:`NAMED`,
  :func:`named`) and :func:`as_gamma`, the one conversion of a name, a Gamma or a function;
* :mod:`~markovcat.backends.torch.gammas.recognise` - what the builders need to know of a group
  or action (:func:`project`, :func:`raw_size`, :func:`enumerable`, :func:`orthogonal_layout`).

``gamma.compile()`` gives a module, ``gamma.check()`` tests the guarantee numerically
(:func:`~markovcat.backends.torch.equivariance.check_equivariance`).  A user's function
becomes a gamma with :meth:`Gamma.from_callable` (or :func:`as_gamma`).  Which gamma serves
which group, what each guarantees, its cost and where it fails: the guide's table
(``docs/how-to/gammas.md``, "Choose a gamma").
"""


from markovcat.backends.torch.gammas.builders import (
    canonical,
    canonical_random_ties,
    euclidean,
    from_haar,
    general_linear,
    noise_outsourced,
    noisy_sort,
    recursive,
    uniform_frame,
)
from markovcat.backends.torch.gammas.gamma import GUARANTEES, Gamma, Guarantee, diagram_space, vouched
from markovcat.backends.torch.gammas.networks import EquivariantVectors, GramNet, GroupNet, MLPFrame, NoisySort
from markovcat.backends.torch.gammas.recognise import enumerable, orthogonal_layout, project, raw_size
from markovcat.backends.torch.gammas.table import NAMED, as_gamma, named
from markovcat.backends.torch.linalg import orthonormalise

__all__ = ["Gamma", "Guarantee", "GUARANTEES", "as_gamma", "NAMED", "named", "diagram_space", "canonical",
           "canonical_random_ties", "from_haar", "uniform_frame", "noise_outsourced", "recursive", "general_linear",
           "euclidean", "noisy_sort", "EquivariantVectors", "GramNet", "GroupNet", "MLPFrame", "NoisySort",
           "orthonormalise", "project", "raw_size", "enumerable", "orthogonal_layout", "vouched"]


from markovcat.backends.torch.gammas.builders import old_names  # noqa: E402

__getattr__ = old_names(__name__)  # haar_gamma, deprecated
