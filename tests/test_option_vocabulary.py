"""One vocabulary of options for every command of ``mapalign``, checked by introspection of the
click group (so a command or an option added later is checked too):

- every command declares its roles (mapalign.cli_options.ROLES), and each role's options are
  there: a command that searches has --device and --retrieval, one that queries given words
  --eval-vocab, one that prints --json and -q, one that creates outputs -o and --force, one
  that fits --device, --seed and --strict; a command that reads a run has --strict;
- the reverse: -o means the command creates, --retrieval that it searches;
- a flag means one thing: every option that two commands share has the same flags, type,
  choices, range, default and help in both (OWN lists the few whose help is the command's
  own: what -o writes, which dictionary --dict is).
"""
from collections import defaultdict

import click
import pytest

from mapalign import cli_options
from mapalign.cli import main
from mapalign.cli_options import FITS, OWN, QUERIES, ROLES, SEARCHES
from mapalign.cli_output import Path, RunDir


def _options(cmd):
    return [p for p in cmd.params if isinstance(p, click.Option)]


def _long(opt) -> str:
    """An option's name in the vocabulary: its longest flag."""
    return max(opt.opts, key=len)


def _flags(cmd) -> set:
    return {f for p in _options(cmd) for f in p.opts + p.secondary_opts}


def _type(t):
    """What a parameter type accepts, comparably."""
    out = [type(t).__name__]
    for attr in ("choices", "min", "max", "min_open", "max_open", "clamp", "exists",
                 "file_okay", "dir_okay", "writable", "readable"):
        if hasattr(t, attr):
            v = getattr(t, attr)
            out.append((attr, tuple(v) if attr == "choices" else v))
    return tuple(out)


def _signature(opt) -> dict:
    return {"flags": tuple(sorted(opt.opts)), "secondary": tuple(sorted(opt.secondary_opts)),
            "dest": opt.name, "type": _type(opt.type), "default": repr(opt.default),
            "help": opt.help, "is_flag": opt.is_flag, "multiple": opt.multiple,
            "required": opt.required, "show_default": opt.show_default, "nargs": opt.nargs,
            "callback": getattr(opt.callback, "__qualname__", None)}


def _commands():
    return sorted(main.commands.items())


def _problems_of_roles(commands) -> list:
    bad = []
    for name, cmd in commands:
        roles = getattr(cmd, "roles", None)
        if roles is None:
            bad.append(f"{name}: declares no roles (@main.command(roles=...), see "
                       "mapalign.cli_options.ROLES)")
            continue
        unknown = set(roles) - set(ROLES)
        if unknown:
            bad.append(f"{name}: unknown roles {sorted(unknown)}")
        if QUERIES in roles and SEARCHES not in roles:
            bad.append(f"{name}: queries, so it searches: declare {SEARCHES!r} too")
        flags = _flags(cmd)
        for role in roles:
            for flag in ROLES.get(role, ()):
                if flag not in flags:
                    bad.append(f"{name}: {role}, but has no {flag}")
        reads_run = any(isinstance(p, click.Argument) and isinstance(p.type, RunDir)
                        for p in cmd.params)
        if reads_run and "--strict" not in flags:
            bad.append(f"{name}: reads a run, but has no --strict")
        if cli_options.RECORDS in roles and not reads_run:
            bad.append(f"{name}: records into a run, but takes no run (a RunDir argument)")
        if "--out" in flags and cli_options.CREATES not in roles:
            bad.append(f"{name}: has -o, but does not declare that it creates outputs")
        if "--retrieval" in flags and SEARCHES not in roles:
            bad.append(f"{name}: has --retrieval, but does not declare that it searches")
    return bad


def _problems_of_meaning(commands) -> list:
    """Every flag (long or short) with one meaning across commands."""
    by_flag = defaultdict(lambda: defaultdict(list))
    for name, cmd in commands:
        for opt in _options(cmd):
            sig = _signature(opt)
            if _long(opt) in OWN:  # the command's own help, dest and type; the same flags
                sig = {"flags": sig["flags"], "secondary": sig["secondary"]}
            key = tuple(sorted(sig.items()))
            for flag in opt.opts + opt.secondary_opts:
                by_flag[flag][key].append(name)
    bad = []
    for flag, sigs in sorted(by_flag.items()):
        if len(sigs) > 1:
            (a, na), (b, nb), *_ = sigs.items()
            diff = {k for k, v in dict(a).items() if dict(b).get(k) != v}
            bad.append(f"{flag} differs between {'/'.join(na)} and {'/'.join(nb)} in "
                       f"{', '.join(sorted(diff))}")
    return bad


