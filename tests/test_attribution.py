"""Live explanations (edgeemo.attribution, edgeemo.regions) on the default bundle and real London dev faces."""

from itertools import permutations

import numpy as np
import pytest

from edgeemo.attribution import CANONICAL_BASELINE, PERSONAL_BASELINE, Explainer, coalitions, shapley_matrix
from edgeemo.bundle import load_bundle
from edgeemo.commands.subscribe import format_explanation
from edgeemo.emotions import EMOTIONS
from edgeemo.face import N_LANDMARKS
from edgeemo.fuse import real_face_windows
from edgeemo.regions import MP_BROWS, MP_EYES, MP_LIPS, MP_NOSE, REGIONS, region_landmarks, region_of_landmark
from edgeemo.streaming import StreamingClassifier
from tests.conftest import REPO

RAMPS = 5  # real_face_windows gives each face: onset slow, onset fast, step, held smile, offset


@pytest.fixture(scope="module")
def pair():
    bundle = load_bundle(REPO / "edgeemo" / "models" / "default")
    classifier = StreamingClassifier(bundle)
    return bundle, classifier, Explainer(classifier)


@pytest.fixture(scope="module")
def windows(pair):
    bundle = pair[0]
    return real_face_windows(bundle.frames)[:, :, bundle.landmarks_union]


def test_regions_cover_the_mesh_once_and_copy_mediapipe_sets():
    owner = region_of_landmark()
    assert owner.shape == (N_LANDMARKS,) and set(owner.tolist()) == set(range(len(REGIONS)))
    members = region_landmarks()
    assert sum(len(v) for v in members.values()) == N_LANDMARKS
    from mediapipe.python.solutions import face_mesh_connections as mesh

    def points(*sets):
        return {i for s in sets for edge in s for i in edge}

    assert set(MP_LIPS) == points(mesh.FACEMESH_LIPS)
    assert set(MP_EYES) == points(mesh.FACEMESH_LEFT_EYE, mesh.FACEMESH_RIGHT_EYE)
    assert set(MP_BROWS) == points(mesh.FACEMESH_LEFT_EYEBROW, mesh.FACEMESH_RIGHT_EYEBROW)
    assert set(MP_NOSE) == points(mesh.FACEMESH_NOSE)
    assert {61, 291} <= set(members["mouth_corners"]) and 0 in members["upper_lip"] and 17 in members["lower_lip"]
    assert set(MP_EYES) <= set(members["eyes"]) and set(MP_BROWS) <= set(members["brows"])


def test_shapley_matrix_matches_the_permutation_definition():
    rng = np.random.default_rng(0)
    regions = 4
    members = coalitions(regions)
    values = rng.normal(size=len(members))
    index = {tuple(row.astype(int)): i for i, row in enumerate(members)}
    orders = list(permutations(range(regions)))
    expected = np.zeros(regions)
    for order in orders:
        have = np.zeros(regions, int)
        for r in order:
            before = values[index[tuple(have)]]
            have[r] = 1
            expected[r] += values[index[tuple(have)]] - before
    np.testing.assert_allclose(shapley_matrix(members) @ values, expected / len(orders), atol=1e-12)


def test_region_values_equal_shapley_of_the_real_model_on_hybrid_faces(pair, windows):
    """The additive shortcut against the definition: v(S) from the fused pair on faces whose regions in S
    are the real face's and the rest the baseline's."""
    _, classifier, explainer = pair
    faces = windows[3]  # a held smile
    emotion = EMOTIONS.index("happiness")
    got, score, rest = explainer.region_values(faces, emotion)
    part = explainer.part(emotion)
    values = []
    for row in part.coalitions:
        hybrid = explainer.baseline.copy()
        for r in np.flatnonzero(row):
            hybrid[:, part.members[r]] = faces[:, part.members[r]]
        values.append(classifier.classify(classifier.encode_frames(hybrid))[emotion])
    expected = shapley_matrix(part.coalitions) @ np.array(values, np.float64)
    np.testing.assert_allclose([got[n] for n in part.names], expected, atol=2e-5)
    assert all(value == 0.0 for name, value in got.items() if name not in part.names)  # regions it never reads
    assert score == pytest.approx(values[-1], abs=2e-5) and rest == pytest.approx(values[0], abs=2e-5)


def test_explanations_are_complete_on_real_face_windows(pair, windows):
    _, classifier, explainer = pair
    relative = []
    for faces in windows:
        scores = classifier.classify(classifier.encode_frames(faces))
        for emotion in (None, "happiness"):
            e = explainer.explain(faces, scores, emotion)
            change = abs(e["score"] - e["baseline_score"])
            assert e["score"] - e["baseline_score"] - sum(e["regions"].values()) == pytest.approx(e["residual"])
            relative.append(abs(e["residual"]) / change if change > 1e-3 else 0.0)
    assert np.median(relative) <= 0.01
    assert max(relative) <= 0.05


