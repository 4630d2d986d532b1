"""Guards of the Python API: every fitted-only method of every aligner refuses an unfitted
model with NotFittedError; empty or unusable dictionaries, non-finite vectors and arrays of
the wrong shape are named errors before any solver runs; the CLI reports the same as one
``Error:`` line."""
import inspect

import numpy as np
import pytest
from click.testing import CliRunner

import mapalign as ma
from mapalign.cli import main
from mapalign.multi import MultiAligner
from mapalign.params import Params
from mapalign.synthetic import make_pair

from conftest import write_inputs

UNFITTED_OK = {"fit", "get_params", "set_params"}


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


# Every estimator class mapalign defines (a class added later is found too); the test
# below checks the list is not vacuous.
ALIGNERS = sorted({c for c in _subclasses(Params) if c.__module__.startswith("mapalign")},
                  key=lambda c: c.__qualname__)
FITTABLE = [c for c in ALIGNERS if hasattr(c, "fit")]


def _public_methods(cls):
    """``dir(cls)``'s public callables and properties, constructors and unfitted-ok excluded."""
    for name in dir(cls):
        if name.startswith("_") or name in UNFITTED_OK:
            continue
        static = inspect.getattr_static(cls, name)
        if isinstance(static, (classmethod, staticmethod)):
            continue  # constructors such as Mapping.from_arrays
        if isinstance(static, property) or callable(static):
            yield name, static


def _small(cls):
    """A quick instance of ``cls`` (defaults, shrunk where a fit would take long)."""
    if cls is ma.UnsupervisedAligner:
        return cls(restarts=1, null_draws=0, similarity_vocab=200, refine=1,
                   self_learning_vocab=300, refine_vocab=300, criterion_vocab=200, n_jobs=1)
    if cls is ma.SupervisedAligner:
        return cls(refine=1, refine_vocab=300)
    if cls is ma.SemiSupervisedAligner:
        return cls(self_learning_vocab=300, refine_vocab=300, patience=1, holdout=0)
    if cls is MultiAligner:
        return cls(hub="en", rounds=1, sweeps=2, vocab=300, criterion_vocab=200)
    return cls()


def _fit(model, src, tgt, pairs):
    """Fit ``model`` the way its ``fit`` takes the inputs (two sides, a dictionary, or
    languages)."""
    params = inspect.signature(type(model).fit).parameters
    if "spaces" in params:
        return model.fit({"xx": src, "en": tgt}, {("xx", "en"): pairs})
    if "pairs" in params:
        return model.fit(src, tgt, pairs)
    return model.fit(src, tgt)


def _takes_dictionary(cls):
    params = inspect.signature(cls.fit).parameters
    return "pairs" in params or "dictionaries" in params


@pytest.fixture(scope="module")
def pair():
    return make_pair(n_words=300, dim=8, noise=0.2, seed=3)


@pytest.fixture(scope="module")
def fitted(pair):
    src, tgt, train, _ = pair
    return {cls: _fit(_small(cls), src, tgt, train) for cls in FITTABLE}


def test_every_aligner_class_is_found():
    assert {ma.Mapping, ma.SupervisedAligner, ma.SemiSupervisedAligner,
            ma.UnsupervisedAligner, MultiAligner} <= set(ALIGNERS)
    assert set(FITTABLE) == set(ALIGNERS) - {ma.Mapping}
    assert issubclass(ma.NotFittedError, ValueError)
    assert issubclass(ma.NotFittedError, AttributeError)


@pytest.mark.parametrize("cls", ALIGNERS, ids=lambda c: c.__name__)
def test_every_public_method_refuses_an_unfitted_model(cls):
    model = cls.__new__(cls) if cls is ma.Mapping else _small(cls)
    names = dict(_public_methods(cls))
    assert "report_" in names  # the introspection sees the methods it must
    assert "transform" in names
    for name, static in names.items():
        with pytest.raises(ma.NotFittedError, match=f"not fitted yet.*{name}"):
            value = getattr(model, name)  # a property raises here
            value()  # a method raises before it looks at its (missing) arguments


@pytest.mark.parametrize("cls", FITTABLE, ids=lambda c: c.__name__)
def test_sklearn_check_is_fitted(cls, fitted):
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.utils.validation import check_is_fitted

    with pytest.raises(SkNotFitted):
        check_is_fitted(_small(cls))
    check_is_fitted(fitted[cls])  # no error
    assert fitted[cls].report_()  # and the fitted-only methods answer


