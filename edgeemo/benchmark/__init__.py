"""``edgeemo bench``: how fast the runtime is on this machine, recorded with the machine's description.

- ``classifier``: the six ONNX models per frame (batch 1, one thread) for each number of landmarks K and
  each architecture (T-EMO, R-EMO), on bundles built from the paper's hyperparameters.
- ``end_to_end``: ``edgeemo serve``'s per-frame work on a real face video, stage by stage, and MediaPipe's
  face mesh alone on the same frames as the floor.
- ``timing``: the timer (after a warm-up, every call timed with ``time.perf_counter`` until a time
  budget is spent, every time kept) and the machine's description.
- ``report``: JSON, Markdown and PNG files of the results.

Run on their own (``python -m edgeemo.benchmark.<name> [--out DIR]``, results in bench/results by default):

- ``multisource``: two camera streams in one ``serve`` process or one process each.
- ``ringbuffer``: the numba ring buffer's append + window per frame, against plain numpy.
- ``real_faces``: a bundle on the London dev faces (a checkout's photos; the morphing is offline code).

Building the models needs the offline extra (TensorFlow, tf2onnx); timing them needs only ONNX Runtime.
"""
