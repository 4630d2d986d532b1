import json

import numpy as np
import pytest

from mapalign import Embeddings, Mapping, evaluate_bdi, precision_at_k


def test_precision_at_k_any_gold_counts():
    retrieved = np.array([[5, 1, 2], [3, 4, 9], [7, 8, 0]])
    gold = [{1, 5}, {9}, {6}]
    p = precision_at_k(retrieved, gold, ks=(1, 2, 3))
    assert p == pytest.approx({"p@1": 100 / 3, "p@2": 100 / 3, "p@3": 200 / 3})


def test_evaluate_counts_coverage_and_eval_vocab(device):
    eye = np.eye(4, dtype=np.float32)
    src = Embeddings(["a", "b", "c", "d"], eye)
    tgt = Embeddings(["A", "B", "C", "D"], eye)
    model = Mapping.from_arrays(eye, eye, "none")
    pairs = [("a", "A"), ("b", "B"), ("b", "X"), ("c", "D"), ("d", "D"), ("z", "A")]
    res = evaluate_bdi(model, src, tgt, pairs, ks=(1,), eval_vocab=3, device=device)
    # "d D" and "c D": target beyond eval_vocab; "b X", "z A": out of vocabulary
    assert res["pairs"] == 6 and res["pairs_used"] == 2
    assert res["source_words"] == 5 and res["source_words_used"] == 2
    assert res["coverage"] == 40.0
    assert res["nn"]["p@1"] == 100.0 and res["csls"]["p@1"] == 100.0


def test_wrong_mapping_scores_zero(device):
    eye = np.eye(3, dtype=np.float32)
    perm = eye[[1, 2, 0]]
    model = Mapping.from_arrays(perm, eye, "none")
    src = Embeddings(["a", "b", "c"], eye)
    tgt = Embeddings(["A", "B", "C"], eye)
    res = evaluate_bdi(model, src, tgt, [("a", "A"), ("b", "B"), ("c", "C")], ks=(1, 3),
                       device=device)
    assert res["nn"]["p@1"] == 0.0 and res["nn"]["p@3"] == 100.0


def test_confidence_interval_contains_the_estimate_and_narrows():
    from mapalign.evaluation import bootstrap_ci

    rng = np.random.default_rng(3)
    small = rng.random(100) < 0.6
    large = rng.random(5000) < 0.6
    for v in (small, large):
        lo, hi = bootstrap_ci(v, seed=1)
        assert lo <= 100 * v.mean() <= hi
    width = lambda v: np.subtract(*bootstrap_ci(v, seed=1)[::-1])  # noqa: E731
    assert width(large) < width(small) / 4  # about sqrt(50) narrower
    assert bootstrap_ci(small, seed=1) == bootstrap_ci(small, seed=1)  # seeded


def test_compare_a_run_with_itself_and_with_another(tmp_path):
    from click.testing import CliRunner

    from mapalign.cli import main
    from mapalign.synthetic import make_pair

    from conftest import write_inputs

    src, tgt, train, test = make_pair(n_words=800, dim=16, noise=0.6, seed=44)
    write_inputs(tmp_path, {"s.vec": src, "t.vec": tgt},
                 {"train": train, "small": train[:30], "test": test})
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a])  # noqa: E731
    for name, d in (("good", "train"), ("weak", "small")):
        assert run("fit", tmp_path / "s.vec", tmp_path / "t.vec", "--dict", tmp_path / d, "-o",
                   tmp_path / name, "-q", "--refine", "0", "--method",
                   "procrustes").exit_code == 0
    same = json.loads(run("compare", tmp_path / "good", tmp_path / "good", "--dict",
                          tmp_path / "test", "--json").stdout)
    assert same["difference"] == 0 and same["mcnemar_exact_p"] == 1.0
    assert same["difference_ci95"] == [0.0, 0.0]
    diff = json.loads(run("compare", tmp_path / "good", tmp_path / "weak", "--dict",
                          tmp_path / "test", "--json").stdout)
    assert diff["difference"] == pytest.approx(diff["a"] - diff["b"])
    assert diff["difference"] > 0 and diff["mcnemar_exact_p"] < 0.01
    lo, hi = diff["difference_ci95"]
    assert lo <= diff["difference"] <= hi and lo > 0
    r = run("evaluate", tmp_path / "good", "--dict", tmp_path / "test")
    assert "95% CI" in r.output
