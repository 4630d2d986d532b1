import numpy as np
import pytest

from mapalign import Embeddings, SupervisedAligner, cca, evaluate_bdi, procrustes
from mapalign.methods import RCSLS, MultiStep, make_solver
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


@pytest.mark.parametrize("method", ["procrustes", "cca", "multistep", "rcsls"])
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
    model.tgt_means_ = model.tgt_means_[:1]
    assert evaluate_bdi(model, src, tgt, test)["csls"]["p@1"] < 5


def test_refinement_helps_with_a_tiny_seed(device):
    src, tgt, train, test = make_pair(n_words=1500, dim=30, noise=0.8, seed=4)
    seed = train[:25]
    plain = SupervisedAligner(refine=0, device=device).fit(src, tgt, seed)
    refined = SupervisedAligner(refine=5, device=device).fit(src, tgt, seed)
    p_plain = evaluate_bdi(plain, src, tgt, test)["csls"]["p@1"]
    p_refined = evaluate_bdi(refined, src, tgt, test)["csls"]["p@1"]
    assert p_refined > p_plain + 10
    assert 1 <= len(refined.history_) <= 5


def test_fit_without_usable_pairs():
    src, tgt, _, _ = make_pair(n_words=200, dim=10)
    with pytest.raises(ValueError, match="none of its 1 pairs"):
        SupervisedAligner().fit(src, tgt, [("nope", "nada")])


def test_translate_and_oov(device):
    src, tgt, train, test = make_pair(n_words=800, dim=20, noise=0.2, seed=5)
    model = SupervisedAligner(refine=0, device=device).fit(src, tgt, train)
    word, gold = test[0]
    hits = model.translate(src, tgt, [word], k=3)[0]
    assert hits[0][0] == gold and len(hits) == 3 and hits[0][1] >= hits[1][1]
    with pytest.raises(KeyError):
        model.translate(src, tgt, ["not-a-word"])


@pytest.fixture(scope="module")
def unequal():
    """A 30-d source and a 40-d target: the target is the 30-d generated target embedded in
    40 dimensions by a known matrix with orthonormal rows, plus small noise."""
    src, tgt, train, test = make_pair(n_words=1200, dim=30, noise=0.3, seed=8)
    rng = np.random.default_rng(9)
    Q = np.linalg.qr(rng.standard_normal((40, 30)))[0].T  # 30 x 40, orthonormal rows
    vecs = tgt.vectors @ Q + 0.01 * rng.standard_normal((len(tgt), 40))
    return src, tgt, Embeddings(tgt.words, vecs.astype(np.float32)), Q, train, test


def test_procrustes_with_unequal_dimensions_recovers_the_semi_orthogonal_map(unequal):
    src, tgt30, tgt40, Q, train, test = unequal
    kw = dict(method="procrustes", refine=0, normalize="none")
    W30 = SupervisedAligner(**kw).fit(src, tgt30, train).W_src_
    model = SupervisedAligner(**kw).fit(src, tgt40, train)
    W = model.W_src_
    assert W.shape == (30, 40)
    np.testing.assert_allclose(W @ W.T, np.eye(30), atol=1e-4)  # orthonormal rows
    np.testing.assert_allclose(W, W30 @ Q, atol=0.05)  # the known map
    assert evaluate_bdi(model, src, tgt40, test)["csls"]["p@1"] > 90


@pytest.mark.parametrize("method", ["cca", "multistep", "rcsls"])
def test_other_methods_take_unequal_dimensions(unequal, method):
    src, _, tgt40, _, train, test = unequal
    model = SupervisedAligner(method=method, refine=1).fit(src, tgt40, train)
    assert model.W_src_.shape[1] == model.W_tgt_.shape[1] <= 40
    assert evaluate_bdi(model, src, tgt40, test)["csls"]["p@1"] > 85


