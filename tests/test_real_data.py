"""Integration on the real Spanish->English data in ../shared/data (see its MANIFEST.md)."""
import os

import pytest

from mapalign import SupervisedAligner, evaluate_bdi, load_dictionary, load_embeddings


@pytest.fixture(scope="module")
def es_en(shared_data):
    src = load_embeddings(os.path.join(shared_data, "es.vec"))
    tgt = load_embeddings(os.path.join(shared_data, "en.vec"))
    train = load_dictionary(os.path.join(shared_data, "es-en.train.txt"))
    test = load_dictionary(os.path.join(shared_data, "es-en.test.txt"))
    return src, tgt, train, test


def test_vectors_load_whole(es_en):
    src, tgt, _, _ = es_en
    assert (len(src), src.dim, len(tgt), tgt.dim) == (4774, 50, 6637, 50)


def test_default_supervised_fit_reaches_the_bar(es_en):
    """The default fit (Procrustes, then refinement) with CSLS: P@1 >= 63.5."""
    src, tgt, train, test = es_en
    model = SupervisedAligner().fit(src, tgt, train)
    res = evaluate_bdi(model, src, tgt, test)
    assert res["coverage"] == 100.0 and res["queries"] == 468
    assert res["csls"]["p@1"] >= 63.5
    assert res["csls"]["p@1"] > res["nn"]["p@1"]  # CSLS's hubness correction helps here


def test_plain_procrustes_and_cca(es_en):
    src, tgt, train, test = es_en
    procrustes = evaluate_bdi(SupervisedAligner(refine=0).fit(src, tgt, train), src, tgt, test)
    cca = evaluate_bdi(SupervisedAligner("cca", refine=0).fit(src, tgt, train), src, tgt, test)
    assert procrustes["csls"]["p@1"] >= 62.0
    assert cca["csls"]["p@1"] >= 50.0


def test_unsupervised_default_reaches_the_bar(es_en):
    """No dictionary at all (default init, seed 0): CSLS P@1 >= 63.0 on the test dictionary."""
    from mapalign.unsupervised import UnsupervisedAligner

    src, tgt, _, test = es_en
    model = UnsupervisedAligner(seed=0).fit(src, tgt)
    assert model.converged_
    res = evaluate_bdi(model, src, tgt, test)
    assert res["csls"]["p@1"] >= 63.0
