"""Every file a user gives against a run is checked against what the run knows before any
work, by every command that reads one (a file of other languages stops with a message naming
the file, what was expected and the option to go on); and no output replaces what the user
had (a run written into a folder of other files)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from mapalign import Embeddings, SupervisedAligner, evaluate_bdi
from mapalign.cli import main
from mapalign.errors import InputMismatchError
from mapalign.loading import REFUSE_BELOW
from mapalign.runs import fit_run
from mapalign.synthetic import make_family, make_pair

from conftest import write_inputs


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """A two-language run, a multilingual run, and files of 'another language': a test
    dictionary of which 3% of the pairs are known (accidental shared words), vectors of
    which none is."""
    d = tmp_path_factory.mktemp("checks")
    src, tgt, train, test = make_pair(n_words=500, dim=16, noise=0.3, seed=3)
    spaces, dicts, _ = make_family(("aa", "bb", "hub"), n_words=300, dim=12, seed=3)
    dicts_ab = lambda n: dicts[("aa", "bb")][:n]  # noqa: E731
    foreign = [(f"zq{i}", t) for i, (_, t) in enumerate(test[:97])] + test[:3]
    foreign_ab = [(f"zq{i}", f"bb{i}") for i in range(97)] + dicts_ab(3)
    rng = np.random.default_rng(0)
    other = Embeddings([f"zq{i}" for i in range(300)], rng.standard_normal((300, 16)))
    write_inputs(d, {"src.vec": src, "tgt.vec": tgt, "other.vec": other,
                     **{f"{lang}.vec": e for lang, e in spaces.items()}},
                 {"train.txt": train, "test.txt": test, "foreign.txt": foreign,
                  "foreign-ab.txt": foreign_ab,
                  **{f"{a}-{b}.txt": p for (a, b), p in dicts.items()}})
    assert run("fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "--method",
               "procrustes", "--refine", "0", "-o", d / "run", "-q").exit_code == 0
    r = run("fit-multi", *[f"{lang}={d / lang}.vec" for lang in spaces], "--dict",
            f"aa-hub={d / 'aa-hub.txt'}", "--dict", f"bb-hub={d / 'bb-hub.txt'}", "--hub",
            "hub", "--method", "hub", "-o", d / "multi", "-q")
    assert r.exit_code == 0, r.output
    return d


# every command that reads a user's file against a run: (args, the file it reads)
CASES = {
    "evaluate": lambda d: (["evaluate", d / "run", "--dict", d / "foreign.txt"],
                           d / "foreign.txt"),
    "report": lambda d: (["report", d / "run", "--dict", d / "foreign.txt", "-o",
                          d / "page.html", "--force"], d / "foreign.txt"),
    "compare": lambda d: (["compare", d / "run", d / "run", "--dict", d / "foreign.txt"],
                          d / "foreign.txt"),
    "evaluate-multi": lambda d: (["evaluate-multi", d / "multi", "--dict",
                                  f"aa-bb={d / 'foreign-ab.txt'}"], d / "foreign-ab.txt"),
    "apply": lambda d: (["apply", d / "run", d / "other.vec", "-o", d / "out.vec",
                         "--force"], d / "other.vec"),
}


def test_every_command_reading_a_file_against_a_run_is_checked():
    """A command added later that reads a dictionary or vectors must take the option (and so
    be in CASES, where its check is tested)."""
    reads = {name for name, cmd in main.commands.items()
             if {p.name for p in cmd.params if not getattr(p, "is_flag", False)}
             & {"dictionary", "dictionaries", "vectors"}}
    checked = {name for name, cmd in main.commands.items()
               if "allow_swapped" in {p.name for p in cmd.params}}
    assert reads == checked == set(CASES) | {"fit", "fit-multi"}


@pytest.mark.parametrize("command", sorted(CASES))
def test_a_file_of_other_languages_is_refused_before_any_work(d, command):
    args, path = CASES[command](d)
    (d / "out.vec").unlink(missing_ok=True)
    r = run(*args)
    assert r.exit_code == 1, r.output
    assert f"Error: {path}" in r.output
    assert "another language" in r.output or "other languages" in r.output
    assert "(--no-swap-check to go on anyway)" in r.output
    assert "vocabular" in r.output and "words" in r.output  # what was expected
    assert not (d / "out.vec").exists()
    r = run(*args, "--no-swap-check")  # the user insists: a warning, not an error
    assert r.exit_code == 0, r.output
    assert command == "apply" or f"warning: {path}: low coverage" in r.output


def test_python_names_the_keyword_and_the_threshold_is_the_documented_one(d):
    src, tgt, train, test = make_pair(n_words=500, dim=16, noise=0.3, seed=3)
    model = SupervisedAligner(method="procrustes", refine=0).fit(src, tgt, train)
    n = 100
    known = int(REFUSE_BELOW * n)  # exactly at the threshold: used, with a warning
    pairs = test[:known] + [(f"zq{i}", "x") for i in range(n - known)]
    res = evaluate_bdi(model, src, tgt, pairs)
    assert res["pairs_used"] == known and "low coverage" in res["warnings"][0]
    with pytest.raises(InputMismatchError, match=r"allow_swapped=True to go on anyway"):
        evaluate_bdi(model, src, tgt, pairs[1:])  # one fewer: refused
    with pytest.raises(InputMismatchError, match="a dictionary of other languages"):
        SupervisedAligner(method="procrustes").fit(src, tgt, pairs[1:])  # seeds alike


def test_coverage_lost_to_eval_vocab_is_a_warning_naming_it(d):
    src, tgt, train, test = make_pair(n_words=500, dim=16, noise=0.3, seed=3)
    model = SupervisedAligner(method="procrustes", refine=0).fit(src, tgt, train)
    res = evaluate_bdi(model, src, tgt, test, eval_vocab=450)
    assert any("eval_vocab=450" in w and "left out" in w for w in res["warnings"])
    assert not evaluate_bdi(model, src, tgt, test)["warnings"]
    r = run("evaluate", d / "run", "--dict", d / "test.txt", "--eval-vocab", "450", "--json")
    assert r.exit_code == 0
    assert any("--eval-vocab 450" in w for w in json.loads(r.stdout)["warnings"])


@pytest.mark.parametrize("command", ["fit", "fit-multi"])
def test_fit_into_a_folder_of_other_files_is_refused_without_force(d, tmp_path, command):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    args = (["fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "--method",
             "procrustes", "--refine", "0"] if command == "fit" else
            ["fit-multi", *[f"{lang}={d / lang}.vec" for lang in ("aa", "bb", "hub")],
             "--dict", f"aa-hub={d / 'aa-hub.txt'}", "--dict", f"bb-hub={d / 'bb-hub.txt'}",
             "--hub", "hub", "--method", "hub"])
    r = run(*args, "-o", out, "-q")
    assert r.exit_code == 1
    assert f"Error: {out} is not a run and is not empty (1 entries: thesis.tex)" in r.output
    assert "--force" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
    r = run(*args, "-o", out, "-q", "--force")
    assert r.exit_code == 0, r.output
    assert (out / "thesis.tex").read_text() == "mine" and (out / "report.json").exists()
    # a run there is not "other files": refused as a run, replaced with --force
    r = run(*args, "-o", out, "-q")
    assert r.exit_code == 1 and "already holds a run (--force" in r.output


def test_a_refit_with_force_keeps_the_users_files_in_cache_and_names_a_foreign_report(
        d, tmp_path):
    """A folder's own cache/ files and a report.json that is not a run's are the user's: listed
    when refused; with --force the cache's user files survive a fit and a refit (only the run's
    cache files are removed), and a foreign report.json is said to be replaced."""
    args = ["fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "--method",
            "procrustes", "--refine", "0", "-q"]
    out = tmp_path / "mine"
    (out / "cache").mkdir(parents=True)
    (out / "cache" / "notes.txt").write_text("mine")
    r = run(*args, "-o", out)
    assert r.exit_code == 1 and "(1 entries: cache/notes.txt)" in r.output, r.output
    for _ in range(2):  # a fit into the folder, then a refit over the run
        assert run(*args, "-o", out, "--force").exit_code == 0
        assert run("translate", out, _first_word(d), "-q").exit_code == 0
        assert (out / "cache" / "notes.txt").read_text() == "mine"
        assert (out / "cache" / "index.json").exists()  # the run's cache sits beside it
    other = tmp_path / "results"
    other.mkdir()
    (other / "report.json").write_text('{"my": "results"}')
    r = run(*args, "-o", other)
    assert r.exit_code == 1, r.output
    assert "is not a run and is not empty (1 entries: report.json)" in r.output
    assert "report.json would be replaced" in r.output
    assert (other / "report.json").read_text() == '{"my": "results"}'


def _first_word(d):
    return (d / "train.txt").read_text().split()[0]


def test_python_fit_run_refuses_a_folder_of_other_files(d, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"not empty.*notes.txt.*force=True"):
        fit_run(d / "src.vec", d / "tgt.vec", tmp_path, d / "train.txt", method="procrustes",
                refine=0)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_evaluate_multi_checks_every_dictionary_before_evaluating_any(d, monkeypatch):
    from mapalign import runs

    evaluated = []
    monkeypatch.setattr(runs, "_evaluate_pair", lambda item, **kw: evaluated.append(item))
    with pytest.raises(InputMismatchError, match="foreign-ab.txt"):
        runs.evaluate_multi_run(d / "multi", {("aa", "hub"): d / "aa-hub.txt",
                                              ("aa", "bb"): d / "foreign-ab.txt"},
                                record=False)
    assert evaluated == []


def test_evaluating_on_the_seed_dictionary_is_warned_about(d, tmp_path):
    """The training dictionary as a test (by its checksum), or a test dictionary a fifth of
    whose source words were seed words (read again from where the fit read it): a warning, in
    the JSON and on stderr even with -q; a disjoint test dictionary: none."""
    def warned(path):
        r = run("evaluate", d / "run", "--dict", path, "--json", "-q")
        assert r.exit_code == 0, r.output
        said = [w for w in json.loads(r.stdout)["warnings"] if "seed" in w or "fitted" in w]
        assert all(w in r.stderr for w in said)
        return said

    assert warned(d / "test.txt") == []
    assert warned(d / "train.txt") == [f"{d / 'train.txt'} is the dictionary the run was "
                                       "fitted on: these scores measure the fit, not the "
                                       "translation of unseen words (optimistic)"]
    train = (d / "train.txt").read_text().splitlines()
    test = (d / "test.txt").read_text().splitlines()
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("\n".join(train[:len(test) // 2] + test) + "\n")
    said = warned(mixed)
    assert len(said) == 1 and "were seed words of the fit" in said[0], said
