"""``edgeemo bench``: how fast the runtime is on this machine, recorded with the machine's description.

- ``classifier``: the six ONNX models per frame (batch 1, one thread) for each number of landmarks K and
  each architecture (T-EMO, R-EMO), on bundles built from the paper's hyperparameters.
- ``end_to_end``: ``edgeemo serve``'s per-frame work on a real face video, stage by stage, and MediaPipe's
  face mesh alone on the same frames as the floor.
- ``timing``: the timer (after a warm-up, every call timed with ``time.perf_counter`` until a time
  budget is spent, every time kept) and the machine's description.
- ``report``: JSON, Markdown and PNG files of the results.

Building the models needs the offline extra (TensorFlow, tf2onnx); timing them needs only ONNX Runtime.
"""
