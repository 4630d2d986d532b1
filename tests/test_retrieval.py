import numpy as np
import pytest

from mapalign.retrieval import block_rows, mean_topk_similarity, mutual_nearest, nearest


def _unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _brute(Q, T, k, method, csls_k, S=None):
    Qn, Tn = _unit(Q.astype(np.float64)), _unit(T.astype(np.float64))
    sims = Qn @ Tn.T
    if method == "csls":
        Sn = Qn if S is None else _unit(S.astype(np.float64))
        r_t = np.sort(Tn @ Sn.T, axis=1)[:, -csls_k:].mean(axis=1)
        r_q = np.sort(sims, axis=1)[:, -csls_k:].mean(axis=1)
        sims = 2 * sims - r_t[None, :] - r_q[:, None]
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


@pytest.mark.parametrize("method", ["nn", "csls"])
@pytest.mark.parametrize("budget", [10 ** 9, 5000])  # one block, and blocks of a few rows
def test_blocked_topk_matches_brute_force(rng, method, budget):
    Q = rng.standard_normal((157, 24)).astype(np.float32)
    T = rng.standard_normal((311, 24)).astype(np.float32)
    S = rng.standard_normal((203, 24)).astype(np.float32)
    assert block_rows(311, 5000) < 157  # the small budget really splits the queries
    idx, vals = nearest(Q, T, 10, method, csls_k=7, sources=S, budget=budget)
    ref_idx, ref_vals = _brute(Q, T, 10, method, 7, S)
    np.testing.assert_allclose(vals, ref_vals, atol=1e-5)
    # indices equal except where two scores tie to float precision
    differ = idx != ref_idx
    assert np.all(np.abs(vals[differ] - ref_vals[differ]) < 1e-5)
    assert differ.mean() < 0.01


def test_ties_resolved_to_lower_index(rng):
    T = np.repeat(rng.standard_normal((5, 8)).astype(np.float32), 3, axis=0)  # triplicates
    idx, _ = nearest(T[::3], T, 3, "nn")
    assert idx.tolist() == [[3 * i, 3 * i + 1, 3 * i + 2] for i in range(5)]


def test_k_larger_than_targets(rng):
    Q, T = rng.standard_normal((4, 6)), rng.standard_normal((3, 6))
    idx, vals = nearest(Q.astype(np.float32), T.astype(np.float32), 10, "nn")
    assert idx.shape == (4, 3) and sorted(idx[0].tolist()) == [0, 1, 2]
    assert np.all(np.diff(vals, axis=1) <= 0)


def test_mean_topk_similarity(rng):
    Q = rng.standard_normal((50, 10)).astype(np.float32)
    T = rng.standard_normal((80, 10)).astype(np.float32)
    ref = np.sort(_unit(Q) @ _unit(T).T, axis=1)[:, -5:].mean(axis=1)
    np.testing.assert_allclose(mean_topk_similarity(Q, T, 5, budget=3000), ref, atol=1e-5)


def test_block_rows_bounds_memory():
    # 200k targets in a 512 MB budget: a few hundred rows per block, not the whole matrix
    rows = block_rows(200_000)
    assert 100 <= rows <= 400
    assert rows * 200_000 * 16 <= 512 * 2 ** 20
    assert block_rows(10 ** 12) == 1


def test_mutual_nearest_finds_a_permutation(rng):
    S = rng.standard_normal((100, 30)).astype(np.float32)
    perm = rng.permutation(100)
    T = S[perm] + 0.01 * rng.standard_normal((100, 30)).astype(np.float32)
    i, j, scores = mutual_nearest(S, T)
    assert len(i) == 100
    assert np.all(perm[j] == i)  # target row j holds source perm[j]


def test_bad_method():
    with pytest.raises(ValueError, match="nn' or 'csls"):
        nearest(np.ones((2, 2)), np.ones((2, 2)), 1, "cos")
