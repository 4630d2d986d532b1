"""A run's report.json is checked on read against the schema a run writes (mapalign.schema):
every field of the schema, given a wrong type or (where required) removed, is one 'Error:' line
naming the file and the field, from translate and evaluate alike; and no field of a real
report, whatever is done to it, gives a traceback (a field the code reads is in the schema)."""
import copy
import json
import os
import shutil

import pytest
from click.testing import CliRunner

from conftest import write_inputs
from mapalign.cli import main
from mapalign.schema import FIT, FIT_MULTI, MULTI, RUN, TYPES
from mapalign.synthetic import make_family, make_pair, vec_bytes


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real runs: supervised (evaluated and exported once), unsupervised, multilingual."""
    d = tmp_path_factory.mktemp("schema")
    src, tgt, train, test = make_pair(n_words=300, dim=12, noise=0.3, seed=5)
    (d / "src.vec").write_bytes(vec_bytes(src))
    (d / "tgt.vec").write_bytes(vec_bytes(tgt))
    (d / "train.txt").write_text("".join(f"{s} {t}\n" for s, t in train))
    (d / "test.txt").write_text("".join(f"{s} {t}\n" for s, t in test))
    assert run("fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "-o",
               d / "sup", "-q").exit_code == 0
    assert run("evaluate", d / "sup", "--dict", d / "test.txt", "-q").exit_code == 0
    assert run("export", d / "sup", "-o", d / "exp", "-q").exit_code == 0
    assert run("fit", d / "src.vec", d / "tgt.vec", "--unsupervised", "-o", d / "unsup", "-q",
               "--restarts", "1", "--null-draws", "1").exit_code == 0
    spaces, dicts, _ = make_family(("aa", "bb", "hub"), n_words=300, dim=12, noise=0.5, seed=3)
    seeds = {k: v[:60] for k, v in dicts.items() if "hub" in k}
    write_inputs(d, {f"{lang}.vec": e for lang, e in spaces.items()},
                 {f"{a}-{b}.txt": p for (a, b), p in {**seeds, ("aa", "bb"): dicts[("aa", "bb")]}
                  .items()})
    r = run("fit-multi", *[f"{lang}={d / f'{lang}.vec'}" for lang in spaces], "--dict",
            f"aa-hub={d / 'aa-hub.txt'}", "--dict", f"bb-hub={d / 'bb-hub.txt'}", "--hub", "hub",
            "-o", d / "multi", "-q")
    assert r.exit_code == 0, r.output
    assert run("evaluate-multi", d / "multi", "--dict", f"aa-bb={d / 'aa-bb.txt'}",
               "-q").exit_code == 0
    word = test[0][0]
    commands = {
        "sup": [["translate", word], ["evaluate", "--dict", d / "test.txt"]],
        "unsup": [["translate", word], ["evaluate", "--dict", d / "test.txt"]],
        "multi": [["translate", "aa5", "--from", "aa", "--to", "bb"],
                  ["evaluate-multi", "--dict", f"aa-bb={d / 'aa-bb.txt'}"]],
    }
    return d, commands


def _schemas(kind):
    return [RUN, FIT] if kind != "multi" else [RUN, MULTI, FIT_MULTI]


def _fields(value, schema, where=()):
    """``(path, spec, required)`` of every field of ``schema`` present in ``value``, and of
    every required one; list items are given as ``path + (0,)``."""
    for key, spec in schema.items():
        name = key.rstrip("?")
        names = [k for k in value if k not in schema and k + "?" not in schema] \
            if name == "*" else [name]
        for k in names:
            if k not in value:
                continue
            yield where + (k,), spec, not key.endswith("?") and name != "*"
            v = value[k]
            if isinstance(spec, dict) and isinstance(v, dict):
                yield from _fields(v, spec, where + (k,))
            elif isinstance(spec, list):
                yield where + (k, 0), spec[0], False
                if isinstance(spec[0], dict) and v and isinstance(v[0], dict):
                    yield from _fields(v[0], spec[0], where + (k, 0))


def _wrong(spec):
    """A value that ``spec`` refuses."""
    for candidate in ("abc", 12345, 1.5, True, None, [], {}):
        if isinstance(spec, tuple):
            return "abc"
        if isinstance(spec, (dict, list)):
            return 12345
        if not any(TYPES[n][1](candidate) for n in spec.split("|")):
            return candidate
    raise AssertionError(spec)


def _set(report, path, value=None, delete=False):
    out = copy.deepcopy(report)
    node = out
    for k in path[:-1]:
        node = node[k]
    if isinstance(node, list) and not node:  # an empty list: one item to make wrong
        node.append(None)
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def _dotted(path):
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")


def _variants(report, kind):
    seen = set()
    for schema in _schemas(kind):
        for path, spec, required in _fields(report, schema):
            if (path, "type") not in seen:
                seen.add((path, "type"))
                yield path, "wrong type", _set(report, path, _wrong(spec))
            if required and (path, "missing") not in seen:
                seen.add((path, "missing"))
                yield path, "missing", _set(report, path, delete=True)


@pytest.mark.parametrize("kind", ["sup", "unsup", "multi"])
def test_every_schema_field_wrong_or_missing_is_one_error_line(runs, tmp_path, kind):
    d, commands = runs
    run_dir = tmp_path / kind
    shutil.copytree(d / kind, run_dir)
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text())
    variants = list(_variants(report, kind))
    assert len(variants) > 40
    for path, how, broken in variants:
        report_path.write_text(json.dumps(broken))
        field = _dotted(path)
        for cmd in commands[kind]:
            r = run(cmd[0], run_dir, *cmd[1:])
            lines = r.output.strip().splitlines()
            assert r.exit_code == 1 and len(lines) == 1, (field, how, cmd[0], r.output)
            if how == "missing":
                assert lines[0] == f"Error: {report_path}: field '{field}' is missing", lines
            else:
                assert lines[0].startswith(f"Error: {report_path}: field '{field}' must be "), \
                    lines
    report_path.write_text(json.dumps(report))
    assert all(run(cmd[0], run_dir, *cmd[1:]).exit_code == 0 for cmd in commands[kind])


def _leaves(value, where=()):
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield where + (k,)
            yield from _leaves(v, where + (k,))
    elif isinstance(value, list) and value:
        yield where + (0,)
        yield from _leaves(value[0], where + (0,))


@pytest.mark.parametrize("kind", ["sup", "multi"])
def test_no_field_of_a_real_report_gives_a_traceback(runs, tmp_path, kind):
    """Every key of a real report (the schema's and all others), given another type or
    removed: the commands either do not read it (exit 0) or say so in one 'Error:' line
    naming the report. A field the code reads that the schema lacks fails here."""
    d, commands = runs
    run_dir = tmp_path / kind
    shutil.copytree(d / kind, run_dir)
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text())
    paths = list(_leaves(report))
    assert len(paths) > 50
    unread = set()  # keys no command reads, even in part: their insides are not tried
    for path in paths:
        if any(path[:n] in unread for n in range(1, len(path))):
            continue
        results = []
        # an object, a number or a removed key is a report that is not a run's: said so,
        # naming it; a string may be a value the code judges (a path that is not there)
        for broken, named in ((_set(report, path, {"x": 1}), True),
                              (_set(report, path, delete=True), not isinstance(path[-1], int)),
                              (_set(report, path, 12345), False),
                              (_set(report, path, "abc"), False)):
            report_path.write_text(json.dumps(broken))
            for cmd in commands[kind]:
                r = run(cmd[0], run_dir, *cmd[1:])
                assert r.exit_code in (0, 1) and not isinstance(r.exception, Exception) \
                    or isinstance(r.exception, SystemExit), (_dotted(path), cmd[0], r.exc_info)
                results.append(r.exit_code)
                if r.exit_code == 1:
                    lines = r.output.strip().splitlines()
                    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
                    assert not named or lines[0].startswith(f"Error: {report_path}: "), \
                        (_dotted(path), r.output)
        if not any(results[:2 * len(commands[kind])]):
            unread.add(path)


def test_a_model_saved_from_python_names_what_it_lacks(runs, tmp_path):
    """A model saved with save() records no input files: the commands that need them say
    which field of which report is missing."""
    import mapalign

    d, _ = runs
    mapalign.load(d / "sup").save(tmp_path / "saved")
    r = run("evaluate", tmp_path / "saved", "--dict", d / "test.txt")
    assert r.exit_code == 1 and r.output.strip() == (
        f"Error: {tmp_path / 'saved' / 'report.json'}: field 'inputs.source' is missing: the "
        "run does not name its source vectors (a model saved from Python?)")
    assert mapalign.load(tmp_path / "saved").W_src_.shape == (12, 12)  # Python: as before
