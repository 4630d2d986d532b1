"""A newcomer's mistakes are caught, each with a message that says what to do: languages
swapped at fit, a reversed test dictionary, the target's vectors given to ``apply`` as the
source, a multilingual run given to a two-language command (and the reverse), ``--from`` on a
two-language run, an output folder that does not exist, Dask asked for where it is missing."""
import builtins
import json

import pytest
from click.testing import CliRunner

from mapalign.cli import main
from mapalign.synthetic import make_pair, vec_bytes


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    d = tmp_path_factory.mktemp("mistakes")
    src, tgt, train, test = make_pair(n_words=500, dim=16, noise=0.3, seed=3)
    (d / "src.vec").write_bytes(vec_bytes(src))
    (d / "tgt.vec").write_bytes(vec_bytes(tgt))
    (d / "train.txt").write_text("".join(f"{s} {t}\n" for s, t in train))
    (d / "test.txt").write_text("".join(f"{s} {t}\n" for s, t in test))
    (d / "test.reversed.txt").write_text("".join(f"{t} {s}\n" for s, t in test))
    # a test file of which only a few pairs fit (the rest name words of no vocabulary)
    (d / "test.sparse.txt").write_text(
        "".join(f"{s} {t}\n" for s, t in test[:5]) +
        "".join(f"nosuch{i} other{i}\n" for i in range(20)))
    r = run("fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "--method",
            "procrustes", "--refine", "0", "-o", d / "run", "-q")
    assert r.exit_code == 0, r.output
    return d


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_fit_with_swapped_languages_is_an_error_naming_the_file(fitted, tmp_path):
    d = fitted
    r = run("fit", d / "tgt.vec", d / "src.vec", "--dict", d / "train.txt", "-o",
            tmp_path / "swapped", "-q")
    assert r.exit_code == 1
    assert "did you swap SRC and TGT?" in r.output and str(d / "train.txt") in r.output
    assert not (tmp_path / "swapped" / "report.json").exists()
    # the user may insist; the run then records why it is suspicious
    r = run("fit", d / "tgt.vec", d / "src.vec", "--dict", d / "train.txt", "-o",
            tmp_path / "swapped", "-q", "--no-swap-check", "--method", "procrustes",
            "--refine", "0")
    assert r.exit_code == 1 and "none of its" in r.output  # no usable pair at all: named
    assert str(d / "train.txt") in r.output


def test_reversed_test_dictionary_is_refused_and_low_coverage_warns(fitted):
    d = fitted
    r = run("evaluate", d / "run", "--dict", d / "test.reversed.txt")
    assert r.exit_code == 1 and "did you swap SRC and TGT?" in r.output
    assert str(d / "test.reversed.txt") in r.output
    r = CliRunner().invoke(
        main, ["evaluate", str(d / "run"), "--dict", str(d / "test.sparse.txt"), "--json"])
    assert r.exit_code == 0
    metrics = json.loads(r.stdout)
    assert metrics["pairs_used"] == 5 and len(metrics["warnings"]) == 1
    assert "low coverage" in r.stderr and "low coverage" in metrics["warnings"][0]
    r = run("evaluate", d / "run", "--dict", d / "test.txt", "--json")
    assert json.loads(r.output)["warnings"] == []


def test_apply_refuses_the_other_sides_vectors(fitted, tmp_path):
    d = fitted
    r = run("apply", d / "run", d / "tgt.vec", "-o", tmp_path / "x.vec", "-q")
    assert r.exit_code == 1 and "--side target" in r.output
    assert not (tmp_path / "x.vec").exists()
    r = run("apply", d / "run", d / "tgt.vec", "--side", "target", "-o", tmp_path / "x.vec",
            "-q")
    assert r.exit_code == 0, r.output


def test_apply_into_a_missing_folder_creates_nothing(fitted, tmp_path):
    r = run("apply", fitted / "run", fitted / "src.vec", "-o", tmp_path / "no" / "dir" / "x.vec")
    assert r.exit_code == 1 and "no such folder" in r.output
    assert not (tmp_path / "no").exists()


