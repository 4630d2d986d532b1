"""The output contract (mapalign.cli_output), for every command that offers --json: stdout is
exactly one JSON document on success, on a run that did not converge and on refused input,
with and without -q; everything else goes to stderr; the exit status is the one of
EXIT_CODES for each case. A command that offers --json and has no row in SCENARIOS fails the
test: a command added later cannot skip the contract."""
import json
import shutil

import click
import numpy as np
import pytest
from click.testing import CliRunner

from mapalign.cli import main
from mapalign.cli_output import EXIT_CODES, Command
from mapalign.loading import Embeddings
from mapalign.synthetic import make_family, make_pair, write_demo

from conftest import write_inputs

UNSUP = ["--unsupervised", "--restarts", "1", "--null-draws", "1", "--similarity-vocab", "300"]
OUT = "{out}"  # replaced by a new path for every invocation


def runner():
    try:
        return CliRunner(mix_stderr=False)  # click < 8.2: stderr apart only when asked
    except TypeError:
        return CliRunner()  # click >= 8.2: result.stdout never holds stderr


def invoke(args):
    return runner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """Small inputs, a supervised run, a multilingual run, a folder that is not a run."""
    d = tmp_path_factory.mktemp("contract")
    src, tgt, train, test = make_pair(n_words=500, dim=12, noise=0.2, seed=2)
    rng = np.random.default_rng(5)
    noise = Embeddings([f"b{i}" for i in range(500)],
                       rng.standard_normal((500, 12)).astype(np.float32))
    write_inputs(d, {"src.vec": src, "tgt.vec": tgt, "random.vec": noise},
                 {"train.txt": train, "test.txt": test})
    spaces, dicts, _ = make_family(("aa", "bb", "hub"), n_words=300, dim=12, noise=0.2,
                                   hub_noise=0.2, seed=3)
    write_inputs(d, {f"{lang}.vec": e for lang, e in spaces.items()},
                 {"aa-hub.txt": dicts[("aa", "hub")][:100],
                  "bb-hub.txt": dicts[("bb", "hub")][:100], "aa-bb.txt": dicts[("aa", "bb")]})
    write_inputs(d, {"tgt-random.vec": Embeddings(  # the target's words, random vectors
        tgt.words, rng.standard_normal((len(tgt), 12)).astype(np.float32))})
    write_demo(d / "demo", n_words=300, dim=12)
    (d / "empty").mkdir()
    r = invoke(["fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "-o", d / "run",
                "--refine", "1", "-q"])
    assert r.exit_code == 0, r.output
    r = invoke(["fit-multi", *(f"{lang}={d / lang}.vec" for lang in ("aa", "bb", "hub")),
                "--dict", f"aa-hub={d / 'aa-hub.txt'}", "--dict", f"bb-hub={d / 'bb-hub.txt'}",
                "--hub", "hub", "-o", d / "multi", "-q"])
    assert r.exit_code == 0, r.output
    # a run that failed its own check: an unsupervised fit against random vectors
    r = invoke(["fit", d / "src.vec", d / "tgt-random.vec", *UNSUP, "-o", d / "bad", "-q",
                "--json"])
    assert r.exit_code == 0 and "DID NOT CONVERGE" in r.stderr, r.output
    assert any("DID NOT CONVERGE" in w for w in json.loads(r.stdout)["warnings"])  # fit's too
    # a multilingual run one of whose unsupervised maps failed: the good run's report says so
    shutil.copytree(d / "multi", d / "bad-multi")
    report = json.loads((d / "bad-multi" / "report.json").read_text())
    report["multi"]["hub_fits"]["aa"] = {"converged": False}
    (d / "bad-multi" / "report.json").write_text(json.dumps(report))
    return d


def _multi_spaces(d):
    return [f"{lang}={d / lang}.vec" for lang in ("aa", "bb", "hub")]