def test_a_loaded_model_is_fitted(fitted, pair, tmp_path):
    from sklearn.utils.validation import check_is_fitted

    src = pair[0]
    fitted[ma.SupervisedAligner].save(tmp_path / "m")
    back = ma.load(tmp_path / "m")
    check_is_fitted(back)
    np.testing.assert_array_equal(back.transform(src.vectors[:4]),
                                  fitted[ma.SupervisedAligner].transform(src.vectors[:4]))


@pytest.mark.parametrize("cls", [c for c in FITTABLE if _takes_dictionary(c)],
                         ids=lambda c: c.__name__)
def test_an_empty_or_unusable_dictionary_is_named(cls, pair):
    src, tgt, _, _ = pair
    with pytest.raises(ValueError, match="no pairs"):
        _fit(_small(cls), src, tgt, [])
    named = (ma.Embeddings(src.words, src.vectors, path="es.vec"),
             ma.Embeddings(tgt.words, tgt.vectors, path="en.vec"))
    with pytest.raises(ValueError, match=r"none of its 2 pairs has both words in the "
                                         r"vocabularies \(source: es.vec, 300 words; "
                                         r"target: en.vec, 360 words\)"):
        _fit(_small(cls), *named, [("nosuch", "word"), ("other", "one")])


def test_an_empty_test_dictionary_is_named(fitted, pair):
    src, tgt, _, _ = pair
    with pytest.raises(ValueError, match="no pairs"):
        ma.evaluate_bdi(fitted[ma.SupervisedAligner], src, tgt, [])


