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
