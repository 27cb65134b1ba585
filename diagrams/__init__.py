"""The gallery: the seed's diagrams, built with markovcat.  Installed as ``markovcat.diagrams``."""