def test_from_to_refused_on_a_two_language_run(fitted):
    r = run("translate", fitted / "run", "x", "--from", "es", "--to", "en")
    assert r.exit_code == 2 and "two-language run" in r.output


def test_multilingual_run_is_recognised_everywhere(fitted, tmp_path):
    d = fitted
    multi = tmp_path / "multi"
    r = run("fit-multi", f"aa={d / 'src.vec'}", f"bb={d / 'tgt.vec'}", "--hub", "bb",
            "--dict", f"aa-bb={d / 'train.txt'}", "--method", "hub", "-o", multi, "-q")
    assert r.exit_code == 0, r.output
    for args in (("evaluate", multi, "--dict", d / "test.txt"),
                 ("export", multi, "-o", tmp_path / "e"),
                 ("translate", multi, "x"),
                 ("report", multi, "--dict", d / "test.txt", "-o", tmp_path / "r.html"),
                 ("compare", multi, d / "run", "--dict", d / "test.txt"),
                 ("apply", multi, d / "src.vec", "-o", tmp_path / "a.vec")):
        r = run(*args)
        assert r.exit_code != 0, args
        assert "multilingual run" in r.output, (args, r.output)
        assert "evaluate-multi" in r.output or "--from LANG" in r.output, (args, r.output)
    r = run("evaluate-multi", d / "run", "--dict", f"aa-bb={d / 'test.txt'}")
    assert r.exit_code == 1 and "two-language run" in r.output


def test_fit_multi_counts_each_dictionary_and_catches_a_reversed_one(fitted, tmp_path):
    d = fitted
    args = [f"aa={d / 'src.vec'}", f"bb={d / 'tgt.vec'}", "--hub", "bb", "--method", "hub"]
    r = run("fit-multi", *args, "--dict", f"bb-aa={d / 'train.txt'}", "-o", tmp_path / "m1")
    assert r.exit_code == 1 and "did you mean aa-bb" in r.output
    assert str(d / "train.txt") in r.output
    r = CliRunner().invoke(main, ["fit-multi", *map(str, args), "--dict",
                                                  f"aa-bb={d / 'train.txt'}", "-o",
                                                  str(tmp_path / "m2"), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    info = report["multi"]["seed_dictionaries"]["aa-bb"]
    assert info["pairs_used"] == info["pairs"] > 0


def test_missing_dask_fails_before_reading_any_file(fitted, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_dask(name, *a, **k):
        if name.split(".")[0] in ("distributed", "dask"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    import mapalign.loading

    def boom(*a, **k):
        raise AssertionError("a vectors file was read before the scheduler was checked")

    monkeypatch.setattr(builtins, "__import__", no_dask)
    monkeypatch.setattr(mapalign.loading, "load_embeddings", boom)
    import mapalign.runs
    monkeypatch.setattr(mapalign.runs, "load_embeddings", boom)
    r = run("fit-multi", f"aa={fitted / 'src.vec'}", f"bb={fitted / 'tgt.vec'}", "--hub", "bb",
            "--dict", f"aa-bb={fitted / 'train.txt'}", "--scheduler", "local", "-o",
            tmp_path / "m")
    assert r.exit_code == 1 and "'dask' extra" in r.output and "pip install -e" in r.output


def test_bugs_keep_their_traceback(monkeypatch, fitted):
    import mapalign.runs

    def bug(*a, **k):
        raise KeyError("source")

    monkeypatch.setattr(mapalign.runs, "evaluate_run", bug)
    r = run("evaluate", fitted / "run", "--dict", fitted / "test.txt")
    assert isinstance(r.exception, KeyError)  # not turned into "Error: 'source'"


def test_help_shows_a_plain_percent_sign():
    r = run("fit", "--help")
    assert "20%" in r.output and "20%%" not in r.output
