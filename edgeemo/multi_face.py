"""Several faces per frame, at the cost of one while only one is in view.

MediaPipe's face mesh runs its face detector on every frame on which it follows fewer faces than its
``max_num_faces``: asked for up to 4 with one person in view, it detects on every frame (3.6 ms a frame on
a 480x480 frame here, against 2.2 ms for ``max_num_faces=1``; see docs/multi-face.md). So while at most one
face is in view this follows it with a one-face mesh, and every ``probe_every``-th frame looks for more
with MediaPipe's short-range face detector (the BlazeFace model the mesh itself detects with, 1.6 ms);
once that sees two faces it hands over to a mesh for ``max_faces``, kept until it has seen at most one
face for ``settle_frames`` frames in a row. A second person is noticed within ``probe_every`` frames, and at
once when the one-face mesh picks up a face afresh (which may be any of those in view).
"""

from __future__ import annotations

from types import TracebackType

import cv2
import numpy as np

from edgeemo.landmarker import FaceMeshLandmarker

# A second at 30 frames/s: under 0.1 ms a frame on average for the probe, and a newcomer is noticed within
# about the second its window takes to fill anyway.
PROBE_EVERY = 30
SETTLE_FRAMES = 30  # a second of at most one face before going back to the one-face mesh


class MultiFaceLandmarker:
    """Face meshes of up to ``max_faces`` faces of one video or camera, in pixels (``detect_all``).

    Not thread-safe: make one per stream. Use it as a context manager, or call ``close()``.
    """

    def __init__(self, max_faces: int = 4, probe_every: int = PROBE_EVERY, settle_frames: int = SETTLE_FRAMES,
                 min_detection_confidence: float = 0.5, threads: int | None = None) -> None:
        """``threads``: each face mesh's graph threads (edgeemo.landmarker.graph_threads; None: its default)."""
        self.max_faces, self.probe_every, self.settle_frames = max_faces, probe_every, settle_frames
        self._single = FaceMeshLandmarker(static=False, min_detection_confidence=min_detection_confidence,
                                          threads=threads)
        self._multi = self._detector = None
        if max_faces > 1:
            from mediapipe.python.solutions.face_detection import FaceDetection  # lazy, as in edgeemo.landmarker

            self._multi = FaceMeshLandmarker(static=False, min_detection_confidence=min_detection_confidence,
                                             max_faces=max_faces, threads=threads)
            self._detector = FaceDetection(model_selection=0, min_detection_confidence=min_detection_confidence)
        self.many = False  # whether the max_faces mesh is in use
        self._frames = 0
        self._few = 0  # frames in a row on which the max_faces mesh saw at most one face
        self._last_centre: np.ndarray | None = None  # of the one-face mesh's face in the last frame

    def detect_all(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Every face in ``rgb`` (uint8 RGB), each float32 [468, 2] in pixels, at most ``max_faces``."""
        if self.many:
            faces = self._multi.detect_all(rgb)
            self._few = self._few + 1 if len(faces) <= 1 else 0
            if self._few >= self.settle_frames:
                self.many, self._last_centre = False, None
                self._single.reset()  # its last face is long stale: detect afresh
            return faces
        faces = self._single.detect_all(rgb)
        self._frames += 1
        if self._multi is None:  # --max-faces 1
            return faces
        if len(faces) != 1:  # none: the one-face mesh has just run the detector itself, and found none
            self._last_centre = None
            return faces
        x, y, width, height = cv2.boundingRect(faces[0])  # numpy's min and max cost 20 times more here
        centre = np.array([x + width / 2, y + height / 2])
        # A face where none was, or elsewhere than the last frame's: the mesh has just picked one of the faces
        # in view (after a reset, or having lost the last): look for others now, not a probe's period later.
        jumped = self._last_centre is None or float(np.linalg.norm(centre - self._last_centre)) > 0.5 * width
        self._last_centre = centre
        if jumped or self._frames % self.probe_every == 0:
            found = self._detector.process(rgb).detections
            if found and len(found) > 1:
                self.many, self._few = True, 0
                self._multi.reset()
                faces = self._multi.detect_all(rgb)
        return faces

    def reset(self) -> None:
        """Forget the faces followed: the next frame starts a new video."""
        self._single.reset()
        if self._multi is not None:
            self._multi.reset()
        self.many, self._frames, self._few, self._last_centre = False, 0, 0, None

    def close(self) -> None:
        self._single.close()
        if self._multi is not None:
            self._multi.close()
            self._detector.close()
            self._multi = self._detector = None

    def __enter__(self) -> MultiFaceLandmarker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
