"""Interpretations of diagrams (functors out of the free Markov category).

Installed as ``markovcat.backends``.
"""