# command -> [(case, args given the fixture's folder, exit status)]; every command is also
# run with an unknown option (exit 2)
SCENARIOS = {
    "fit": lambda d: [
        ("supervised", [d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "-o", OUT,
                        "--refine", "1"], 0),
        ("unsupervised", [d / "src.vec", d / "tgt.vec", *UNSUP, "-o", OUT], 0),
        ("not converged", [d / "src.vec", d / "random.vec", *UNSUP, "--strict", "-o", OUT], 3),
        ("a folder as input", [d / "empty", d / "tgt.vec", *UNSUP, "-o", OUT], 1),
        ("no such file", [d / "src.vec", d / "nope.vec", *UNSUP, "-o", OUT], 1),
        ("usage", [d / "src.vec", d / "tgt.vec", "-o", OUT], 2),  # no --dict nor --unsupervised
    ],
    "fit-multi": lambda d: [
        ("supervised", [*_multi_spaces(d), "--dict", f"aa-hub={d / 'aa-hub.txt'}",
                        "--dict", f"bb-hub={d / 'bb-hub.txt'}", "--hub", "hub", "-o", OUT], 0),
        ("no such file", [*_multi_spaces(d), "--dict", f"aa-hub={d / 'nope.txt'}",
                          "--hub", "hub", "-o", OUT], 1),
    ],
    "evaluate": lambda d: [
        ("done", [d / "run", "--dict", d / "test.txt"], 0),
        ("not a run", [d / "empty", "--dict", d / "test.txt"], 1),
        ("a folder as dictionary", [d / "run", "--dict", d / "empty"], 1),
        ("no dictionary", [d / "run"], 0),
        ("no dictionary, an option of --dict", [d / "run", "--eval-vocab", "5"], 2),
        ("no dictionary, a multilingual run", [d / "multi"], 1),
    ],
    "report": lambda d: [
        ("done", [d / "run", "--dict", d / "test.txt", "-o", OUT], 0),
        ("not a run", [d / "empty", "--dict", d / "test.txt", "-o", OUT], 1),
        ("no dictionary", [d / "run", "-o", OUT], 0),
    ],
    "compare": lambda d: [
        ("done", [d / "run", d / "run", "--dict", d / "test.txt"], 0),
        ("no such run", [d / "run", d / "nope", "--dict", d / "test.txt"], 1),
        ("no dictionary", [d / "run", d / "bad"], 0),
    ],
    "export": lambda d: [
        ("done", [d / "run", "-o", OUT, "--no-vectors"], 0),
        ("not a run", [d / "empty", "-o", OUT], 1),
    ],
    "apply": lambda d: [
        ("done", [d / "run", d / "src.vec", "-o", OUT], 0),
        ("a folder as vectors", [d / "run", d / "empty", "-o", OUT], 1),
    ],
    "translate": lambda d: [
        ("done", [d / "run", _a_source_word(d), "-k", "2"], 0),
        ("a word it does not know", [d / "run", "nosuchword"], 1),
        ("multilingual", [d / "multi", "aa5", "--from", "aa", "--to", "bb"], 0),
    ],
    "evaluate-multi": lambda d: [
        ("done", [d / "multi", "--dict", f"aa-bb={d / 'aa-bb.txt'}"], 0),
        ("a two-language run", [d / "run", "--dict", f"aa-bb={d / 'aa-bb.txt'}"], 1),
        ("no dictionary", [d / "multi"], 0),
        ("no dictionary, a two-language run", [d / "run"], 1),
    ],
    "export-multi": lambda d: [
        ("done", [d / "multi", "-o", OUT, "--no-vectors"], 0),
        ("not a run", [d / "empty", "-o", OUT], 1),
    ],
    "demo": lambda d: [
        ("done", ["--data-dir", d / "demo", "-o", OUT], 0),
        ("a file as data folder", ["--data-dir", d / "src.vec", "-o", OUT], 1),
    ],
}


def _a_source_word(d):
    return (d / "test.txt").read_text().split()[0]


def _json_commands():
    return sorted(name for name, cmd in main.commands.items()
                  if any("--json" in getattr(p, "opts", ()) for p in cmd.params))