@pytest.mark.parametrize("bad, value", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")])
@pytest.mark.parametrize("cls", FITTABLE, ids=lambda c: c.__name__)
def test_non_finite_vectors_are_named_before_any_solver(cls, pair, bad, value, monkeypatch):
    src, tgt, train, _ = pair

    def no_solver(*a, **k):  # normalisation is every fit's first numeric step
        raise AssertionError("a fit went on with non-finite vectors")

    for module in ("mapalign.mapping", "mapalign.multi"):
        monkeypatch.setattr(f"{module}.normalize", no_solver)
    for side, (s, t) in (("source", (17, None)), ("target", (None, 42))):
        sv, tv = src.vectors.copy(), tgt.vectors.copy()
        if s is not None:
            sv[s, 3] = bad
        else:
            tv[t, 5] = bad
        bad_src = ma.Embeddings(src.words, sv, path="es.vec")
        bad_tgt = ma.Embeddings(tgt.words, tv)
        row, word = (17, src.words[17]) if s is not None else (42, tgt.words[42])
        label = side if cls is not MultiAligner else {"source": "xx", "target": "en"}[side]
        where = " es.vec" if s is not None else ""
        with pytest.raises(ValueError, match=rf"^{label} vectors{where}: row {row} "
                                             rf"\('{word}'\) holds {value} \(column"):
            _fit(_small(cls), bad_src, bad_tgt, train)


@pytest.mark.parametrize("cls", FITTABLE, ids=lambda c: c.__name__)
def test_arrays_instead_of_embeddings_are_refused_clearly(cls, pair):
    src, tgt, train, _ = pair
    with pytest.raises(TypeError, match="expected mapalign.Embeddings"):
        _fit(_small(cls), src.vectors, tgt, train)


def test_lists_are_accepted_as_arrays(fitted, pair):
    src, tgt, _, _ = pair
    listed = ma.Embeddings(src.words, src.vectors.tolist())
    np.testing.assert_array_equal(listed.vectors, src.vectors)
    model = fitted[ma.SupervisedAligner]
    np.testing.assert_array_equal(model.transform(src.vectors[:3].tolist()),
                                  model.transform(src.vectors[:3]))
    np.testing.assert_array_equal(model.transform_target(tgt.vectors[:3].tolist()),
                                  model.transform_target(tgt.vectors[:3]))
    multi = fitted[MultiAligner]
    np.testing.assert_array_equal(multi.transform("xx", src.vectors[:3].tolist()),
                                  multi.transform("xx", src.vectors[:3]))


@pytest.mark.parametrize("call, message", [
    (lambda m, v: m.transform(v[0]), r"expected a matrix .* shape \(8,\) \(one vector v: \[v\]"),
    (lambda m, v: m.transform(v[:2, :5]), "source vectors: vectors of 5 dimensions, the model "
                                          "maps 8"),
    (lambda m, v: m.transform_target([[1.0, 2.0], [3.0]]), "target vectors: .*rows of "
                                                           "different lengths"),
    (lambda m, v: m.transform([["a"] * 8]), "source vectors: expected a matrix of numbers"),
])
def test_bad_arrays_are_refused_clearly(fitted, pair, call, message):
    with pytest.raises(ValueError, match=message):
        call(fitted[ma.SupervisedAligner], pair[0].vectors)


def test_bad_arrays_for_embeddings_and_multi_are_refused_clearly(fitted, pair):
    src = pair[0]
    with pytest.raises(ValueError, match="vectors: .*rows of different lengths"):
        ma.Embeddings(["a", "b"], [[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match="2 words but vectors of shape"):
        ma.Embeddings(["a", "b"], [[1.0, 2.0]])
    multi = fitted[MultiAligner]
    with pytest.raises(ValueError, match="'zz' is not one of the model's languages"):
        multi.transform("zz", src.vectors[:2])
    with pytest.raises(ValueError, match="xx vectors: vectors of 7 dimensions"):
        multi.transform("xx", src.vectors[:2, :7])


def test_the_cli_reports_each_as_one_error_line(pair, tmp_path):
    src, tgt, train, _ = pair
    paths = write_inputs(tmp_path, {"s.vec": src, "t.vec": tgt},
                         {"d.txt": train, "bad.txt": [("nosuch", "word"), ("other", "one")]})
    lines = paths["s.vec"].read_text().split("\n")
    fields = lines[5].split(" ")
    fields[3] = "nan"
    lines[5] = " ".join(fields)
    (tmp_path / "nan.vec").write_text("\n".join(lines))
    (tmp_path / "empty.txt").write_text("\n")

    def fit(s, d):
        return CliRunner().invoke(main, ["fit", str(tmp_path / s), str(paths["t.vec"]),
                                         "--dict", str(tmp_path / d), "-o",
                                         str(tmp_path / "run"), "-q"])

    for args, message in [
            (("s.vec", "bad.txt"), "bad.txt: none of its 2 pairs has both words in the "
                                   "vocabularies (source: "),
            (("nan.vec", "d.txt"), "nan.vec:6: non-finite value (NaN or inf)"),
            (("s.vec", "empty.txt"), "empty.txt: empty dictionary")]:
        r = fit(*args)
        assert r.exit_code == 1, r.output
        errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and message in errors[0], r.output
        assert "Traceback" not in r.output
    assert not (tmp_path / "run").exists()


def test_a_method_added_later_is_covered(pair):
    class Later(ma.SupervisedAligner):
        def neighbours(self, word):
            return self.W_src_

        @property
        def size(self):
            return self.W_src_.shape

    with pytest.raises(ma.NotFittedError, match="before neighbours"):
        Later().neighbours("perro")
    with pytest.raises(ma.NotFittedError, match="before size"):
        Later().size
    model = Later(refine=0).fit(*pair[:3])
    assert model.size == (8, 8) and model.neighbours("x") is model.W_src_


@pytest.mark.parametrize("cls", FITTABLE, ids=lambda c: c.__name__)
def test_a_refused_refit_leaves_the_fitted_model_as_it_was(cls, fitted, pair):
    """The inputs are checked before anything fitted is replaced (a model fitted on one pair
    of languages and refused on another must not map with the means of the second)."""
    import copy

    src, tgt, train, _ = pair
    model = copy.deepcopy(fitted[cls])
    args = ("xx", src.vectors[:5]) if cls is MultiAligner else (src.vectors[:5],)
    before = model.transform(*args)
    other = ma.Embeddings(src.words, src.vectors + 1.0)  # other means
    sv = other.vectors.copy()
    sv[3, 0] = np.nan
    with pytest.raises(ValueError, match="holds NaN"):
        _fit(model, ma.Embeddings(src.words, sv), tgt, train)
    if _takes_dictionary(cls):
        with pytest.raises(ValueError, match="none of its"):
            _fit(model, other, tgt, [("nosuch", "word")])
    np.testing.assert_array_equal(model.transform(*args), before)
