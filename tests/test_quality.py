"""Quality without a dictionary (mapalign.quality): the criterion a fit records is the one
evaluate recomputes; the reference level separates a real alignment from none; compare without
a dictionary prefers the better mapping; round trip and hubness measure what they say."""
import json

import numpy as np
import pytest

import mapalign
from mapalign import Embeddings, SupervisedAligner, quality
from mapalign.runs import fit_run
from mapalign.synthetic import make_pair

from conftest import write_inputs


@pytest.fixture(scope="module")
def pair():
    return make_pair(n_words=1000, dim=24, noise=0.4, seed=2)


def _noisy(pairs, tgt, share, seed):
    """``pairs`` with ``share`` of them replaced by random pairs."""
    rng = np.random.default_rng(seed)
    return [(a, tgt.words[rng.integers(len(tgt))]) if rng.random() < share else (a, b)
            for a, b in pairs]


@pytest.fixture(scope="module")
def runs(pair, tmp_path_factory):
    """A good and a worse supervised run of the generated pair, as run directories."""
    src, tgt, train, _ = pair
    folder = tmp_path_factory.mktemp("quality")
    p = write_inputs(folder, {"s.vec": src, "t.vec": tgt},
                     {"good.txt": train, "bad.txt": _noisy(train, tgt, 0.9, 1)})
    out = {}
    for name in ("good", "bad"):
        out[name] = str(folder / name)
        fit_run(str(p["s.vec"]), str(p["t.vec"]), out[name], str(p[name + ".txt"]),
                method="procrustes",
                refine=0)
    return out


def test_recorded_criterion_is_recomputed_exactly(runs):
    """A fit records criterion and reference in report.json; evaluate reads only the first
    words of the inputs again and finds the same values."""
    with open(f"{runs['good']}/report.json") as f:
        recorded = json.load(f)["quality"]
    again = quality.evaluate_unsupervised_run(runs["good"], record=False)
    assert recorded["criterion"] == again["criterion"]
    assert recorded["reference"] == again["reference"]
    assert recorded["round_trip"] == again["round_trip"]
    assert recorded["verdict"] == again["verdict"]


def test_reference_below_a_real_alignment_and_level_with_none(pair, rng):
    src, tgt, train, _ = pair
    good = quality.evaluate_unsupervised(
        SupervisedAligner(method="procrustes", refine=0).fit(src, tgt, train), src, tgt)
    assert good["criterion_ci95"][0] > good["reference"] + quality.GOOD
    assert good["verdict"].startswith("good")
    # two independent random spaces: no map relates them, whatever dictionary it was fitted on
    s = Embeddings(src.words, rng.standard_normal(src.vectors.shape).astype(np.float32))
    t = Embeddings(tgt.words, rng.standard_normal(tgt.vectors.shape).astype(np.float32))
    none = quality.evaluate_unsupervised(
        SupervisedAligner(method="procrustes", refine=0).fit(s, t, train), s, t)
    assert abs(none["criterion"] - none["reference"]) < 0.01
    assert none["criterion_ci95"][0] < none["reference"] < none["criterion_ci95"][1] + 0.01
    assert none["verdict"].startswith("no alignment")


def test_cross_fitting_keeps_unrelated_pairs_at_chance(pair, rng):
    """Scored by a map fitted on the other half, a dictionary of unrelated pairs scores what
    random pairs do (about 0): in-sample it would score its own overfit."""
    src, tgt, _, _ = pair
    X = quality._common_space(src.vectors, 1000, np)
    Z = quality._common_space(tgt.vectors, 1000, np)
    fwd = rng.integers(0, len(Z), len(X))
    assert abs(quality.isometric_agreement(X, Z, fwd).mean()) < 0.03
    assert quality.isometric_agreement(X, Z, fwd, folds=1).mean() > 0.1


def test_compare_without_dictionary_prefers_the_better_mapping(runs):
    a = quality.compare_unsupervised_runs(runs["good"], runs["bad"])
    assert a["prefers"] == "a" and a["difference_ci95"][0] > 0
    b = quality.compare_unsupervised_runs(runs["bad"], runs["good"])
    assert b["prefers"] == "b" and b["difference"] == pytest.approx(-a["difference"])
    assert a["words"] == 1000


def test_round_trip_and_hubness_measure_what_they_say():
    # every query translated to target 0: one hub takes all, skewed counts
    h = quality.hubness(np.zeros(500, dtype=int), 1000)
    assert h["top1pct_share"] == 1.0 and h["targets_retrieved"] == 1 and h["skew"] > 10
    h = quality.hubness(np.arange(500), 1000)
    assert h["top1pct_share"] == pytest.approx(10 / 500)
    # identical spaces: every word translates to itself and back
    rng = np.random.default_rng(0)
    X = quality._common_space(rng.standard_normal((300, 20)), 300, np)
    m = quality.measures(X, X, X, X)
    assert (m["fwd"] == np.arange(300)).all() and m["round_trip"].mean() == 1.0


def test_evaluation_recorded_in_the_run_and_multi_pairs(runs, pair):
    quality.evaluate_unsupervised_run(runs["bad"])
    with open(f"{runs['bad']}/report.json") as f:
        entry = json.load(f)["evaluations"][-1]
    assert entry["dictionary"] is None and isinstance(entry["quality"]["criterion"], float)
    from mapalign.synthetic import make_family

    spaces, dicts, _ = make_family(("aa", "bb", "hub"), n_words=400, dim=12, noise=0.2,
                                   hub_noise=0.2, seed=3)
    model = mapalign.MultiAligner(hub="hub", vocab=300, criterion_vocab=300).fit(
        spaces, {k: v for k, v in dicts.items() if "hub" in k})
    out = quality.evaluate_unsupervised_multi(model, spaces)
    assert sorted(out) == ["aa-bb", "aa-hub", "bb-aa", "bb-hub", "hub-aa", "hub-bb"]
    assert all(v["criterion"] > v["reference"] + 0.05 for v in out.values())
