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
