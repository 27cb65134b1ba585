"""SymDiff on QM9: the data, EDM's sample metrics and the VDM/EDM diffusion core.

- :mod:`~markovcat.experiments.symdiff.data`: QM9 from the CSV files of the ``qm9pack`` package,
  converted once to a padded tensor cache with EDM's 100k / 17,748 / 13,083 split; zero centre-of-mass helpers.
- :mod:`~markovcat.experiments.symdiff.metrics`: bonds from distance thresholds, atom and molecule
  stability, RDKit validity and uniqueness.
- :mod:`~markovcat.experiments.symdiff.diffusion`: the polynomial noise schedule, the forward
  process, the epsilon loss, the ancestral step and the terms of the variational bound.
- :mod:`~markovcat.experiments.symdiff.models`: the DiT over atoms, the recursive gamma's network,
  and the contenders SymDiff (``mc.symmetrise`` with the recursive gamma), SymDiff-H (Haar gamma),
  DiT and DiT-Aug.
- :mod:`~markovcat.experiments.symdiff.train`: one run (training, selection on the validation
  bound, the test bound, samples, the O(3) check) and its record; the ``cpu-small``, ``gpu-paper``,
  ``gpu-10min`` and ``smoke`` configurations.
- :mod:`~markovcat.experiments.symdiff.sample`: ancestral sampling, EDM's metrics on the samples,
  XYZ files.
- :mod:`~markovcat.experiments.symdiff.cli`: ``markovcat experiment symdiff``, ``symdiff-sample`` and
  ``symdiff-plot``.
- For a GPU: :mod:`~markovcat.experiments.symdiff.budget` (FLOPs, a CPU step, the estimated GPU
  budget), :mod:`~markovcat.experiments.symdiff.pace` (runs side by side in lockstep, stopped
  together by a time limit), :mod:`~markovcat.experiments.symdiff.devicecheck` (a device simulated
  on the CPU that refuses what a GPU refuses), :mod:`~markovcat.experiments.symdiff.chemistry`
  (validity and uniqueness from an XYZ file, for samples drawn without RDKit); the script
  ``experiments/symdiff/gpu.sh`` runs ``gpu-10min``.
- :mod:`~markovcat.experiments.symdiff.plot`: the figure (curves, a grid of generated molecules) and
  the table, from the records.

The optional packages (``qm9pack``, ``rdkit``) are imported only where they are used.
"""
