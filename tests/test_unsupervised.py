import json

import numpy as np
import pytest
from click.testing import CliRunner

from mapalign import Embeddings, evaluate_bdi
from mapalign.cli import main
from mapalign.synthetic import make_pair, vec_bytes
from mapalign.unsupervised import UnsupervisedAligner, adversarial_init, mean_cosine_criterion
from mapalign.unsupervised.adversarial import AdversarialSchedule
from mapalign.unsupervised.adversarial import _bce_grad, _Discriminator
from mapalign.unsupervised.criterion import convergence_test

from conftest import write_inputs


@pytest.fixture(scope="module")
def easy():
    return make_pair(n_words=1500, dim=30, noise=0.4, seed=11)


# A pair built like a distant language pair: rare words' vectors much noisier than frequent
# ones (noise x4 at the last rank), a non-orthogonal part and shuffled frequency ranks. The old
# default (similarity signatures over 4000 words, one start) collapses on it.
HARD = dict(n_words=3000, dim=40, noise=0.5, noise_growth=3, distortion=0.3, rank_shuffle=0.1,
            seed=21)


@pytest.fixture(scope="module")
def hard():
    return make_pair(**HARD)


@pytest.fixture(scope="module")
def hard_default(hard):
    src, tgt, _, _ = hard
    return UnsupervisedAligner().fit(src, tgt)


@pytest.mark.slow
def test_similarity_init_recovers_a_rotation_without_a_dictionary(easy):
    src, tgt, _, test = easy
    model = UnsupervisedAligner(similarity_vocab=1500, restarts=1, null_draws=1).fit(src, tgt)
    assert model.converged_
    assert evaluate_bdi(model, src, tgt, test)["csls"]["p@1"] > 80


@pytest.mark.slow
def test_old_default_collapses_on_the_hard_pair_and_says_so(hard):
    """One start with signatures over the whole vocabulary: the collapse is flagged."""
    src, tgt, train, test = hard
    model = UnsupervisedAligner(similarity_vocab=4000, restarts=1).fit(src, tgt)
    assert evaluate_bdi(model, src, tgt, train + test)["csls"]["p@1"] < 5
    assert model.converged_ is False
    test_ = model.convergence_
    assert model.criterion_ <= test_["null_level"] + test_["margin"]
    assert len(model.null_draws_) == 2 and all(not d["same_solution"] for d in model.null_draws_)


@pytest.mark.slow
def test_default_succeeds_on_the_hard_pair(hard, hard_default):
    src, tgt, train, test = hard
    model = hard_default
    assert model.converged_ is True
    # the old default gets < 5 here; the rarest words are too noisy for any method
    assert evaluate_bdi(model, src, tgt, train + test)["csls"]["p@1"] > 20
    assert model.criterion_ > model.convergence_["null_level"] + model.convergence_["margin"]
    # the restarts differ in what the initialisation sees, and the best is kept
    vocabs = [r["similarity_vocab"] for r in model.restarts_]
    assert vocabs == [1000, 2000, 4000][:len(vocabs)] and len(vocabs) >= 2
    assert model.stopped_early_ == (len(vocabs) < 3)
    assert model.criterion_ == pytest.approx(max(r["criterion"] for r in model.restarts_))


def test_criterion_ranks_good_above_random(hard, hard_default):
    src, tgt, _, _ = hard
    S, T = hard_default.mapped(src, tgt)
    good = mean_cosine_criterion(S, T)
    R = np.linalg.qr(np.random.default_rng(0).standard_normal((40, 40)))[0].astype(np.float32)
    bad = mean_cosine_criterion(S @ R, T)
    assert good > bad + 0.1


def test_convergence_test_leaves_out_draws_that_found_the_same_solution():
    t = np.arange(100)
    other = np.zeros(100, dtype=np.int64)
    res = convergence_test(0.8, t, [(0.8, t.copy()), (0.6, other)], margin=0.03)
    assert res["converged"] is True and res["null_level"] == 0.6
    assert [d["same_solution"] for d in res["null"]] == [True, False]
    assert convergence_test(0.62, t, [(0.6, other)], margin=0.03)["converged"] is False
    assert convergence_test(0.62, t, [], margin=0.03)["converged"] is None


