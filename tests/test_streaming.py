"""The fused streaming pair and time-picked windows, on a real face video through real MediaPipe.

The video is the demo clip (London face 001, DeBruine & Jones 2017, CC BY 4.0: neutral -> smile, 30 fps).
Its frames go through ``edgeemo.serve.StreamProcessor`` as ``serve`` runs it, re-timed: 15, 30 and 60 fps
and 30 fps with every third frame dropped.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from edgeemo.bundle import MANIFEST, load_bundle, write_manifest
from edgeemo.classifier import EmotionClassifier
from edgeemo.compiled_head import HeadKernel
from edgeemo.errors import EdgeemoError
from edgeemo.fuse import fuse_bundle, real_face_windows, write_pair
from edgeemo.info import ABSOLUTE_BUNDLE, DEFAULT_BUNDLE
from edgeemo.metrics import Metrics
from edgeemo.serve import DEMO_CLIP, StreamProcessor
from edgeemo.sources import VideoFileSource
from edgeemo.sparse_encoder import SparseEncoder
from edgeemo.streaming import HEAD_TOLERANCE, SPARSE_TOLERANCE, StreamingClassifier, TimedWindow, make_classifier
from edgeemo.streaming_graphs import ENCODER_OUTPUT, HEAD_OUTPUT
from edgeemo.timebuffer import TimedBuffer
from tests.onnx_bundles import make_linear_bundle
from tests.serve_helpers import free_port

TOLERANCE = 1e-4
CLIP_FPS = 30.0


@pytest.fixture(scope="module")
def clip_frames() -> list[np.ndarray]:
    with VideoFileSource(DEMO_CLIP, pace=False) as source:
        frames = []
        while (item := source.read()) is not None:
            frames.append(item[0].copy())
    return frames


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(ABSOLUTE_BUNDLE)


def run_stream(bundle, classifier, frames_and_times) -> list[dict]:
    """Each frame through a StreamProcessor with real MediaPipe; one record per prediction published."""
    from edgeemo.landmarker import FaceMeshLandmarker
    from edgeemo.publisher import PredictionPublisher

    records = []
    with PredictionPublisher(f"tcp://127.0.0.1:{free_port()}") as publisher, \
            FaceMeshLandmarker(static=False) as landmarker:
        processor = StreamProcessor("test", bundle, classifier, landmarker, publisher,
                                    Metrics(CollectorRegistry()).stream("test"))
        for frame, at in frames_and_times:
            for payload in processor.process(frame, at, 0.0):  # one face in view: at most one prediction
                timed = processor.tracks[payload["face"]].path.timed
                records.append({"end": at, "label": payload["label"],
                                "scores": np.array(list(payload["scores"].values())),
                                "picked": None if timed is None else timed.picked.copy()})
    return records


def test_the_default_bundle_has_the_pair_and_serve_picks_it(bundle):
    assert bundle.streaming is not None and bundle.window_s == pytest.approx(1.0)
    assert isinstance(make_classifier(bundle), StreamingClassifier)
    assert isinstance(make_classifier(bundle, streaming=False), EmotionClassifier)


def test_pair_and_per_emotion_models_agree_on_real_face_windows(bundle):
    windows = real_face_windows(bundle.frames)  # all 50 London dev people, onsets, holds and offsets
    old, new = EmotionClassifier(bundle), StreamingClassifier(bundle)
    union = bundle.landmarks_union
    for window in windows:
        faces = window[:, union]
        expected = old.classify(np.ascontiguousarray(faces.transpose(0, 2, 1))).copy()
        np.testing.assert_allclose(new.classify(new.encode_frames(faces)), expected, atol=TOLERANCE, rtol=0)


def test_frames_are_encoded_by_the_compiled_encoder_as_onnx_runtime_encodes_them(bundle):
    for each in (bundle, load_bundle(DEFAULT_BUNDLE)):  # the uncalibrated and the calibrated encoder
        classifier, kernel = StreamingClassifier(each), SparseEncoder.load(each.streaming.encoder)
        union = each.landmarks_union
        faces = real_face_windows(each.frames)[:, :, union].reshape(-1, len(union), 2)[::3]
        expected = classifier.encode_frames(faces)  # batches: ONNX Runtime
        tolerance = SPARSE_TOLERANCE * np.abs(expected).max()
        np.testing.assert_allclose(np.stack([kernel(face) for face in faces]), expected, atol=tolerance, rtol=0)
        # Whichever encodes single frames (the faster, timed at load: not asserted here), it gives these encodings.
        np.testing.assert_allclose(np.stack([classifier.encode(face) for face in faces]), expected, atol=tolerance,
                                   rtol=0)
        # One kernel (or none) for every stream.
        assert StreamingClassifier(each).compiled_encoder is classifier.compiled_encoder


def with_output_scaled(bundle, tmp_path, graph, output: str, factor: float):
    """A copy of ``bundle`` whose ``graph`` (its encoder or head file) has one node more: its ``output`` times
    ``factor``. The initializers are the same: a compiled kernel reads those, not the new node."""
    import onnx
    from onnx import helper, numpy_helper

    copied = tmp_path / "bundle"
    shutil.copytree(bundle.path, copied)
    model = onnx.load(str(copied / graph.name))
    model.graph.node[-1].output[0] = "unscaled"
    model.graph.initializer.append(numpy_helper.from_array(np.array(factor, np.float32), "factor"))
    model.graph.node.append(helper.make_node("Mul", ["unscaled", "factor"], [output]))
    onnx.save(model, str(copied / graph.name))
    write_manifest(copied, json.loads((copied / MANIFEST).read_text()))  # its new SHA-256
    return load_bundle(copied)


def test_an_encoder_graph_the_kernel_does_not_reproduce_is_left_to_onnx_runtime(bundle, tmp_path, caplog):
    doubled = with_output_scaled(bundle, tmp_path, bundle.streaming.encoder, ENCODER_OUTPUT, 2.0)
    with caplog.at_level("WARNING", logger="edgeemo.streaming"):
        classifier = StreamingClassifier(doubled)
    assert classifier.compiled_encoder is None and "encoded by ONNX Runtime" in caplog.text
    face = real_face_windows(bundle.frames)[0, 0, bundle.landmarks_union]
    np.testing.assert_allclose(classifier.encode(face), 2 * StreamingClassifier(bundle).encode_frames(face[None])[0],
                               rtol=1e-6)
    assert SparseEncoder.load(bundle.streaming.head) is None  # not an encoder graph at all


def test_windows_are_classified_by_the_compiled_head_as_onnx_runtime_classifies_them(bundle):
    for each in (bundle, load_bundle(DEFAULT_BUNDLE)):  # the uncalibrated and the calibrated head
        classifier, kernel = StreamingClassifier(each), HeadKernel.load(each.streaming.head)
        windows = real_face_windows(each.frames)[:, :, each.landmarks_union]
        encodings = classifier.encode_frames(windows.reshape(-1, *windows.shape[2:])).reshape(
            len(windows), each.frames, -1)
        expected = classifier.classify_windows(encodings)  # batches: ONNX Runtime
        got = np.stack([kernel(window) for window in encodings])
        np.testing.assert_allclose(got, expected, atol=HEAD_TOLERANCE, rtol=0)
        assert np.ptp(expected, axis=0).max() > 0.1  # windows that move the scores, not one answer throughout
        # Whichever classifies single windows (the faster, timed at load: not asserted here), it gives these scores.
        np.testing.assert_allclose(np.stack([classifier.classify(window) for window in encodings]), expected,
                                   atol=HEAD_TOLERANCE, rtol=0)
        assert StreamingClassifier(each).compiled_head is classifier.compiled_head  # one kernel for every stream
        # A broken frame (NaN) gives NaN scores, as ONNX Runtime's head does, not plausible ones.
        broken = encodings[0].copy()
        broken[3, 5] = np.nan
        assert np.isnan(classifier.classify_windows(broken[None])).all()
        assert np.isnan(kernel(broken)).all()


def test_a_head_graph_the_kernel_does_not_reproduce_is_left_to_onnx_runtime(bundle, tmp_path, caplog):
    halved = with_output_scaled(bundle, tmp_path, bundle.streaming.head, HEAD_OUTPUT, 0.5)
    with caplog.at_level("WARNING", logger="edgeemo.streaming"):
        classifier = StreamingClassifier(halved)
    assert classifier.compiled_head is None and "classified by ONNX Runtime" in caplog.text
    window = real_face_windows(bundle.frames)[0][:, bundle.landmarks_union]
    original = StreamingClassifier(bundle)
    np.testing.assert_allclose(classifier.classify(classifier.encode_frames(window)),
                               0.5 * original.classify(original.encode_frames(window)), atol=HEAD_TOLERANCE)
    assert HeadKernel.load(bundle.streaming.encoder) is None  # not a head graph at all


def test_on_a_steady_30_fps_video_serve_gives_the_same_predictions_either_way(bundle, clip_frames):
    timed = [(frame, i / CLIP_FPS) for i, frame in enumerate(clip_frames)]
    old = run_stream(bundle, EmotionClassifier(bundle), timed)
    new = run_stream(bundle, StreamingClassifier(bundle), timed)
    assert len(new) == len(old) == len(clip_frames) - (bundle.frames - 1) * bundle.frame_stride
    assert [r["end"] for r in new] == [r["end"] for r in old]
    np.testing.assert_allclose(np.stack([r["scores"] for r in new]), np.stack([r["scores"] for r in old]),
                               atol=TOLERANCE, rtol=0)
    assert [r["label"] for r in new] == [r["label"] for r in old]


def _retimed(frames: list[np.ndarray]) -> dict[str, list[tuple[np.ndarray, float]]]:
    """The clip at 15 fps (every other frame), 30, 60 (each frame shown twice), and 30 with every third
    frame dropped; times in seconds of the clip."""
    return {
        "15 fps": [(f, i / CLIP_FPS) for i, f in enumerate(frames) if i % 2 == 0],
        "30 fps": [(f, i / CLIP_FPS) for i, f in enumerate(frames)],
        "60 fps": [(f, (2 * i + half) / (2 * CLIP_FPS)) for i, f in enumerate(frames) for half in (0, 1)],
        "every third dropped": [(f, i / CLIP_FPS) for i, f in enumerate(frames) if i % 3 != 2],
    }


def test_a_retimed_clip_gives_windows_over_the_same_seconds_and_the_same_labels(bundle, clip_frames):
    runs = {name: run_stream(bundle, StreamingClassifier(bundle), frames)
            for name, frames in _retimed(clip_frames).items()}
    interval = 1 / CLIP_FPS
    reference = {round(r["end"] * 60): r for r in runs["30 fps"]}
    for name, records in runs.items():
        assert records, f"{name}: no prediction"
        compared = same = 0
        for record in records:
            ref = reference.get(round(record["end"] * 60))
            if ref is None:  # a 60 fps frame between two of the clip's
                continue
            compared += 1
            same += record["label"] == ref["label"]
            span = record["picked"][-1] - record["picked"][0]
            assert abs(span - bundle.window_s) <= interval + 1e-9, f"{name}: window spans {span:.3f} s"
            assert np.abs(record["picked"] - ref["picked"]).max() <= interval + 1e-9, name
        assert compared >= (0.45 if name == "60 fps" else 0.9) * len(records), name
        assert same >= 0.95 * compared, f"{name}: {same} of {compared} labels as at 30 fps"


def test_a_stall_is_refused_and_counted_not_stretched(bundle, clip_frames):
    from edgeemo.landmarker import FaceMeshLandmarker
    from edgeemo.publisher import PredictionPublisher

    registry = CollectorRegistry()
    # 1.2 s of frames, nothing for 0.4 s (a stall), then 2 s of frames again.
    times = [i / CLIP_FPS for i in range(36)] + [1.6 + i / CLIP_FPS for i in range(60)]
    published, reasons = [], []
    with PredictionPublisher(f"tcp://127.0.0.1:{free_port()}") as publisher, \
            FaceMeshLandmarker(static=False) as landmarker:
        processor = StreamProcessor("stall", bundle, StreamingClassifier(bundle), landmarker, publisher,
                                    Metrics(registry).stream("stall"))
        for frame, at in zip(clip_frames, times):
            published.append(bool(processor.process(frame, at, 0.0)))
            (track,) = processor.tracks.values()  # the clip's one face, followed throughout
            reasons.append(track.path.timed.refused)
    assert all(published[30:36])  # the window filled after one second, before the stall
    after = published[36:]
    refused = after.index(True)
    # Every window with a time inside the stall is refused: until one second of frames has come after it.
    assert 27 <= refused <= 31 and all(after[refused:]), after
    assert all("frames dropped or the stream stalled" in reason for reason in reasons[36:36 + refused])
    assert registry.get_sample_value("edgeemo_windows_refused_total", {"stream": "stall"}) == refused


def test_the_buffer_picks_the_nearest_frame_and_reports_the_worst_error():
    buffer = TimedBuffer(8, 1)
    for i, at in enumerate([0.0, 0.1, 0.2, 0.31, 0.4]):
        buffer.append(np.array([i], np.float32), at)
    out, picked = np.zeros((3, 1), np.float32), np.zeros(3)
    assert buffer.window(0.2, out, picked) == pytest.approx(0.0)
    assert out[:, 0].tolist() == [0, 2, 4]
    assert buffer.window(0.1, out, picked) == pytest.approx(0.01)  # wants 0.3, has 0.31
    assert picked.tolist() == [0.2, 0.31, 0.4]
    with pytest.raises(ValueError, match="before the newest"):
        buffer.append(np.array([9], np.float32), 0.35)
    assert buffer.covers(0.4, 0.0) and not buffer.covers(0.5, 0.05)
    assert not buffer.push(np.array([9], np.float32), 0.35) and len(buffer) == 5  # refused, nothing added


def test_a_clock_that_goes_back_starts_a_new_window(bundle):
    window = TimedWindow(bundle, 3)
    for i in range(5):
        window.append(np.full(3, i, np.float32), 10.0 + i / CLIP_FPS)
    window.append(np.full(3, 9, np.float32), 1.0)  # a source reopened: its clock starts again
    assert len(window.buffer) == 1 and window.buffer.newest_time == 1.0


def test_an_old_bundle_without_the_pair_still_serves(bundle, tmp_path, clip_frames):
    old = tmp_path / "old"
    shutil.copytree(ABSOLUTE_BUNDLE, old)
    manifest = json.loads((old / "manifest.json").read_text())
    for key in ("streaming", "frame_interval_s", "window_s"):
        manifest.pop(key)
    (old / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_bundle(old)
    assert loaded.streaming is None and loaded.frame_interval_s == pytest.approx(1 / 30)
    classifier = make_classifier(loaded)
    assert isinstance(classifier, EmotionClassifier)
    records = run_stream(loaded, classifier, [(f, i / CLIP_FPS) for i, f in enumerate(clip_frames[:40])])
    assert len(records) == 40 - (loaded.frames - 1) * loaded.frame_stride


def _broken(tmp_path, change) -> str:
    folder = tmp_path / "broken"
    shutil.copytree(ABSOLUTE_BUNDLE, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest, folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgeemoError) as error:
        load_bundle(folder)
    return str(error.value)


@pytest.mark.parametrize("change, message", [
    (lambda m, f: m["streaming"]["head"].update(sha256="0" * 64), "streaming_head.onnx: SHA-256 differs"),
    (lambda m, f: (f / "streaming_encoder.onnx").unlink(), "streaming_encoder.onnx: missing from the bundle"),
    (lambda m, f: m["streaming"].update(encoding_width=12), "disagree with the manifest"),
    (lambda m, f: m["streaming"].pop("head"), "streaming.head should be an object"),
    (lambda m, f: m.update(window_s=2.0), "window_s 2.0 is not"),
    (lambda m, f: m.update(frame_interval_s=0), "field frame_interval_s should be float"),
])
def test_a_bad_streaming_entry_is_refused_in_one_line(tmp_path, change, message):
    error = _broken(tmp_path, change)
    assert message in error and "\n" not in error


def test_fuse_refuses_models_it_cannot_read_and_a_pair_that_drifts(tmp_path):
    linear = tmp_path / "linear"
    make_linear_bundle(linear, {e: [1, 2, 3] for e in load_bundle(ABSOLUTE_BUNDLE).manifest["emotions"]})
    with pytest.raises(EdgeemoError, match="not a T-EMO/R-EMO export"):
        fuse_bundle(linear, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    staging = tmp_path / "staging"
    shutil.copytree(ABSOLUTE_BUNDLE, staging)
    with pytest.raises(EdgeemoError, match="refusing to write it"):
        write_pair(staging, tolerance=0.0)


def test_fuse_on_the_command_line_writes_a_bundle_serve_loads(tmp_path, capsys):
    from edgeemo.cli import main

    assert main(["fuse", str(ABSOLUTE_BUNDLE), "--out", str(tmp_path / "fused"), "--frame-interval", "0.04"]) == 0
    fused = load_bundle(tmp_path / "fused")
    assert fused.frame_interval_s == 0.04 and fused.window_s == pytest.approx(15 * 2 * 0.04)
    assert "fused streaming pair" in capsys.readouterr().out
