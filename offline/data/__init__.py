"""Landmark data: the dataset file, landmark extraction from videos and images, importers of labelled
face data, subject-disjoint splits, the canonical face template, and morphed clips of real faces.

Imports nothing: import the module you need (``offline.data.dataset``, ...).
"""
