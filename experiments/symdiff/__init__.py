"""SymDiff on QM9: the data, EDM's sample metrics and the VDM/EDM diffusion core.

- :mod:`~markovcat.experiments.symdiff.data`: QM9 from the CSV files of the ``qm9pack`` package,
  converted once to a padded tensor cache with EDM's 100k / 17,748 / 13,083 split; zero centre-of-mass helpers.
- :mod:`~markovcat.experiments.symdiff.metrics`: bonds from distance thresholds, atom and molecule
  stability, RDKit validity and uniqueness.
- :mod:`~markovcat.experiments.symdiff.diffusion`: the polynomial noise schedule, the forward
  process, the epsilon loss, the ancestral step and the terms of the variational bound.

The optional packages (``qm9pack``, ``rdkit``) are imported only where they are used.
"""