def _no_timings(obj):
    if isinstance(obj, dict):
        return {k: _no_timings(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [_no_timings(v) for v in obj]
    return obj


@pytest.mark.slow
def test_same_seed_same_numbers(easy):
    src, tgt, _, _ = easy
    kw = dict(seed=3, similarity_vocab=800, refine=2, restarts=1, null_draws=1)
    a = UnsupervisedAligner(**kw).fit(src, tgt)
    b = UnsupervisedAligner(**kw).fit(src, tgt)
    np.testing.assert_array_equal(a.W_src_, b.W_src_)
    assert _no_timings(a.restarts_) == _no_timings(b.restarts_)
    assert a.null_draws_[0]["criterion"] == b.null_draws_[0]["criterion"]


def test_discriminator_gradient_matches_finite_differences(rng):
    dis = _Discriminator(4, 6, 2, np, rng)
    x = rng.standard_normal((5, 4)).astype(np.float64)
    dis.params = [[W.astype(np.float64), b.astype(np.float64)] for W, b in dis.params]
    y = np.array([0.9, 0.1, 0.9, 0.1, 0.9])
    _, g = _bce_grad(dis.forward(x), y)
    grads, g_in = dis.backward(g)
    eps = 1e-6
    for i, j in [(0, 0), (3, 2)]:
        xp_, xm = x.copy(), x.copy()
        xp_[i, j] += eps
        xm[i, j] -= eps
        num = (_bce_grad(dis.forward(xp_), y)[0] - _bce_grad(dis.forward(xm), y)[0]) / (2 * eps)
        assert g_in[i, j] == pytest.approx(num, rel=1e-4, abs=1e-8)
    W0 = dis.params[0][0]
    W0[1, 2] += eps
    up = _bce_grad(dis.forward(x), y)[0]
    W0[1, 2] -= 2 * eps
    down = _bce_grad(dis.forward(x), y)[0]
    W0[1, 2] += eps
    assert grads[0][0][1, 2] == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-8)


def test_adversarial_keeps_w_orthogonal(easy):
    src, tgt, _, _ = easy
    X, Z = src.vectors / np.linalg.norm(src.vectors, axis=1, keepdims=True), tgt.vectors
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    W, history = adversarial_init(X, Z, np.random.default_rng(0),
                                  AdversarialSchedule(epochs=2, epoch_size=640, hidden=64),
                                  criterion=lambda W: 0.0)
    assert len(history) == 2 and np.isfinite(history[-1]["dis_loss"])
    assert not np.allclose(W, np.eye(30))  # it moved
    np.testing.assert_allclose(W.T @ W, np.eye(30), atol=1e-2)


def test_adversarial_schedule_follows_the_device():
    import strict_xp
    from mapalign.unsupervised.adversarial import SCHEDULES, schedule_of

    assert schedule_of("auto", np) is SCHEDULES["cpu"]
    assert schedule_of("auto", strict_xp.xp) is SCHEDULES["paper"]
    custom = AdversarialSchedule(epochs=1)
    assert schedule_of(custom, np) is custom
    with pytest.raises(ValueError, match="adversarial schedule"):
        schedule_of("fast", np)
    assert SCHEDULES["paper"].epoch_size == 1_000_000 and SCHEDULES["paper"].hidden == 2048


def test_identical_and_numerals_inits(easy):
    src, tgt, pairs_train, test = easy
    # give 60 translation pairs the same spelling on both sides
    tgt_words = list(tgt.words)
    for s, t in pairs_train[:60]:
        tgt_words[tgt.index[t]] = s
    tgt2 = Embeddings(tgt_words, tgt.vectors)
    model = UnsupervisedAligner(init="identical", restarts=1, null_draws=0).fit(src, tgt2)
    assert model.converged_ is None  # no null draw: not tested
    assert model.restarts_[0]["seed_pairs"] == 60
    test2 = [(s, tgt_words[tgt.index[t]]) for s, t in test]
    assert evaluate_bdi(model, src, tgt2, test2)["csls"]["p@1"] > 80
    with pytest.raises(ValueError, match="only 0 identically spelled numerals"):
        UnsupervisedAligner(init="numerals", null_draws=0).fit(src, tgt2)


@pytest.mark.slow
def test_cli_unsupervised_strict_fails_on_unrelated_spaces(tmp_path):
    rng = np.random.default_rng(5)
    for name, words in (("a.vec", [f"a{i}" for i in range(800)]),
                        ("b.vec", [f"b{i}" for i in range(800)])):
        (tmp_path / name).write_bytes(vec_bytes(Embeddings(words, rng.standard_normal((800, 20)))))
    r = CliRunner().invoke(main, ["fit", str(tmp_path / "a.vec"), str(tmp_path / "b.vec"),
                                  "--unsupervised", "--strict", "-o", str(tmp_path / "run"),
                                  "-q"])
    assert r.exit_code == 3, r.output
    assert "DID NOT CONVERGE" in r.output and "from random starts" in r.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["unsupervised"]["converged"] is False and report["seed"] == 0


@pytest.mark.slow
def test_cli_unsupervised_records_seed_and_criterion(tmp_path, easy):
    src, tgt, _, test = easy
    write_inputs(tmp_path, {"s.vec": src, "t.vec": tgt}, {"test.txt": test})
    r = CliRunner().invoke(main, ["fit", str(tmp_path / "s.vec"), str(tmp_path / "t.vec"),
                                  "--unsupervised", "--seed", "7", "--strict",
                                  "--restarts", "1", "--similarity-vocab", "1500",
                                  "--null-draws", "1",
                                  "-o", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["seed"] == 7 and report["settings"]["init"] == "similarity"
    assert report["unsupervised"]["converged"] is True
    test = report["unsupervised"]["convergence_test"]
    assert report["unsupervised"]["criterion"] > test["null_level"] + test["margin"]
    assert report["settings"]["null_draws"] == 1
    assert report["unsupervised"]["null_draws"][0]["seed"] != 7


def test_unequal_dimensions_are_refused_before_any_work(easy):
    src, tgt, _, _ = easy
    small = Embeddings(tgt.words, tgt.vectors[:, :20])
    with pytest.raises(ValueError, match="source 30, target 20"):
        UnsupervisedAligner().fit(src, small)


def test_refinement_stops_at_the_first_round_that_does_not_raise_the_criterion():
    """A criterion that peaks at round 2: rounds 1 and 2 run, round 3 is the first not above
    the best, the loop stops there (recorded) and round 2's mapping is returned."""
    from mapalign.methods import make_solver
    from mapalign.refinement import RefineOptions, refine

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 8)).astype(np.float32)
    Z = rng.standard_normal((300, 8)).astype(np.float32)
    scores = iter([0.1, 0.2, 0.3, 0.25, 0.9, 0.95])
    seen = []

    def criterion(W_src, W_tgt):
        seen.append(W_src)
        return next(scores)

    rows = (np.arange(50), np.arange(50))
    opts = RefineOptions(rounds=5, stop_when_repeated=False, stop_when_no_gain=True)
    W, _, hist = refine(X, Z, make_solver("procrustes"), opts, rows=rows, criterion=criterion)
    assert [h["round"] for h in hist] == [0, 1, 2, 3]
    assert hist[-1]["stopped"] == "criterion did not rise"
    assert np.array_equal(W, seen[2])
    # without the option every round runs and the best (round 5) is kept
    scores = iter([0.1, 0.2, 0.3, 0.25, 0.9, 0.95])
    seen.clear()
    opts = RefineOptions(rounds=5, stop_when_repeated=False)
    W, _, hist = refine(X, Z, make_solver("procrustes"), opts, rows=rows, criterion=criterion)
    assert len(hist) == 6 and np.array_equal(W, seen[5])


def test_concurrent_procedures_change_no_number():
    """Procedures run one at a time or side by side (each its own seeds, one BLAS thread
    each): the same mapping, criterion, null draws and report."""
    src, tgt, _, _ = make_pair(n_words=600, dim=20, noise=0.3, seed=5)
    kw = dict(similarity_vocab=(300, 600), restarts=3, null_draws=2, keep_interval=2)
    one = UnsupervisedAligner(n_jobs=1, **kw).fit(src, tgt)
    two = UnsupervisedAligner(n_jobs=3, **kw).fit(src, tgt)
    assert (one.n_jobs_, two.n_jobs_) == (1, 3)
    np.testing.assert_array_equal(one.W_src_, two.W_src_)
    assert one.criterion_ == two.criterion_
    assert [d["criterion"] for d in one.null_draws_] == [d["criterion"] for d in two.null_draws_]
    assert _untimed(one.restarts_) == _untimed(two.restarts_)
    assert one.stopped_early_ == two.stopped_early_


def test_a_start_that_runs_alone_gets_every_blas_thread():
    """Starts after the first two run one at a time (each only when the ones before did not
    settle the run): with nothing beside them they use the BLAS threads the fit found, not
    the share of a worker."""
    from threadpoolctl import threadpool_info

    from mapalign.unsupervised.aligner import _cores

    def blas_threads():
        return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    src, tgt, _, _ = make_pair(n_words=300, dim=10, noise=0.3, seed=5)
    seen = {}

    def progress(msg):
        if msg.endswith("initialisation"):
            seen[msg.split(":")[0]] = blas_threads()

    before = blas_threads()
    model = UnsupervisedAligner(similarity_vocab=300, keep_interval=2, restarts=3, n_jobs=2,
                                margin=10.0).fit(src, tgt, progress=progress)  # never settled
    assert model.n_jobs_ == 2 and len(model.restarts_) == 3 and blas_threads() == before
    assert seen["restart 1/3 (seed 0)"] == max(1, _cores() // 2)
    assert seen["restart 3/3 (seed 2)"] == before


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def test_an_error_in_one_procedure_stops_the_fit():
    src, tgt, _, _ = make_pair(n_words=300, dim=10, noise=0.3, seed=5)
    seen = []

    def progress(msg):
        seen.append(msg)
        if "null draw 1/2: self-learning" in msg:
            raise KeyboardInterrupt  # as Ctrl-C would, inside a worker's progress line

    with pytest.raises(KeyboardInterrupt):
        UnsupervisedAligner(similarity_vocab=300, keep_interval=2, n_jobs=2).fit(
            src, tgt, progress=progress)
    assert not any("criterion" in m and m.startswith("restart") for m in seen)


# -- self-learning from a few seed pairs (semi-supervised) ---------------------------------

@pytest.fixture(scope="module")
def few_seeds(easy):
    src, tgt, train, test = easy
    return [train[i] for i in np.random.default_rng(0).choice(len(train), 25, replace=False)]


def test_semi_supervised_beats_its_seeds_alone(easy, few_seeds):
    from mapalign import SemiSupervisedAligner, SupervisedAligner

    src, tgt, _, test = easy
    semi = SemiSupervisedAligner().fit(src, tgt, few_seeds)
    alone = SupervisedAligner("procrustes", refine=0).fit(src, tgt, few_seeds)
    p_semi = evaluate_bdi(semi, src, tgt, test)["csls"]["p@1"]
    p_alone = evaluate_bdi(alone, src, tgt, test)["csls"]["p@1"]
    assert p_semi > 95 and p_semi > p_alone + 5, (p_semi, p_alone)
    assert semi.heldout_check_["words"] == 5 and semi.heldout_check_["p@1"] >= 60
    assert semi.history_[-1]["pairs"] >= len(few_seeds)
    assert len(semi.history_) > semi.patience  # it stopped for want of gain, not at once


def test_semi_supervised_from_wrong_seeds_warns(hard):
    from mapalign import SemiSupervisedAligner

    src, tgt, _, _ = hard
    rng = np.random.default_rng(3)
    wrong = [(src.words[i], tgt.words[j]) for i, j in zip(rng.integers(0, 1000, 40),
                                                          rng.integers(0, 1000, 40))]
    with pytest.warns(UserWarning, match="wrong solution"):
        model = SemiSupervisedAligner().fit(src, tgt, wrong)
    assert model.heldout_check_["p@1"] < 5


def test_semi_supervised_cli_round_trip(tmp_path, easy, few_seeds):
    src, tgt, _, test = easy
    paths = write_inputs(tmp_path, {"s.vec": src, "t.vec": tgt},
                         {"few.txt": few_seeds, "test.txt": test})
    runner = CliRunner()
    args = ["fit", str(paths["s.vec"]), str(paths["t.vec"]), "--dict", str(paths["few.txt"]),
            "--semi-supervised", "-o", str(tmp_path / "run")]
    r = runner.invoke(main, args + ["--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output[r.output.index("{"):])
    assert report["settings"]["mode"] == "semi-supervised"
    assert report["heldout_check"]["words"] == 5 and report["self_learning"]["rounds"] >= 1
    from mapalign import SemiSupervisedAligner, load

    assert isinstance(load(tmp_path / "run"), SemiSupervisedAligner)
    r = runner.invoke(main, args + ["--method", "procrustes", "--force"])
    assert r.exit_code == 2 and "--method: supervised fits only" in r.output
    r = runner.invoke(main, ["fit", str(paths["s.vec"]), str(paths["t.vec"]), "--unsupervised",
                             "--semi-supervised", "-o", str(tmp_path / "run2")])
    assert r.exit_code == 2 and "give --dict" in r.output