def test_every_command_declares_roles_and_has_their_options():
    assert _problems_of_roles(_commands()) == []


def test_every_flag_means_one_thing():
    assert _problems_of_meaning(_commands()) == []


def test_own_options_exist_and_are_shared():
    """No stale entry in OWN: each is an option of two commands or more."""
    counts = defaultdict(int)
    for _, cmd in _commands():
        for opt in _options(cmd):
            counts[_long(opt)] += 1
    assert {name: counts[name] for name in OWN if counts[name] < 2} == {}


def test_output_option_is_a_path_everywhere():
    for name, cmd in _commands():
        for opt in _options(cmd):
            if _long(opt) == "--out":
                assert isinstance(opt.type, Path), name


def test_k_has_a_default_for_every_command_that_takes_it():
    with_k = {name for name, cmd in _commands() if "-k" in _flags(cmd)}
    assert with_k == set(cli_options.K_DEFAULTS)


# ---- the checks fail when the vocabulary is broken ----------------------------------------

def _without(cmd, flag):
    """A copy of ``cmd`` without the option that has ``flag``."""
    import copy

    other = copy.copy(cmd)
    other.params = [p for p in cmd.params if flag not in getattr(p, "opts", ())]
    return other


@pytest.mark.parametrize("command,flag", [("export", "--device"),
                                          ("evaluate-multi", "--retrieval"),
                                          ("report", "--eval-vocab"), ("demo", "--force"),
                                          ("apply", "--json"), ("translate", "--strict")])
def test_a_missing_option_is_found(command, flag):
    commands = [(n, _without(c, flag) if n == command else c) for n, c in _commands()]
    assert any(p.startswith(f"{command}:") and (flag in p or "--strict" in p)
               for p in _problems_of_roles(commands))


def test_an_undeclared_command_is_found():
    @click.command(cls=main.command_class)
    @cli_options.json_option
    def new(as_json):
        pass

    assert _problems_of_roles(_commands() + [("new", new)]) == [
        "new: declares no roles (@main.command(roles=...), see mapalign.cli_options.ROLES)"]


@pytest.mark.parametrize("decorator,what", [
    (click.option("-k", type=click.Choice(["1", "5", "10"]), default="1"), "default"),
    (click.option("--device", type=click.Choice(["cpu", "gpu"]), default=None,
                  help=None), "help"),
    (click.option("--eval-vocab", type=click.IntRange(min=1), default=100000,
                  show_default=True, help="Retrieve among the first N target words."),
     "default"),
    (click.option("-q", "--quiet-please", is_flag=True), "flags"),
])
def test_a_diverging_option_is_found(decorator, what):
    @click.command(cls=main.command_class, roles=())
    @decorator
    def new(**kw):
        pass

    problems = _problems_of_meaning(_commands() + [("new", new)])
    assert problems and all("new" in p for p in problems), problems
    assert any(what in p for p in problems), problems


def test_roles_are_checked_by_kind():
    """A command that fits without --seed, one that has -o without creating."""
    @click.command(cls=main.command_class, roles=(FITS,))
    @cli_options.device_option
    @cli_options.strict_option
    @cli_options.output_option("out", "x")
    def new(**kw):
        pass

    problems = _problems_of_roles([("new", new)])
    assert "new: fits, but has no --seed" in problems
    assert "new: has -o, but does not declare that it creates outputs" in problems


# ---- the options act: what each new one changes (small generated data) ------------------

import json  # noqa: E402

import numpy as np  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from mapalign import backend  # noqa: E402
from mapalign.synthetic import make_family, make_pair, write_demo  # noqa: E402