def test_every_command_with_json_is_in_the_table():
    assert _json_commands() == sorted(SCENARIOS)
    assert all(isinstance(cmd, Command) for cmd in main.commands.values())


def _one_document(r, args):
    try:
        return json.loads(r.stdout)  # one document, nothing before or after it
    except json.JSONDecodeError as e:
        raise AssertionError(f"{args}: stdout is not one JSON document ({e}):\n{r.stdout}"
                             f"\n--- stderr:\n{r.stderr}") from None


@pytest.mark.parametrize("command", sorted(SCENARIOS))
def test_stdout_is_one_json_document_on_every_exit_path(command, d, tmp_path):
    cases = SCENARIOS[command](d) + [("usage: unknown option", ["--no-such-option"], 2)]
    for n, (case, args, status) in enumerate(cases):
        assert status in EXIT_CODES
        for m, extra in enumerate((["--json"], ["--json", "-q"], [])):
            out = tmp_path / f"out{n}-{m}"
            full = [command, *(out if a == OUT else a for a in args), *extra]
            r = invoke(full)
            assert r.exit_code == status, (case, full, r.output)
            if status != 0:
                assert "Error: " in r.stderr, (case, full, r.stderr)
            if "--json" not in extra:
                continue
            doc = _one_document(r, full)
            assert isinstance(doc, dict), full
            if status == 0:
                assert "error" not in doc, (case, doc)
            else:
                assert doc["exit_code"] == status and doc["error"], (case, doc)
            if status == 3:  # the run's report, with the error and the verdict's warnings
                assert doc["unsupervised"]["converged"] is False
                assert any("DID NOT CONVERGE" in w for w in doc["warnings"]), doc["warnings"]


def test_what_a_command_prints_cannot_break_the_document():
    """The mechanism itself: under --json, click.echo and print go to stderr, and an error
    raised by the command still leaves one document."""
    @click.group()
    def group():
        pass

    @group.command(cls=Command)
    @click.option("--json", "as_json", is_flag=True)
    @click.option("--fail", is_flag=True)
    def chatty(as_json, fail):
        click.echo("progress for people")
        print("a stray print")
        if fail:
            raise click.ClickException("refused")
        return {"answer": 42}

    r = runner().invoke(group, ["chatty", "--json"])
    assert json.loads(r.stdout) == {"answer": 42, "warnings": []}
    assert "progress for people" in r.stderr and "a stray print" in r.stderr
    r = runner().invoke(group, ["chatty", "--json", "--fail"])
    assert r.exit_code == 1 and json.loads(r.stdout) == {"error": "refused", "exit_code": 1}
    r = runner().invoke(group, ["chatty"])
    assert r.stdout == "progress for people\na stray print\n"


def test_exit_codes_are_in_the_help():
    r = invoke(["--help"])
    for code, what in EXIT_CODES.items():
        assert f"{code:>3}  {what}" in r.stdout


# ------------------------------------------------------------- a run's verdict travels with it
# every command that reads a run: its arguments, given the fixture's folder and the run
RUN_CASES = {
    "evaluate": lambda d, run: [run, "--dict", d / "test.txt"],
    "evaluate (no dictionary)": lambda d, run: [run],
    "compare (no dictionary)": lambda d, run: [d / "run", run],
    "evaluate-multi (no dictionary)": lambda d, run: [run],
    "report": lambda d, run: [run, "--dict", d / "test.txt", "-o", OUT],
    "compare": lambda d, run: [d / "run", run, "--dict", d / "test.txt"],
    "export": lambda d, run: [run, "-o", OUT, "--no-vectors"],
    "apply": lambda d, run: [run, d / "src.vec", "-o", OUT],
    "translate": lambda d, run: [run, _a_source_word(d)],
    "translate (multilingual)": lambda d, run: [run, "aa5", "--from", "aa", "--to", "bb"],
    "evaluate-multi": lambda d, run: [run, "--dict", f"aa-bb={d / 'aa-bb.txt'}"],
    "export-multi": lambda d, run: [run, "-o", OUT, "--no-vectors"],
}
MULTI = {"translate (multilingual)", "evaluate-multi", "export-multi",
         "evaluate-multi (no dictionary)"}


