"""The aligners as scikit-learn estimators, and saved models."""
import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.base import clone

import mapalign as ma
from mapalign.cli import main
from mapalign.methods import MultiStep
from mapalign.synthetic import make_pair

from conftest import write_inputs


@pytest.fixture(scope="module")
def pair():
    return make_pair(n_words=600, dim=16, noise=0.3, seed=41)


@pytest.mark.parametrize("make", [
    lambda: ma.SupervisedAligner(method="multistep", refine=2, multistep=MultiStep(dims=10)),
    lambda: ma.UnsupervisedAligner(restarts=1, null_draws=1, similarity_vocab=(300, 600)),
])
def test_clone_and_params(make):
    model = make()
    copy = clone(model)
    assert type(copy) is type(model) and copy.get_params() == model.get_params()
    copy.set_params(seed=5)
    assert copy.seed == 5 and model.seed == 0
    assert "normalize" in model.get_params() and "device" in model.get_params()


def test_init_only_stores_and_fit_validates(pair):
    src, tgt, train, _ = pair
    model = ma.SupervisedAligner(method="bogus")  # no error yet: scikit-learn's contract
    with pytest.raises(ValueError, match="method must be one of"):
        model.fit(src, tgt, train)
    with pytest.raises(ValueError, match="init must be one of"):
        ma.UnsupervisedAligner(init="bogus").fit(src, tgt)


def test_fitted_attributes_end_in_underscore(pair):
    src, tgt, train, _ = pair
    model = ma.SupervisedAligner(refine=1)
    before = set(vars(model))
    model.fit(src, tgt, train)
    added = set(vars(model)) - before
    assert added and all(a.endswith("_") for a in added), added
    assert set(before) == set(model.get_params())


@pytest.mark.parametrize("kind", ["supervised", "unsupervised"])
def test_save_load_round_trip(pair, tmp_path, kind):
    src, tgt, train, test = pair
    model = (ma.SupervisedAligner(method="multistep", refine=1).fit(src, tgt, train)
             if kind == "supervised" else
             ma.UnsupervisedAligner(restarts=1, null_draws=0, similarity_vocab=600)
             .fit(src, tgt))
    model.save(tmp_path / "m")
    back = ma.load(tmp_path / "m")
    assert type(back) is type(model) and back.get_params() == model.get_params()
    np.testing.assert_array_equal(back.transform(src.vectors), model.transform(src.vectors))
    assert back.translate(src, tgt, [test[0][0]], k=3) == model.translate(src, tgt,
                                                                          [test[0][0]], k=3)
    assert ma.evaluate_bdi(back, src, tgt, test) == ma.evaluate_bdi(model, src, tgt, test)


def test_a_fitted_run_directory_loads_as_its_aligner(pair, tmp_path):
    src, tgt, train, _ = pair
    write_inputs(tmp_path, {"s.vec": src, "t.vec": tgt}, {"d.txt": train})
    r = CliRunner().invoke(main, ["fit", str(tmp_path / "s.vec"), str(tmp_path / "t.vec"),
                                  "--dict", str(tmp_path / "d.txt"), "-o",
                                  str(tmp_path / "run"), "-q", "--method", "procrustes"])
    assert r.exit_code == 0, r.output
    model = ma.load(tmp_path / "run")
    assert isinstance(model, ma.SupervisedAligner) and model.method == "procrustes"
    assert model.transform(src.vectors[:3]).shape == (3, 16)
