"""Face-mesh landmarks of one RGB image: MediaPipe's 468-point face mesh, in pixels.

The same class serves the offline importers and the live ``serve`` loop. MediaPipe is imported when a
landmarker is made, not when this module is: importing it takes about 5 s and loads TensorFlow when that is
installed, which the CLI must not pay at start-up and the runtime does not need.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from types import TracebackType

import numpy as np
from numba import boolean, float32, float64, njit, types

from edgeemo.face import N_LANDMARKS

# MediaPipe hands each face's landmarks over as a serialised NormalizedLandmarkList; reading its 468 messages
# field by field in Python costs about 0.3 ms a frame (a tenth of the face mesh itself). Each NormalizedLandmark
# with x, y and z set (face mesh sets no visibility or presence) is 17 bytes on the wire: field 1 (0x0a) of 15
# bytes (0x0f), then x, y, z as tagged little-endian float32 (0x0d, 0x15, 0x1d). One compiled pass reads that:
# right after the face mesh every numpy call runs from cold caches, and the nine it took cost 80 us a frame.
_RECORD = 17


@njit(boolean(types.Array(types.uint8, 1, "C", readonly=True), float64, float64, float32[:, ::1]), cache=True)
def _read_wire(raw, width, height, out):
    """out[n] = (x * width, y * height) of landmark n, if ``raw`` is len(out) landmarks in the 17-byte encoding
    above; else False (out is then unspecified)."""
    if raw.shape[0] != out.shape[0] * _RECORD:
        return False
    scale_x, scale_y = np.float32(width), np.float32(height)  # float32 products, as numpy's
    for n in range(out.shape[0]):
        o = n * _RECORD
        if raw[o] != 0x0A or raw[o + 1] != 0x0F or raw[o + 2] != 0x0D or raw[o + 7] != 0x15 or raw[o + 12] != 0x1D:
            return False
        out[n, 0] = raw[o + 3:o + 7].view(np.float32)[0] * scale_x
        out[n, 1] = raw[o + 8:o + 12].view(np.float32)[0] * scale_y
    return True


def landmarks_to_pixels(serialized: bytes, width: int, height: int) -> np.ndarray:
    """float32 [468, 2] pixel coordinates (x * width, y * height) of a serialised NormalizedLandmarkList."""
    points = np.empty((N_LANDMARKS, 2), dtype=np.float32)
    if _read_wire(np.frombuffer(serialized, dtype=np.uint8), width, height, points):
        return points
    # another encoding (e.g. visibility set): read the messages one by one
    from mediapipe.framework.formats.landmark_pb2 import NormalizedLandmarkList

    landmarks = NormalizedLandmarkList.FromString(serialized).landmark
    xy = tuple(np.array([getattr(p, c) for p in landmarks], dtype=np.float32) for c in "xy")
    points = np.empty((len(xy[0]), 2), dtype=np.float32)
    np.multiply(xy[0], width, out=points[:, 0])
    np.multiply(xy[1], height, out=points[:, 1])
    return points


def graph_threads(streams: int = 1) -> int:
    """Worker threads for each of ``streams`` face meshes in this process: the CPUs it may run on
    (``os.sched_getaffinity``: a process held to one core gets one), shared among them, at least one.

    mediapipe's own default is a pool of one thread per core of the machine for every graph. A pool helps one
    face mesh on otherwise idle cores (2026-12-06, a 960x960 frame on 2 cores, face mesh alone: 4.05 against
    4.37 ms with one face, 7.03 against 8.74 ms with four, medians of three alternations), and hurts where the
    cores are shared: held to one core, pipeline p50 2.84 -> 2.77 ms with one thread; ten 30 fps streams in one
    process, five paired runs: 10, 217, 10, 1, 0 frames dropped with pools of two, 1, 7, 0, 4, 0 with one
    thread each, at the same latency (docs/streaming.md#concurrent-streams)."""
    if streams < 1:
        raise ValueError(f"graph_threads: streams must be >= 1, got {streams}")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus // streams)


def _face_mesh(static: bool, max_faces: int, min_detection_confidence: float, min_tracking_confidence: float,
               threads: int):
    """mediapipe's ``FaceMesh`` (468 landmarks, no iris refinement) with its graph's calculators run on ``threads``
    threads: ``FaceMesh.__init__`` with the graph's default executor set (mediapipe is pinned, 0.10.21, and
    tests/test_landmarker.py checks the faces against ``FaceMesh``'s)."""
    from mediapipe.framework import calculator_pb2, thread_pool_executor_pb2
    from mediapipe.python.solution_base import SolutionBase
    from mediapipe.python.solutions import face_mesh

    mediapipe_root = Path(face_mesh.__file__).parents[3]  # where FaceMesh's graph path starts
    config = calculator_pb2.CalculatorGraphConfig.FromString(
        (mediapipe_root / face_mesh._BINARYPB_FILE_PATH).read_bytes())
    executor = config.executor.add(type="ThreadPoolExecutor")
    executor.options.Extensions[thread_pool_executor_pb2.ThreadPoolExecutorOptions.ext].num_threads = threads
    mesh = face_mesh.FaceMesh.__new__(face_mesh.FaceMesh)
    SolutionBase.__init__(
        mesh, graph_config=config,
        side_inputs={"num_faces": max_faces, "with_attention": False, "use_prev_landmarks": not static},
        calculator_params={
            "facedetectionshortrangecpu__facedetectionshortrange__facedetection__TensorsToDetectionsCalculator"
            ".min_score_thresh": min_detection_confidence,
            "facelandmarkcpu__ThresholdingCalculator.threshold": min_tracking_confidence,
        },
        outputs=["multi_face_landmarks"])
    return mesh


class FaceMeshLandmarker:
    """MediaPipe face mesh for up to ``max_faces`` faces (default one), 468 landmarks (no iris refinement).

    ``static=False`` is tracking mode, for the frames of one video or camera: after the first detection the
    mesh follows the face from frame to frame (faster and steadier). ``static=True`` detects the face afresh
    in every image, for unrelated stills. Call ``reset()`` between two videos so that one does not seed the
    other's tracking. Not thread-safe: make one per thread. Use it as a context manager, or call ``close()``.
    """

    def __init__(self, static: bool = False, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, max_faces: int = 1, threads: int | None = None) -> None:
        """``threads``: the graph's worker threads (None: ``graph_threads()``, every CPU this process may use)."""
        # lazy: see the module docstring
        from mediapipe.python import packet_creator
        from mediapipe.python._framework_bindings import _packet_getter
        from mediapipe.python._framework_bindings.image_frame import ImageFormat

        self.max_faces = max_faces
        self._mesh = _face_mesh(static, max_faces, min_detection_confidence, min_tracking_confidence,
                                graph_threads() if threads is None else threads)
        # A copy: passing a read-only array by reference made the call 0.2 ms slower (docs/streaming.md).
        self._image_packet = functools.partial(packet_creator.create_image, image_format=ImageFormat.SRGB)
        self._serialized = _packet_getter._get_serialized_proto_list

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        """float32 [468, 2] pixel coordinates (x right, y down) of the face in ``rgb``, or None if there is none.

        ``rgb`` is uint8 [height, width, 3] in RGB order. Converting OpenCV's BGR frames is the caller's job,
        done where frames are read: only the reader knows its source's channel order (OpenCV gives BGR,
        scikit-image, PIL and picamera2 give RGB), so sources that are RGB already pay nothing.
        """
        faces = self._run(rgb)
        return landmarks_to_pixels(faces[0], rgb.shape[1], rgb.shape[0]) if faces else None

    def detect_all(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Every face in ``rgb`` (at most ``max_faces``), each float32 [468, 2] in pixels, as ``detect`` gives one."""
        height, width = rgb.shape[:2]
        return [landmarks_to_pixels(face, width, height) for face in self._run(rgb)]

    def _run(self, rgb: np.ndarray) -> list[bytes]:
        """Each face's landmark list, serialised: what ``FaceMesh.process`` runs, without the result it builds.

        ``process`` (mediapipe's SolutionBase) builds a namedtuple class with ``eval`` on every call and parses
        each face's 468 landmarks into protobuf objects, which ``landmarks_to_pixels`` would serialise again:
        0.1 to 0.15 ms a frame, 5 % of the face mesh, much of it holding the GIL. This feeds the same graph the
        same packet and reads the landmark lists' bytes. It reaches into SolutionBase, so mediapipe is pinned
        (0.10.21), and tests/test_landmarker.py checks it against ``process`` on real faces.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an RGB image [height, width, 3], got shape {rgb.shape}")
        mesh = self._mesh
        mesh._graph_outputs.clear()
        mesh._simulated_timestamp += 33333  # as process(): a 30 fps video's timestamps, in microseconds
        mesh._graph.add_packet_to_input_stream(
            stream="image", packet=self._image_packet(rgb).at(mesh._simulated_timestamp))
        mesh._graph.wait_until_idle()
        packet = mesh._graph_outputs.get("multi_face_landmarks")
        return [] if packet is None or packet.is_empty() else self._serialized(packet)

    def reset(self) -> None:
        """Forget the tracked face: the next frame starts a new video."""
        self._mesh.reset()

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> "FaceMeshLandmarker":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