from conftest import write_inputs  # noqa: E402


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _json(r):
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """A supervised two-language run and a multilingual run of generated languages."""
    d = tmp_path_factory.mktemp("vocab")
    src, tgt, train, test = make_pair(n_words=400, dim=12, noise=0.3, seed=4)
    write_inputs(d, {"src.vec": src, "tgt.vec": tgt}, {"train.txt": train, "test.txt": test})
    spaces, dicts, _ = make_family(("aa", "bb", "hub"), n_words=300, dim=12, noise=0.2,
                                   hub_noise=0.2, seed=3)
    write_inputs(d, {f"{lang}.vec": e for lang, e in spaces.items()},
                 {"aa-hub.txt": dicts[("aa", "hub")][:100],
                  "bb-hub.txt": dicts[("bb", "hub")][:100], "aa-bb.txt": dicts[("aa", "bb")]})
    assert _run("fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "-o",
                d / "run", "--refine", "1", "-q").exit_code == 0
    assert _run("fit-multi", *(f"{lang}={d / lang}.vec" for lang in ("aa", "bb", "hub")),
                "--dict", f"aa-hub={d / 'aa-hub.txt'}", "--dict", f"bb-hub={d / 'bb-hub.txt'}",
                "--hub", "hub", "-o", d / "multi", "-q").exit_code == 0
    return d


def _no_gpu():
    return backend._cupy() is None


def _dictionary(path):
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(a, b, float(s)) for a, b, s in rows]


def _vectors(path):
    lines = path.read_text().splitlines()[1:]
    return {ln.split()[0]: np.array(ln.split()[1:], dtype=np.float64) for ln in lines}


def test_export_retrieval_chooses_how_the_dictionary_is_induced(d, tmp_path):
    """--retrieval nn scores each pair by its cosine in the exported space; csls does not."""
    out = {}
    for m in ("nn", "csls"):
        doc = _json(_run("export", d / "run", "-o", tmp_path / m, "--retrieval", m,
                         "--dict-mode", "forward", "--no-mapping", "--json", "-q"))
        assert doc["dict_retrieval"] == m
        out[m] = _dictionary(tmp_path / m / "dictionary.txt")
    S, T = _vectors(tmp_path / "nn" / "src.vec"), _vectors(tmp_path / "nn" / "tgt.vec")

    def cos(a, b):
        return S[a] @ T[b] / np.linalg.norm(S[a]) / np.linalg.norm(T[b])

    assert all(abs(cos(a, b) - s) < 1e-4 for a, b, s in out["nn"])
    assert sum(abs(cos(a, b) - s) > 1e-3 for a, b, s in out["csls"]) > len(out["csls"]) / 2
    recorded = json.loads((d / "run" / "report.json").read_text())["exports"]
    assert [e["dict_retrieval"] for e in recorded[-2:]] == ["nn", "csls"]


def test_export_device_is_the_device_of_the_induction(d, tmp_path):
    import strict_xp
    from mapalign.runs import export_run

    # through the library, on the strict stand-in for CuPy: the vectors go up, the same
    # dictionary comes out
    cpu = export_run(d / "run", tmp_path / "cpu", vectors=False, mapping=False)
    strict_xp.reset()
    export_run(d / "run", tmp_path / "strict", vectors=False, mapping=False, device="strict")
    assert strict_xp.COUNTS["h2d"] >= 2
    assert cpu["dictionary_pairs"] > 0
    assert (tmp_path / "cpu" / "dictionary.txt").read_text() == \
        (tmp_path / "strict" / "dictionary.txt").read_text()
    # through the command line: --device gpu reaches it (refused where CuPy sees no GPU)
    r = _run("export", d / "run", "-o", tmp_path / "gpu", "--no-vectors", "--device", "gpu")
    if _no_gpu():
        assert r.exit_code == 1 and "--device gpu" in r.output, r.output
    else:
        assert r.exit_code == 0, r.output
        assert _dictionary(tmp_path / "gpu" / "dictionary.txt") == \
            pytest.approx(_dictionary(tmp_path / "cpu" / "dictionary.txt"))


