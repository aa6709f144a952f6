"""Importers of labelled face data into the landmark dataset: ``ckplus`` and ``videos``.

Each has ``import_dataset(path, out, frames=16, cache=None) -> LandmarkDataset``.
"""
