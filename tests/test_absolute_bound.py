"""The bound on absolute judgements (offline.report.absolute_bound): its measures on hand-made scores, and its
leave-one-person-out scoring on made people, where identity either does or does not outweigh the smile."""

from __future__ import annotations

import numpy as np
import pytest

from edgeemo.info import DEFAULT_BUNDLE
from offline.report.absolute_bound import CLASSIFIERS, leave_one_out, shipped, summary

pytestmark = pytest.mark.offline


def test_summary_counts_smiles_and_rests_at_each_cut():
    rest = np.array([0.1, 0.2, 0.9, 0.3])
    smile = np.array([0.95, 0.5, 0.3, 0.8])
    got = summary(rest, smile, threshold=0.5)
    assert got["smiles_caught"] == 3 and got["rests_called_smile"] == 1
    assert got["smiles_caught_with_no_rest_called"] == 1  # only 0.95 lies above the highest rest, 0.9
    # Catching every smile (all 4 people, fewer than the floor's 48) takes the cut down to 0.3: 2 rests called.
    assert got["rests_called_smile_with_48_smiles_caught"] == 2
    assert got["smile_above_own_rest"] == 3
    assert got["roc_auc"] == pytest.approx(12.5 / 16, abs=1e-3)  # pairs a smile wins, a tie half


def _people(identity_spread: float, n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rest and smile features of n made people: a smile adds the same direction to each person's own face."""
    rng = np.random.default_rng(seed)
    identity = rng.normal(0.0, identity_spread, (n, 40))  # more than the SVM's 20 components
    smile_direction = np.zeros(40)
    smile_direction[0] = 1.0
    noise = rng.normal(0.0, 0.01, (2, n, 40))  # a tracker's jitter
    return identity + noise[0], identity + smile_direction + noise[1]


@pytest.mark.parametrize("name", ["logistic regression", "RBF SVM"])
def test_leave_one_out_tells_a_smile_that_outweighs_identity_but_not_one_it_hides_in(name):
    clear = summary(*leave_one_out(*_people(identity_spread=0.2), CLASSIFIERS[name]))
    assert clear["smiles_caught_with_no_rest_called"] == clear["people"]
    hidden = summary(*leave_one_out(*_people(identity_spread=3.0), CLASSIFIERS[name]))
    assert hidden["smiles_caught_with_no_rest_called"] < hidden["people"] / 2
    assert hidden["smile_above_own_rest"] >= hidden["people"] - 1  # each person against their own rest: still clear


def test_the_shipped_uncalibrated_models_score_real_smiles_above_their_rests():
    rest, smile, threshold, bundle_id = shipped(DEFAULT_BUNDLE)
    assert bundle_id.endswith("k64") and threshold == pytest.approx(0.5)
    assert len(rest) == len(smile) == 50
    assert (smile > rest).mean() > 0.9 and np.median(smile) > threshold > np.median(rest)