def test_evaluate_multi_retrieval_and_device(d):
    from mapalign.runs import evaluate_multi_run
    import strict_xp

    args = [d / "multi", "--dict", f"aa-bb={d / 'aa-bb.txt'}", "--json", "-q"]
    both = _json(_run("evaluate-multi", *args))["pairs"]["aa-bb"]
    nn = _json(_run("evaluate-multi", *args, "--retrieval", "nn"))["pairs"]["aa-bb"]
    for part in ("run", "hub_only"):
        assert {"nn", "csls"} <= set(both[part]) and "csls" not in nn[part]
        assert nn[part]["nn"] == both[part]["nn"]
    strict_xp.reset()
    on = evaluate_multi_run(d / "multi", {("aa", "bb"): d / "aa-bb.txt"}, record=False,
                            device="strict")
    assert strict_xp.COUNTS["h2d"] > 0
    assert on["aa-bb"]["run"]["csls"]["p@1"] == both["run"]["csls"]["p@1"]
    r = _run("evaluate-multi", *args[:-2], "--device", "gpu")
    assert (r.exit_code == 1 and "--device gpu" in r.output) if _no_gpu() else \
        r.exit_code == 0, r.output


def test_report_retrieval_chooses_what_the_page_measures(d, tmp_path):
    both = _json(_run("report", d / "run", "--dict", d / "test.txt", "-o", tmp_path / "b.html",
                      "--json", "-q"))
    nn = _json(_run("report", d / "run", "--dict", d / "test.txt", "-o", tmp_path / "n.html",
                    "--retrieval", "nn", "--json", "-q"))
    assert set(both["metrics"]) == set(both["hubness"]) == {"nn", "csls"}
    assert set(nn["metrics"]) == set(nn["hubness"]) == set(nn["p1_by_band"]) - {"labels"} \
        == {"nn"}
    assert nn["metrics"]["nn"] == both["metrics"]["nn"]
    assert (both["top1_cosine"]["retrieval"], nn["top1_cosine"]["retrieval"]) == ("csls", "nn")
    assert "CSLS" not in (tmp_path / "n.html").read_text().split("<h2>Settings")[0]


def test_compare_k_is_any_whole_number(d):
    args = [d / "run", d / "run", "--dict", d / "test.txt", "--json", "-q"]
    evaluated = _json(_run("evaluate", d / "run", "--dict", d / "test.txt", "--json", "-q"))
    at = {k: _json(_run("compare", *args, "-k", k)) for k in ("1", "3", "5")}
    assert [at[k]["metric"] for k in at] == ["csls p@1", "csls p@3", "csls p@5"]
    assert at["1"]["a"] == evaluated["csls"]["p@1"] and at["5"]["a"] == evaluated["csls"]["p@5"]
    assert at["1"]["a"] <= at["3"]["a"] <= at["5"]["a"]
    assert _json(_run("compare", *args))["metric"] == "csls p@1"  # -k's default for compare
    assert _run("compare", *args, "-k", "0").exit_code == 2


def test_translate_k_default(d):
    word = (d / "test.txt").read_text().split()[0]
    doc = _json(_run("translate", d / "run", word, "--json"))
    assert len(doc["words"][word]["translations"]) == 5


def test_demo_force_and_retrieval(d, tmp_path):
    write_demo(tmp_path / "data", n_words=300, dim=12)
    args = ["demo", "--data-dir", tmp_path / "data", "-o", tmp_path / "runs", "--json"]
    first = _json(_run(*args, "--retrieval", "nn"))
    assert all(set(r["metrics"]) >= {"nn"} and "csls" not in r["metrics"]
               for r in first["runs"].values())
    again = _run(*args)
    assert again.exit_code == 1 and "--force" in again.output, again.output
    assert {"nn", "csls"} <= set(_json(_run(*args, "--force"))["runs"]["multistep"]["metrics"])


@pytest.mark.parametrize("name", sorted(main.commands))
def test_a_required_option_left_out_is_a_usage_error(name):
    """Every option that --help marks [required] is enforced by click (exit 2, 'Missing
    option'): an explicit default, even None, made click take the option as given, and the
    command failed later with a traceback (report and export without -o did)."""
    command = main.commands[name]
    ctx = command.make_context(name, [], resilient_parsing=True)
    for opt in command.params:
        if isinstance(opt, click.Option) and opt.required:
            value, _ = opt.consume_value(ctx, {})
            with pytest.raises(click.MissingParameter):
                opt.process_value(ctx, value)
