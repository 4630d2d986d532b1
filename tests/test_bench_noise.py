"""The noise ceiling that ``scripts/bench.py --only blind`` reports: how well the test
dictionary's own sampling lets any measure rank runs."""
import importlib.util
import os

import numpy as np

_spec = importlib.util.spec_from_file_location(
    "bench", os.path.join(os.path.dirname(__file__), "..", "scripts", "bench.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _hits(rates, words, seed):
    rng = np.random.default_rng(seed)
    return (rng.random((len(rates), words)) < np.asarray(rates)[:, None]).astype(int)


def test_well_separated_runs_rank_alike_on_every_half():
    c = bench.noise_ceiling(_hits(np.linspace(0.1, 0.9, 8), 2000, 0), draws=50)
    assert c["split_half"]["median"] > 0.95
    assert c["bootstrap_vs_full"]["p5"] > 0.95
    assert c["ceiling"] > 0.97
    assert (c["runs"], c["words"], c["split_half"]["draws"]) == (8, 2000, 50)


def test_runs_of_equal_quality_have_no_ranking_to_recover():
    c = bench.noise_ceiling(_hits([0.6] * 12, 400, 1), draws=100)
    assert abs(c["split_half"]["median"]) < 0.25
    assert c["ceiling"] < 0.6
    # a resample shares most words with the full test: it agrees with it beyond the truth
    assert c["bootstrap_vs_full"]["median"] > c["split_half"]["median"] + 0.2