def test_every_command_that_reads_a_run_is_in_the_table_and_has_strict():
    from mapalign.cli_output import RunDir

    reads = {name for name, cmd in main.commands.items()
             if any(isinstance(p, click.Argument) and isinstance(p.type, RunDir)
                    for p in cmd.params)}
    assert reads == {case.split()[0] for case in RUN_CASES}
    for name in reads:
        assert "--strict" in {o for p in main.commands[name].params for o in p.opts}, name


@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_a_failed_run_is_warned_about_and_refused_under_strict(case, d, tmp_path):
    run = d / ("bad-multi" if case in MULTI else "bad")
    command = case.split()[0]

    def args(n, run=run):
        return [command, *(tmp_path / f"out{n}" if a == OUT else a
                           for a in RUN_CASES[case](d, run))]

    r = invoke(args(0) + ["-q", "--json"])  # -q silences progress, never a warning
    assert r.exit_code == 0, r.output
    assert "DID NOT CONVERGE" in r.stderr and str(run) in r.stderr, r.stderr
    assert any("DID NOT CONVERGE" in w for w in _one_document(r, args(0))["warnings"])
    r = invoke(args(1) + ["--strict", "--json"])
    assert r.exit_code == 3, r.output
    assert "refused under --strict" in r.stderr
    assert _one_document(r, args(1))["exit_code"] == 3
    good = d / ("multi" if case in MULTI else "run")
    r = invoke(args(2, good) + ["--strict", "-q"])  # a good run: not a word about it
    assert r.exit_code == 0 and "DID NOT CONVERGE" not in r.stderr, r.output


def test_the_verdict_of_every_kind_of_run():
    from mapalign.store import run_verdict

    assert run_verdict({}) == {"failed": False, "warnings": []}
    v = run_verdict({"heldout_check": {"p@1": 0.0, "words": 6}})
    assert v["failed"] and "held-out check failed" in v["warnings"][0]
    assert not run_verdict({"heldout_check": {"p@1": 40.0, "words": 6}})["failed"]
    v = run_verdict({"seed_dictionary": {"pairs": 10, "pairs_used": 7, "pairs_oov": 3},
                     "warnings": ["3 duplicate words dropped"]})
    assert not v["failed"] and v["warnings"] == [
        "the fit used 7 of 10 seed pairs (3 dropped: a word out of vocabulary)",
        "at fit: 3 duplicate words dropped"]
    v = run_verdict({"multi": {"hub": "en", "hub_fits": {"fr": {"converged": False},
                                                         "de": {"converged": True}}}})
    assert v["failed"] and "fr to en DID NOT CONVERGE" in v["warnings"][0]


def test_python_load_of_an_unsupervised_run_has_its_verdict(d):
    import mapalign

    model = mapalign.load(d / "bad")
    report = json.loads((d / "bad" / "report.json").read_text())
    assert model.converged_ is False
    assert model.criterion_ == pytest.approx(report["unsupervised"]["criterion"])


def test_an_unknown_command_with_json_is_one_document_too():
    r = CliRunner().invoke(main, ["no-such-command", "--json"])
    assert r.exit_code == 2
    assert json.loads(r.stdout) == {"error": "No such command 'no-such-command'.",
                                    "exit_code": 2}


def test_json_before_the_command_name_is_one_document_too():
    """`mapalign --json CMD ...`: --json belongs to the command, so this is a usage error,
    and with --json on the line it is still one JSON document on stdout."""
    for args in (["--json", "no-such-command"], ["--json", "evaluate", "run"]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, r.output
        doc = json.loads(r.stdout)
        assert doc["exit_code"] == 2 and "put it after the command's name" in doc["error"], doc
