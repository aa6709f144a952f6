"""Explanation and selection: Integrated Gradients, the global landmark ranking (``edgeemo explain``), its
fidelity to known truth, its figures, and retraining on the top K landmarks (``edgeemo select``).

Imports nothing: import the module you need (``offline.explain.explain``, ...).
"""