def test_a_real_smile_is_explained_by_the_mouth_and_cheeks(pair, windows):
    _, classifier, explainer = pair
    held = windows[3::RAMPS]  # each face's neutral -> smiling step, then held
    top = []
    for faces in held:
        scores = classifier.classify(classifier.encode_frames(faces))
        if scores[EMOTIONS.index("happiness")] < 0.5:
            continue
        e = explainer.explain(faces, scores, "happiness", landmarks=True)
        top.append(max(e["regions"], key=e["regions"].get))
        assert e["landmarks"] and all(isinstance(k, str) for k in e["landmarks"])
    assert len(top) >= len(held) // 2
    assert np.mean([t in ("mouth_corners", "inner_cheeks", "outer_cheeks") for t in top]) >= 0.9
    line = format_explanation(e)
    assert line.startswith("happiness") and "mouth_corners" in line


def test_a_personal_rest_replaces_the_canonical_baseline(pair, windows):
    _, classifier, _ = pair
    faces = windows[0][:1].repeat(len(windows[0]), 0)  # this face's neutral frame, held
    own = Explainer(classifier, rest=faces[0])
    e = own.explain(faces, classifier.classify(classifier.encode_frames(faces)))
    assert e["baseline"] == PERSONAL_BASELINE
    # the window is the rest itself: nothing changed, nothing to attribute
    assert max(abs(v) for v in e["regions"].values()) < 1e-5
    assert Explainer(classifier).baseline_name == CANONICAL_BASELINE


@pytest.mark.offline  # the truth of the synthetic set is the offline package's
def test_the_forehead_splits_where_the_inner_and_outer_brow_raisers_act():
    """FACS's AU1 (inner brow raiser: sadness) and AU2 (outer brow raiser) move different parts of the forehead."""
    from offline.synth.truth import ground_truth

    units = ground_truth("hand")["action_units"]
    members = region_landmarks()
    inner, outer = set(members["inner_forehead"]), set(members["outer_forehead"])
    forehead = inner | outer
    assert {9, 10, 151} <= inner and {54, 284} <= outer  # the midline, and above either brow's tail
    assert forehead & set(units["AU1"]["landmarks"]) <= inner and forehead & set(units["AU2"]["landmarks"]) <= outer
    # the 25 % rule of the agreement benchmark now finds AU1 in the inner forehead (5 of 21 on the whole one)
    assert len(inner & set(units["AU1"]["landmarks"])) >= 0.25 * len(inner)


@pytest.mark.offline  # the truth of the synthetic set is the offline package's
def test_the_cheeks_split_where_the_nose_wrinkler_lifts_the_infraorbital_triangle():
    """FACS's AU9 (nose wrinkler: disgust) pushes up the cheek between the nose and the pupils' line, not beyond."""
    from offline.synth.truth import ground_truth

    units = ground_truth("hand")["action_units"]
    members = region_landmarks()
    inner, outer = set(members["inner_cheeks"]), set(members["outer_cheeks"])
    assert {36, 100, 266, 329} <= inner and {116, 123, 345, 352} <= outer  # beside the nose; the cheekbones
    nose_wrinkler = set(units["AU9"]["landmarks"])
    assert len(inner & nose_wrinkler) >= 0.5 * len(inner) and len(outer & nose_wrinkler) <= 0.1 * len(outer)
    # the 25 % rule of the agreement benchmark finds AU9 in the inner cheeks (14 of 70, 20 %, on the whole cheeks)
    assert len((inner | outer) & nose_wrinkler) < 0.25 * len(inner | outer)


@pytest.mark.offline  # the synthetic generator needs scikit-learn, the offline extra
@pytest.mark.parametrize("representation", ["absolute", "rest-relative/v1"])
def test_on_fresh_synthetic_people_the_top_region_is_one_the_emotion_moves(pair, tmp_path, representation):
    """A new synthetic set (another seed than the bundle's training data) and its truth file; rest-relative
    people are what the calibrated models see once a face's rest is known."""
    import subprocess
    import sys

    from edgeemo.benchmark.explanations import agreement

    data = tmp_path / "synth.npz"
    subprocess.run([sys.executable, "-m", "edgeemo", "data", "synth", "--out", str(data), "--seed", "11",
                    "--sequences", "60", "--subjects", "12", "--representation", representation],
                   check=True, capture_output=True, cwd=REPO)
    result = agreement(pair[1], data)
    for name, row in result["emotions"].items():
        precision = row["canonical"]["top_region_precision"]
        if row["canonical"]["detected"] >= 5:
            assert precision >= 0.9, (name, precision, row["canonical"]["top_regions"])
    assert result["pooled_precision"]["personal"] >= 0.9  # a person's own rest: 0.95 to 0.98 at 3 seeds
    happiness = result["emotions"]["happiness"]["canonical"]
    assert max(happiness["summed"], key=happiness["summed"].get) in ("mouth_corners", "inner_cheeks", "outer_cheeks")


def test_rank_correlation_handles_ties_and_order():
    from edgeemo.benchmark.explanations import spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([0, 0, 1, 2], [0, 0, 5, 9]) == pytest.approx(1.0)  # ties on both sides, same order
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))
