"""Reports of a run (``edgeemo report``): tables and figures from the run folder only.

Imports nothing: import the module you need (``offline.report.report``, ...).
"""