def test_multistep_reduces_to_procrustes_and_cca(rng):
    X = rng.standard_normal((300, 12)).astype(np.float32)
    Z = (X @ np.linalg.qr(rng.standard_normal((12, 12)))[0]
         + 0.3 * rng.standard_normal((300, 12))).astype(np.float32)
    plain = MultiStep(whiten=False, src_reweight=0, tgt_reweight=0, src_dewhiten=None,
                      tgt_dewhiten=None)
    A, B = plain(X, Z)
    np.testing.assert_allclose(A @ B.T, procrustes(X, Z), atol=1e-4)  # same shared space
    # whitening + orthogonal mapping + reduction = CCA's projections (uncentred data)
    Xc, Zc = X - X.mean(0), Z - Z.mean(0)
    A, B = MultiStep(src_reweight=0, tgt_reweight=0, src_dewhiten=None, tgt_dewhiten=None,
                     dims=5, reg=0)(Xc, Zc)
    Ac, Bc = cca(Xc, Zc, reg=0)
    corr = lambda P, R: [abs(np.corrcoef(P[:, i], R[:, i])[0, 1]) for i in range(5)]  # noqa
    np.testing.assert_allclose(corr(Xc @ A, Zc @ B), corr(Xc @ Ac[:, :5], Zc @ Bc[:, :5]),
                               atol=1e-3)
    assert A.shape == (12, 5)
    with pytest.raises(ValueError, match="src_dewhiten"):
        MultiStep(src_dewhiten="both")(X, Z)


def test_rcsls_lowers_its_loss_and_stays_in_the_spectral_ball():
    src, tgt, train, _ = make_pair(n_words=800, dim=20, noise=0.8, seed=6)
    X = src.vectors / np.linalg.norm(src.vectors, axis=1, keepdims=True)
    Z = tgt.vectors / np.linalg.norm(tgt.vectors, axis=1, keepdims=True)
    s = np.array([src.index[a] for a, _ in train])
    t = np.array([tgt.index[b] for _, b in train])
    W, hist = RCSLS(lr=0.5, iterations=15).fit(X, Z, X[s], Z[t])
    losses = [h["loss"] for h in hist]
    assert min(losses) < losses[0] - 1e-3  # it improves on its Procrustes start
    assert np.linalg.norm(W, 2) <= 1 + 1e-4
    assert make_solver("rcsls", X, Z)(X[s], Z[t])[1].shape == (20, 20)


def test_refine_auto_is_decided_on_held_out_seed_words_only():
    src, tgt, train, test = make_pair(n_words=1500, dim=30, noise=0.8, seed=4)
    model = SupervisedAligner(refine="auto").fit(src, tgt, train[:60])
    choice = model.refine_choice_
    scores = choice["heldout_p@1_by_round"]
    assert choice["heldout_words"] == 12  # 20% of the 60 seed source words
    assert choice["rounds"] == int(np.argmax(scores))  # the best held-out round, fewest on ties
    assert choice["rounds"] >= 1 and max(scores) > scores[0]  # a tiny seed: refinement pays
    # nothing but the seed pairs goes in: the same seed gives the same choice
    again = SupervisedAligner(refine="auto").fit(src, tgt, list(train[:60]))
    assert again.refine_choice_ == choice
    with pytest.raises(ValueError, match="refine must be 'auto'"):
        SupervisedAligner(refine=-1).fit(src, tgt, train)


def test_progress_names_the_score_that_chooses_rounds():
    """Choosing refinement rounds scores each round by held-out P@1, and the progress lines say
    so (the unsupervised fit's rounds are scored by the mean translation cosine instead)."""
    from mapalign import SupervisedAligner
    from mapalign.synthetic import make_pair

    src, tgt, train, _ = make_pair(n_words=600, dim=16, seed=5)
    said = []
    SupervisedAligner(method="procrustes", refine="auto", max_refine=2).fit(
        src, tgt, train, progress=said.append)
    rounds = [m for m in said if m.startswith("choosing rounds: refinement: round")]
    assert rounds and all("held-out P@1" in m for m in rounds), said
    assert not any("cosine" in m for m in said), said
