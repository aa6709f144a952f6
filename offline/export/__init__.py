"""Export: a trained run's models to ONNX and a model bundle the runtime loads without TensorFlow.

Imports nothing: import the module you need (``offline.export.export``, ...).
"""
