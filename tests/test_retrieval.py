import numpy as np
import pytest

import strict_xp
from mapalign.backend import asnumpy, to_device
from mapalign.retrieval import (block_rows, csls_best, csls_best_both, mean_topk_similarity,
                                mutual_nearest, nearest)


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
def test_blocked_topk_matches_brute_force(rng, method, budget, xp):
    Q = rng.standard_normal((157, 24)).astype(np.float32)
    T = rng.standard_normal((311, 24)).astype(np.float32)
    S = rng.standard_normal((203, 24)).astype(np.float32)
    assert block_rows(311, 5000) < 157  # the small budget really splits the queries
    dQ, dT, dS = (to_device(a, xp) for a in (Q, T, S))
    strict_xp.reset()
    idx, vals = nearest(dQ, dT, 10, method, csls_k=7, sources=dS, budget=budget)
    # the result comes back once (indices, scores), however many blocks there were; each
    # block waits once (the count of rows whose top-k must be redone)
    blocks = -(-157 // block_rows(311, budget))
    assert strict_xp.COUNTS["d2h"] <= (2 if xp.__name__ == "strict_xp" else 0)
    assert strict_xp.COUNTS["h2d"] == 0
    assert strict_xp.COUNTS["sync"] <= (blocks if xp.__name__ == "strict_xp" else 0)
    ref_idx, ref_vals = _brute(Q, T, 10, method, 7, S)
    np.testing.assert_allclose(vals, ref_vals, atol=1e-5)
    # indices equal except where two scores tie to float precision
    differ = idx != ref_idx
    assert np.all(np.abs(vals[differ] - ref_vals[differ]) < 1e-5)
    assert differ.mean() < 0.01


def test_ties_resolved_to_lower_index(rng, xp):
    T = to_device(np.repeat(rng.standard_normal((5, 8)).astype(np.float32), 3, axis=0), xp)
    idx, _ = nearest(T[::3], T, 3, "nn")
    assert idx.tolist() == [[3 * i, 3 * i + 1, 3 * i + 2] for i in range(5)]


@pytest.mark.parametrize("method,n_queries", [("nn", 40), ("csls", 40), ("csls", 100)])
def test_exact_ties_on_wide_rows(rng, xp, method, n_queries):
    # 12,000 targets: rows wide enough for chunks of 8 columns. Each vector has four entries
    # of +-1, so every cosine is a multiple of 1/4, exact in float32: most top-10s are ties
    # (and some vectors repeat), the case where a chunk left out can hold an equal value.
    def sparse_signs(n):
        X = np.zeros((n, 16), dtype=np.float32)
        spots = np.argsort(rng.random((n, 16)), axis=1)[:, :4]
        np.put_along_axis(X, spots, rng.choice([-1, 1], (n, 4)).astype(np.float32), axis=1)
        return X
    T, Q = sparse_signs(12000), sparse_signs(n_queries)  # CSLS reorders T from 64 queries
    r_t = rng.integers(0, 3, 12000).astype(np.float32) / 4  # exact penalties, many equal
    got, _ = nearest(to_device(Q, xp), to_device(T, xp), 10, method,
                     r_target=to_device(r_t, xp) if method == "csls" else None)
    sims = (Q.astype(np.float64) / 2) @ (T.astype(np.float64) / 2).T
    if method == "csls":
        sims -= r_t / 2
    assert np.array_equal(got, np.argsort(-sims, axis=1, kind="stable")[:, :10])


def test_k_larger_than_targets(rng, xp):
    Q, T = rng.standard_normal((4, 6)), rng.standard_normal((3, 6))
    idx, vals = nearest(to_device(Q.astype(np.float32), xp),
                        to_device(T.astype(np.float32), xp), 10, "nn")
    assert idx.shape == (4, 3) and sorted(idx[0].tolist()) == [0, 1, 2]
    assert np.all(np.diff(vals, axis=1) <= 0)


@pytest.mark.parametrize("k", [5, 40])  # rounds of argmax, and a partition
def test_mean_topk_similarity(rng, xp, k):
    Q = rng.standard_normal((50, 10)).astype(np.float32)
    T = rng.standard_normal((80, 10)).astype(np.float32)
    ref = np.sort(_unit(Q) @ _unit(T).T, axis=1)[:, -k:].mean(axis=1)
    got = mean_topk_similarity(to_device(Q, xp), to_device(T, xp), k, budget=3000)
    np.testing.assert_allclose(asnumpy(got), ref, atol=1e-5)


def test_block_rows_bounds_memory():
    # 200k targets in a 512 MB budget: a few hundred rows per block, not the whole matrix
    rows = block_rows(200_000)
    assert 100 <= rows <= 400
    assert rows * 200_000 * 16 <= 512 * 2 ** 20
    assert block_rows(10 ** 12) == 1


def test_mutual_nearest_finds_a_permutation(rng, xp):
    S = rng.standard_normal((100, 30)).astype(np.float32)
    perm = rng.permutation(100)
    T = S[perm] + 0.01 * rng.standard_normal((100, 30)).astype(np.float32)
    i, j, scores = mutual_nearest(to_device(S, xp), to_device(T, xp))
    assert len(i) == 100
    assert np.all(perm[j] == i)  # target row j holds source perm[j]


def test_bad_method():
    with pytest.raises(ValueError, match="nn' or 'csls"):
        nearest(np.ones((2, 2)), np.ones((2, 2)), 1, "cos")


# a budget that holds T @ S.T (kept and read back above 64 dimensions), one that holds 60 of
# its 170 rows, and one that holds few
@pytest.mark.parametrize("budget,dim", [(10 ** 9, 16), (10 ** 9, 80), (60 * 120 * 4, 80),
                                        (4000 * 16, 16), (4000 * 16, 80)])
@pytest.mark.parametrize("keep", [1.0, 0.3])
def test_csls_best_both_matches_two_searches(rng, xp, budget, dim, keep, monkeypatch):
    S = rng.standard_normal((120, dim)).astype(np.float32)
    T = rng.standard_normal((170, dim)).astype(np.float32)
    dS, dT = to_device(S, xp), to_device(T, xp)
    from mapalign.backend import default_rng

    from mapalign import retrieval

    cells, product = [], retrieval._cosines
    monkeypatch.setattr(retrieval, "_cosines",
                        lambda Q, R, out=None: cells.append(len(Q) * len(R)) or
                        product(Q, R, out))
    strict_xp.reset()
    fwd, fwd_s, bwd, bwd_s = csls_best_both(dS, dT, 7, keep, default_rng(xp, 0), budget)
    # above 64 dimensions the first rows of T @ S.T that fit in the budget are kept and read
    # back: the second and third passes take products of the other rows only
    p = min(170, budget // (120 * 4)) if dim > 64 else 0
    assert sum(cells) == 120 * 170 + 2 * 120 * (170 - p)
    # stays on the device; a tile waits for a count of the rows tied at the one-pass
    # selection's cut and, with drops, of the rows whose first kept candidate lies beyond the
    # best L = 9 looked at (one more per further pass: a row looks beyond its best 27 with
    # probability 0.7 ** 27 < 1e-4), never for a value per row or cell
    assert strict_xp.COUNTS["h2d"] == 0 and strict_xp.COUNTS["d2h"] == 0
    tiles = -(-120 // block_rows(170, budget)) + -(-170 // block_rows(120, budget))
    assert strict_xp.COUNTS["sync"] <= (1 if keep == 1 else 2 * 3) * tiles
    fwd, fwd_s, bwd, bwd_s = (asnumpy(a) for a in (fwd, fwd_s, bwd, bwd_s))
    ref_f, ref_fs = nearest(S, T, 1, "csls", 7)
    ref_b, ref_bs = nearest(T, S, 1, "csls", 7)
    if keep == 1:
        assert (fwd == ref_f[:, 0]).all() and (bwd == ref_b[:, 0]).all()
        strict_xp.reset()
        one_way = csls_best(dS, dT, 7, budget)  # the criterion's half of the work
        assert strict_xp.COUNTS["d2h"] == 0 and strict_xp.COUNTS["sync"] <= tiles
        assert (asnumpy(one_way) == fwd).all()
        np.testing.assert_allclose(fwd_s, ref_fs[:, 0], atol=1e-5)
    else:  # a dropped score can only lower the best; a kept best stays the best
        assert (fwd_s <= ref_fs[:, 0] + 1e-5).all() and (bwd_s <= ref_bs[:, 0] + 1e-5).all()
        assert 0.1 < (fwd == ref_f[:, 0]).mean() < 0.7


def test_mixed_devices_are_an_error(rng):
    from mapalign.backend import get_xp

    strict = get_xp("strict")
    S = rng.standard_normal((10, 4)).astype(np.float32)
    with pytest.raises(TypeError, match="two devices mixed"):
        nearest(to_device(S, strict), S, 1, "nn")
    with pytest.raises(TypeError):
        np.asarray(to_device(S, strict))  # no implicit way back to the host


@pytest.mark.parametrize("tail", [1e-4, 0.3])  # 0.3: many rows resolved from their full order
def test_first_kept_matches_the_full_mask_in_distribution(monkeypatch, tail):
    """Stochastic induction without a number per cell: the chosen column's frequencies agree
    with the exact law of the full-mask reference (rank r chosen with probability
    (1 - keep)^r keep; nothing kept with (1 - keep)^m), by a chi-square test, and the
    full-mask reference itself agrees with the same law (so the test can tell them apart
    from a wrong one)."""
    from scipy.stats import chisquare

    from mapalign import retrieval

    monkeypatch.setattr(retrieval, "_TAIL", tail)
    m, keep, n = 12, 0.25, 40000
    row = np.random.default_rng(1).permutation(m).astype(np.float32)  # distinct scores
    scores = np.tile(row, (n, 1))
    rank_of_col = np.argsort(np.argsort(-row))
    law = np.array([(1 - keep) ** r * keep for r in range(m)] + [(1 - keep) ** m])

    def counts(cols, none):
        c = np.bincount(rank_of_col[cols[~none]], minlength=m)
        return np.append(c, none.sum())

    cols, none = retrieval.first_kept(scores.copy(), keep, np.random.default_rng(2))
    got = counts(np.asarray(cols), np.asarray(none))
    assert chisquare(got, law * n).pvalue > 1e-3
    mask = np.random.default_rng(3).random(scores.shape) < keep
    ref = np.where(mask, scores, -np.inf)
    ref_none = ~mask.any(axis=1)
    assert chisquare(counts(ref.argmax(axis=1), ref_none), law * n).pvalue > 1e-3
    # and a wrong law is rejected: the test has the power to tell
    shifted = np.roll(law, 1)
    assert chisquare(got, shifted * n / shifted.sum()).pvalue < 1e-6


def test_stochastic_best_scores_a_row_with_nothing_kept_as_minus_inf():
    from mapalign.retrieval import _best

    sims = np.random.default_rng(0).random((2000, 3)).astype(np.float32)
    j, s = _best(sims, np.zeros(2000, np.float32), np.zeros(3, np.float32), 0.05,
                 np.random.default_rng(0))
    dropped = np.isneginf(s)
    assert 0 < dropped.sum() < 2000  # (0.95)^3 of the rows keep nothing
    assert abs(dropped.mean() - 0.95 ** 3) < 0.05
    assert np.all(np.isfinite(s[~dropped]))


@pytest.mark.parametrize("tail", [0.05, 0.3])  # 0.3: a quarter of the rows walk on past L
def test_csls_pass_drops_match_the_law_in_distribution(monkeypatch, tail):
    """The stochastic CSLS pass (a product tile shifted by the targets' penalties, each row's
    best L selected at once, rows past them walked on) picks rank r of ``cos - r_T / 2`` with
    probability (1 - keep)^r keep, and nothing with (1 - keep)^m: a chi-square test."""
    from scipy.stats import chisquare

    from mapalign import retrieval

    monkeypatch.setattr(retrieval, "_TAIL", tail)
    g = np.random.default_rng(4)
    m, keep, n = 12, 0.25, 40000
    q = _unit(g.standard_normal((1, 8))).astype(np.float32)
    R = _unit(g.standard_normal((m, 8))).astype(np.float32)
    r_r = (g.random(m) * 0.4).astype(np.float32)
    shifted = (R @ q[0]) - r_r / 2
    rank_of_col = np.argsort(np.argsort(-shifted))
    law = np.array([(1 - keep) ** r * keep for r in range(m)] + [(1 - keep) ** m])
    best, score, _ = retrieval._csls_pass(np.repeat(q, n, axis=0), R, r_r, 3, keep,
                                          np.random.default_rng(2), 10 ** 9,
                                          r_q=np.zeros(n, np.float32))
    none = np.isneginf(score)
    got = np.append(np.bincount(rank_of_col[best[~none]], minlength=m), none.sum())
    assert chisquare(got, law * n).pvalue > 1e-3
    np.testing.assert_allclose(score[~none], 2 * shifted[best[~none]], atol=1e-5)
    wrong = np.roll(law, 1)
    assert chisquare(got, wrong * n / wrong.sum()).pvalue < 1e-6


def test_topk_of_rows_with_fewer_finite_cells_than_k():
    """Cells set to -inf (the stochastic walk's earlier passes) leave a row fewer finite
    values than ``k``: those come first, best first, each once."""
    from mapalign.retrieval import _topk_rows

    g = np.random.default_rng(5)
    scores = np.full((50, 300), -np.inf, dtype=np.float32)
    finite = g.integers(0, 6, 50)
    for r, f in enumerate(finite):  # in one chunk (columns c + i * 37): the hard case
        scores[r, 37 * g.permutation(8)[:f]] = g.random(f)
    idx, vals = _topk_rows(scores, 8)
    for r, f in enumerate(finite):
        want = np.argsort(-scores[r], kind="stable")[:f]
        assert list(idx[r, :f]) == list(want) and np.isneginf(vals[r, f:]).all()
