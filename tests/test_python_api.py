"""Python is first-class: every fitted attribute survives save and load, for every aligner;
a multilingual run loads as a MultiAligner that translates and transforms; ``save`` replaces
nothing unasked; the library's messages name Python keywords, the command line's its flags."""
import ast
import os
import pathlib
import re

import numpy as np
import pytest
from click.testing import CliRunner

import mapalign
from mapalign import MultiAligner, SemiSupervisedAligner, SupervisedAligner, \
    UnsupervisedAligner
from mapalign.cli import main
from mapalign.errors import SwappedError
from mapalign.fitted import encode, fitted_names
from mapalign.synthetic import make_family, make_pair

from conftest import write_inputs

SMALL = dict(refine_vocab=300)


@pytest.fixture(scope="module")
def pair():
    return make_pair(n_words=500, dim=16, noise=0.3, seed=3)


@pytest.fixture(scope="module")
def family():
    spaces, dicts, _ = make_family(("aa", "bb", "hub"), n_words=400, dim=12, noise=0.2,
                                   hub_noise=0.2, seed=3)
    return spaces, dicts


def _fit(name, pair, family):
    if name == "multi":
        spaces, dicts = family
        return MultiAligner(hub="hub", rounds=1, vocab=300, criterion_vocab=300).fit(
            spaces, {k: v[:150] for k, v in dicts.items() if "hub" in k})
    src, tgt, train, _ = pair
    if name == "supervised":
        return SupervisedAligner(method="procrustes", max_refine=1, **SMALL).fit(src, tgt,
                                                                                  train)
    if name == "semi-supervised":
        return SemiSupervisedAligner(self_learning_vocab=300, patience=1, **SMALL).fit(
            src, tgt, train[:100])
    return UnsupervisedAligner(restarts=1, null_draws=1, refine=1, criterion_vocab=300,
                               self_learning_vocab=300, similarity_vocab=(300,),
                               **SMALL).fit(src, tgt)


@pytest.mark.parametrize("name", ["supervised", "semi-supervised", "unsupervised", "multi"])
def test_load_restores_every_fitted_attribute(name, pair, family, tmp_path):
    """Whatever an aligner sets in fit (now or in a later version) comes back from load."""
    model = _fit(name, pair, family)
    assert model.save(tmp_path / "run") == str(tmp_path / "run")
    loaded = mapalign.load(tmp_path / "run")
    assert type(loaded) is type(model)
    fitted = [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]
    assert sorted(k for k in vars(loaded) if k.endswith("_") and not k.startswith("_")) == \
        sorted(fitted)
    assert len(fitted_names(model)) >= 5  # the diagnostics, not only the arrays
    for k in fitted:
        assert encode(getattr(loaded, k)) == encode(getattr(model, k)), k
    assert encode(loaded.get_params()) == encode(model.get_params())
    if name == "unsupervised":
        assert loaded.converged_ == model.converged_ and loaded.criterion_ == model.criterion_
        assert loaded.adversarial_schedule_ == model.adversarial_schedule_  # a dataclass


def test_save_replaces_nothing_unasked(pair, family, tmp_path):
    for model in (_fit("supervised", pair, family), _fit("multi", pair, family)):
        kind = type(model).__name__
        run = tmp_path / kind
        model.save(run)
        before = (run / "report.json").read_bytes()
        with pytest.raises(FileExistsError, match=r"already holds a run \(overwrite=True"):
            model.save(run)
        assert (run / "report.json").read_bytes() == before
        model.save(run, overwrite=True)
        mine = tmp_path / f"{kind}-mine"
        mine.mkdir()
        (mine / "notes.txt").write_text("mine")
        with pytest.raises(FileExistsError, match="not empty.*notes.txt.*overwrite=True"):
            model.save(mine)
        assert os.listdir(mine) == ["notes.txt"]


def test_multilingual_run_loads_as_a_multialigner_that_translates(family, tmp_path):
    assert "MultiAligner" in mapalign.__all__
    spaces, dicts = family
    paths = write_inputs(tmp_path, {f"{lang}.vec": e for lang, e in spaces.items()},
                         {f"{a}-{b}.txt": p[:150] for (a, b), p in dicts.items() if "hub" in b})
    r = CliRunner().invoke(main, ["fit-multi", *[f"{lang}={paths[lang + '.vec']}"
                                                 for lang in spaces],
                                  "--dict", f"aa-hub={paths['aa-hub.txt']}",
                                  "--dict", f"bb-hub={paths['bb-hub.txt']}", "--hub", "hub",
                                  "-o", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 0, r.output
    model = mapalign.load(tmp_path / "run")
    assert isinstance(model, MultiAligner) and model.languages_ == ["aa", "bb", "hub"]
    assert model.hub_fits_ and model.history_ and model.seed_info_  # diagnostics too
    # translate reads the run's own files; the same answer as the command
    with pytest.warns(UserWarning, match="translating 'aa7'"):
        got = model.translate("aa", "bb", ["aa5", "AA7"], k=3)
    assert len(got) == 2 and all(len(row) == 3 for row in got)
    from mapalign.runs import translate_multi_run

    ref = translate_multi_run(str(tmp_path / "run"), ["aa5"], "aa", "bb", k=3)
    assert [w for w, _ in got[0]] == [w for w, _ in ref["aa5"]["translations"]]
    with pytest.raises(KeyError, match="not in the aa vocabulary"):
        model.translate("aa", "bb", ["nosuchword"])
    with pytest.raises(ValueError, match="'xx' is not one of the model's languages"):
        model.transform("xx", spaces["aa"].vectors)
    X = model.transform("aa", spaces["aa"].vectors[:4])
    assert X.shape == (4, 12) and np.isfinite(X).all()
    # a model fitted in Python translates with the embeddings given
    fitted = _fit("multi", None, family)
    assert fitted.translate("aa", "bb", ["aa5"], k=3, src=spaces["aa"], tgt=spaces["bb"])


# -------------------------------------------------------------- messages name the options
_FLAG = re.compile(r"--[A-Za-z]")


def _docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                                     ast.Constant):
                yield body[0].value


def test_library_messages_hold_no_command_line_flag():
    """A flag in a library message is wrong in Python: messages name options through
    mapalign.errors.option, which names the flag only under the command line. Every string
    literal of the library (docstrings aside) but the command line's own modules is read."""
    root = pathlib.Path(mapalign.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name in ("cli.py", "cli_output.py", "cli_options.py") and path.parent == root:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {id(d) for d in _docstrings(tree)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    id(node) not in docs and _FLAG.search(node.value):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value!r}")
    assert not found, "\n".join(found)


def test_swapped_error_names_the_keyword_in_python_and_the_flag_in_the_cli(pair, tmp_path):
    src, tgt, train, _ = pair
    with pytest.raises(SwappedError) as err:
        SupervisedAligner(method="procrustes").fit(tgt, src, train)
    assert "allow_swapped=True" in str(err.value) and "--" not in str(err.value)
    paths = write_inputs(tmp_path, {"src.vec": src, "tgt.vec": tgt}, {"train.txt": train})
    r = CliRunner().invoke(main, ["fit", str(paths["tgt.vec"]), str(paths["src.vec"]),
                                  "--dict", str(paths["train.txt"]), "-o",
                                  str(tmp_path / "run"), "-q"])
    assert r.exit_code == 1 and "--no-swap-check" in r.output
    assert "allow_swapped" not in r.output
    # and Python again after the command: the command line's spelling does not leak
    with pytest.raises(SwappedError, match=r"allow_swapped=True"):
        SupervisedAligner(method="procrustes").fit(tgt, src, train)
