"""edgeemo: real-time, explainable emotion recognition from face-mesh landmarks.

The runtime package. It never imports TensorFlow or the ``offline`` package.
"""

from edgeemo.emotions import EMOTIONS, NEUTRAL

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "NEUTRAL", "__version__"]
