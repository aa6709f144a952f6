"""Training: T-EMO and R-EMO models, settings, windows and labels, grid search, the SVM baselines, metrics,
the job executor (in process or on Ray) and the run folder every later step reads.

Imports nothing: import the module you need (``offline.training.train``, ...).
"""
