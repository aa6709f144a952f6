"""``edgeemo bench``: both benchmarks, one after the other, and their files."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from edgeemo.benchmark import classifier, end_to_end, report, streaming
from edgeemo.benchmark.timing import load_average, machine, now, one_core
from edgeemo.bundle import MANIFEST
from edgeemo.info import DEFAULT_BUNDLE
from edgeemo.serve import DEMO_CLIP

VIDEO_CREDIT = ("London face 001, DeBruine & Jones (2017), Face Research Lab London Set, CC BY 4.0; "
                "see edgeemo/resources/demo/ATTRIBUTION.md")
# Seconds of timing: per classifier row, for the whole pipeline, for MediaPipe alone, and the alternating blocks
# (how many, and the seconds of each half).
BUDGETS = {"classifier": 2.0, "pipeline": 20.0, "landmarker": 10.0, "blocks": 5, "block_pipeline": 4.0,
           "block_landmarker": 2.0}
QUICK_BUDGETS = {"classifier": 0.05, "pipeline": 0.0, "landmarker": 0.0,  # 0: one pass over the video
                 "blocks": 1, "block_pipeline": 0.0, "block_landmarker": 0.0}
GRAPHS = {"tf2onnx": "Keras models exported with tf2onnx, as edgeemo export writes them",
          "onnx": "graphs built with onnx in tf2onnx's layout (no TensorFlow here; edgeemo.benchmark.graphs)"}


def run_bench(out: Path, *, quick: bool = False, command: str = "edgeemo bench") -> list[Path]:
    """Build the bundles, time them and the pipeline, write the results into ``out``; the files written."""
    # No TensorFlow (an edge box): the graphs are built with onnx itself (edgeemo.benchmark.graphs).
    budgets = QUICK_BUDGETS if quick else BUDGETS
    steps = len(classifier.KS) * len(classifier.ARCHS) * 2 + len(classifier.KS) + 5
    with tqdm(total=steps, desc="bench", unit="step", file=sys.stderr, dynamic_ncols=True) as bar, \
            tempfile.TemporaryDirectory(prefix="edgeemo-bench-") as tmp:
        def progress(message: str) -> None:
            bar.set_description(message)
            bar.update()

        workdir = Path(tmp)
        before = machine()
        built = classifier.build_all(workdir, quick=quick, progress=progress)
        if (DEFAULT_BUNDLE / MANIFEST).is_file():
            bundle, source = DEFAULT_BUNDLE, "the default bundle, edgeemo/models/default"
        else:
            bundle = classifier.bundle_path(workdir, 64, "t-emo")
            source = (f"no default bundle installed, so an untrained K=64 T-EMO bundle exported for this run "
                      f"({'quick-mode tiny models' if quick else 'paper hyperparameters'}; untrained weights cost "
                      "what trained ones do)")
        # Timing on one core: what a small device gives one stream, and fewer surprises from other load.
        fused = {f"K={k} T-EMO": classifier.bundle_path(workdir, k, "t-emo") for k in classifier.KS}
        if (DEFAULT_BUNDLE / MANIFEST).is_file():
            fused = {"default bundle": DEFAULT_BUNDLE, **fused}
        with one_core() as cpu:
            rows = classifier.time_all(workdir, built, budgets["classifier"], progress)
            streaming_rows = streaming.fuse_and_time(fused, budgets["classifier"], workdir, progress)
            progress("end to end: the serve pipeline")
            pipeline = end_to_end.run_pipeline(bundle, DEMO_CLIP, budgets["pipeline"])
            progress("end to end: the serve pipeline with the six per-emotion models")
            per_emotion = end_to_end.run_pipeline(bundle, DEMO_CLIP, budgets["pipeline"], streaming=False)
            progress("end to end: MediaPipe alone")
            floor = end_to_end.run_landmarker(DEMO_CLIP, budgets["landmarker"])
            progress("end to end: the pipeline and MediaPipe alone, in turn")
            alternating = end_to_end.run_alternating(bundle, DEMO_CLIP, budgets["blocks"], budgets["block_pipeline"],
                                                     budgets["block_landmarker"])
    common = {"date": now(), "command": command, "quick": quick, "machine": before, "pinned_cpu": cpu,
              "load_average_after": load_average()}
    paths = report.write_classifier(out, {
        "benchmark": "classifier latency against K", **common, "rows": rows, "frames": classifier.DEFAULT_FRAMES,
        "budget_s": budgets["classifier"],
        "models": "tiny quick-mode models (one ONNX file per bundle)" if quick else
                  "the paper's per-emotion hyperparameters for each K "
                  "(offline/resources/configs/paper_hyperparameters.toml)",
    })
    paths += report.write_end_to_end(out, {
        "benchmark": "end to end, one stream", **common, "video": str(DEMO_CLIP.relative_to(DEMO_CLIP.parents[3])),
        "video_credit": VIDEO_CREDIT, "bundle_source": source, "pipeline": pipeline, "mediapipe_floor": floor,
        "pipeline_per_emotion": per_emotion, "alternating": alternating,
    })
    graphs = sorted({b["graphs"] for b in built.values()})
    streaming_result = {"benchmark": "classification per frame, per-emotion models against the streaming pair",
                        **common, "rows": streaming_rows, "budget_s": budgets["classifier"],
                        "graphs": " and ".join(GRAPHS[g] for g in graphs) + "; the default bundle as shipped",
                        "mediapipe_detect_ms": floor["detect"]["median_ms"]}
    paths += streaming.write(out, streaming_result, report.machine_line(streaming_result))
    return paths
