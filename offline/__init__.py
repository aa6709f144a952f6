"""edgeemo's workstation half: data import, synthetic data, training, explanation, export.

Needs the ``offline`` extra (TensorFlow and friends). May import ``edgeemo``; never the other way round.
"""
