import numpy as np
import pytest

from mapalign import SupervisedAligner, cca, evaluate_bdi, procrustes
from mapalign.normalize import apply_normalization, normalize, parse_chain
from mapalign.synthetic import make_pair


def _rotation(d, rng):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q


def test_procrustes_recovers_a_rotation(rng):
    X = rng.standard_normal((500, 20))
    R = _rotation(20, rng)
    W = procrustes(X.astype(np.float32), (X @ R + 0.01 * rng.standard_normal((500, 20)))
                   .astype(np.float32))
    np.testing.assert_allclose(W.T @ W, np.eye(20), atol=1e-5)
    np.testing.assert_allclose(W, R, atol=0.01)


def test_cca_maximises_correlation(rng):
    Z = rng.standard_normal((2000, 10))
    X = Z @ rng.standard_normal((10, 10)) + 0.1 * rng.standard_normal((2000, 10))
    A, B = cca(X.astype(np.float32), Z.astype(np.float32), reg=0)
    XA, ZB = (X - X.mean(0)) @ A, (Z - Z.mean(0)) @ B
    corr = [np.corrcoef(XA[:, i], ZB[:, i])[0, 1] for i in range(10)]
    assert corr[0] > 0.99 and min(corr) > 0.8  # strongly related by construction
    np.testing.assert_allclose(np.cov(XA.T, bias=True), np.eye(10), atol=1e-3)  # whitened
    assert np.all(np.diff(corr) <= 1e-6)  # sorted, strongest first


def test_normalization_chain(rng):
    X = rng.standard_normal((100, 5)) * 3 + 2
    Y, means = normalize(X, "unit,center,unit")
    np.testing.assert_allclose(np.linalg.norm(Y, axis=1), 1, rtol=1e-6)
    assert len(means) == 1
    np.testing.assert_allclose(apply_normalization(X[:7], "unit,center,unit", means), Y[:7])
    C, _ = normalize(X, "center")
    np.testing.assert_allclose(C.mean(0), 0, atol=1e-12)
    assert parse_chain("none") == [] and parse_chain("unit, center") == ["unit", "center"]
    with pytest.raises(ValueError, match="unknown normalisation step 'length'"):
        parse_chain("unit,length")


@pytest.mark.parametrize("method", ["procrustes", "cca"])
def test_supervised_aligner_on_generated_pair(method):
    src, tgt, train, test = make_pair(n_words=1500, dim=30, noise=0.3, seed=3)
    model = SupervisedAligner(method=method, refine=0).fit(src, tgt, train)
    assert model.W_src_.shape == (30, 30)
    assert model.seed_info_["pairs_used"] == len(train)
    res = evaluate_bdi(model, src, tgt, test)
    assert res["csls"]["p@1"] > 90
    # a random mapping scores near chance
    model.W_src_ = np.linalg.qr(np.random.default_rng(1).standard_normal((30, 30)))[0]
    model.W_tgt_ = np.eye(30, dtype=np.float32)
    assert evaluate_bdi(model, src, tgt, test)["csls"]["p@1"] < 5


def test_refinement_helps_with_a_tiny_seed():
    src, tgt, train, test = make_pair(n_words=1500, dim=30, noise=0.8, seed=4)
    seed = train[:25]
    plain = SupervisedAligner(refine=0).fit(src, tgt, seed)
    refined = SupervisedAligner(refine=5).fit(src, tgt, seed)
    p_plain = evaluate_bdi(plain, src, tgt, test)["csls"]["p@1"]
    p_refined = evaluate_bdi(refined, src, tgt, test)["csls"]["p@1"]
    assert p_refined > p_plain + 10
    assert 1 <= len(refined.history_) <= 5


def test_fit_without_usable_pairs():
    src, tgt, _, _ = make_pair(n_words=200, dim=10)
    with pytest.raises(ValueError, match="no seed pair"):
        SupervisedAligner().fit(src, tgt, [("nope", "nada")])


def test_translate_and_oov():
    src, tgt, train, test = make_pair(n_words=800, dim=20, noise=0.2, seed=5)
    model = SupervisedAligner(refine=0).fit(src, tgt, train)
    word, gold = test[0]
    hits = model.translate(src, tgt, [word], k=3)[0]
    assert hits[0][0] == gold and len(hits) == 3 and hits[0][1] >= hits[1][1]
    with pytest.raises(KeyError):
        model.translate(src, tgt, ["not-a-word"])
