"""The docs teach by examples that run: every fenced code block of README.md and docs/*.md is
executed here, or explicitly marked as not runnable, and docs/cli.md is what the commands say.

A fence's info string says what a block is:

* ``sh``: shell commands, run with bash (``set -e``) in order, one temporary folder per file,
  on the demo pair (``data/demo`` is linked there); ``mapalign`` is this checkout's command.
* ``python``: run in order in one namespace per file (as in a notebook), in a temporary folder
  holding the shared es-en pair as ``es.vec``, ``en.vec``, ``es-en.train.txt`` and
  ``es-en.test.txt`` (and ``data/demo``).
* ``python slow``: as ``python``, but only in the slow run (``pytest -m slow``; CI runs it),
  for a block over ~10 s of CPU (an unsupervised fit); later plain blocks must not need it.
* ``sh ci``: the fresh-machine commands at the top of the README; CI runs them (``.ci/run``),
  so here they are checked against ``.ci/run`` rather than run.
* ``sh no-run`` / ``python no-run``: cannot run here (network, GPU); counted, kept few.
* ``text``: output or usage shown to the reader, not code.
"""
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import real_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC_FILES = ["README.md"] + sorted(
    os.path.join("docs", n) for n in os.listdir(os.path.join(ROOT, "docs")) if n.endswith(".md"))
KINDS = {"sh", "python", "python slow", "sh ci", "sh no-run", "python no-run", "text"}
MAX_NO_RUN = 4  # across all files: a doc that cannot be run is the exception

_FENCE = re.compile(r"^(`{3,})(.*)$")


def code_blocks(text):
    """``[(info, first line number, code)]`` of the fenced blocks of a markdown text."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2).strip(), i + 1
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"unclosed code fence at line {start}")
        blocks.append((info, start, "\n".join(body) + "\n"))
        i += 1
    return blocks


def _blocks(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return code_blocks(f.read())


def test_the_block_parser_finds_blocks_and_their_kinds():
    text = "a\n```sh\nmapalign demo\n```\n\n````python no-run\nx = 1\n```\n````\n```\nbare\n```\n"
    assert code_blocks(text) == [("sh", 2, "mapalign demo\n"),
                                 ("python no-run", 6, "x = 1\n```\n"), ("", 10, "bare\n")]


@pytest.mark.parametrize("name", DOC_FILES)
def test_every_block_says_what_it_is(name):
    """A block without a known info string would be neither run nor counted."""
    bad = [(line, info) for info, line, _ in _blocks(name) if info not in KINDS]
    assert not bad, (f"{name}: code blocks at lines {bad} have no known kind; use one of "
                     f"{sorted(KINDS)} (see tests/test_docs.py)")


def test_no_run_blocks_are_few():
    no_run = {(name, line): info for name in DOC_FILES for info, line, _ in _blocks(name)
              if info.endswith("no-run")}
    print(f"no-run blocks: {sorted(no_run)}")
    assert len(no_run) <= MAX_NO_RUN, f"too many blocks marked no-run: {sorted(no_run)}"


def test_the_readme_starts_with_what_ci_runs():
    """The README's first block is the fresh-machine commands, and .ci/run runs exactly them
    (CI adds -q)."""
    info, _, code = _blocks("README.md")[0]
    assert info == "sh ci"
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = [shlex.split(line) for line in f if line.strip() and not line.startswith("#")]
    ci_words = [[w for w in cmd if w != "-q"] for cmd in ci]
    commands = [shlex.split(line) for line in code.splitlines() if line.strip()]
    assert len(commands) == 2
    for cmd in commands:
        assert [w for w in cmd if w != "-q"] in ci_words, f"README's {' '.join(cmd)!r} is not what .ci/run runs: {ci}"


def _bash_prelude():
    """``mapalign`` in the blocks is this checkout's command, whatever is installed."""
    py = shlex.quote(sys.executable)
    return ("set -euo pipefail\n"
            f"mapalign() {{ {py} -c 'import sys; from mapalign.cli import main; "
            "main(prog_name=\"mapalign\")' \"$@\"; }\n")


def _link_demo(folder):
    os.makedirs(os.path.join(folder, "data"), exist_ok=True)
    os.symlink(os.path.join(ROOT, "data", "demo"), os.path.join(folder, "data", "demo"))


def run_shell_blocks(name, folder, blocks=None):
    """Run the ``sh`` blocks of ``name`` in ``folder``; returns how many ran."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    ran = 0
    for info, line, code in blocks if blocks is not None else _blocks(name):
        if info != "sh":
            continue
        p = subprocess.run(["bash", "-c", _bash_prelude() + code], cwd=folder, env=env,
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, (f"{name}, the sh block at line {line} exits {p.returncode}"
                                   f":\n{code}\nstdout:\n{p.stdout[-2000:]}\nstderr:\n"
                                   f"{p.stderr[-3000:]}")
        ran += 1
    return ran


def _link_es_en(folder):
    es_en = real_data("es-en", "es.vec")
    for n in ("es.vec", "en.vec", "es-en.train.txt", "es-en.test.txt"):
        os.symlink(os.path.join(es_en, n), os.path.join(folder, n))


def run_python_blocks(name, folder, blocks=None, slow=False):
    """Run the ``python`` blocks of ``name`` (and the ``python slow`` ones if ``slow``) in
    order, in one namespace, in ``folder``."""
    kinds = ("python", "python slow") if slow else ("python",)
    blocks = [(line, code) for info, line, code in
              (blocks if blocks is not None else _blocks(name)) if info in kinds]
    namespace = {"__name__": "__docs__"}
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        for line, code in blocks:
            try:
                exec(compile(code, f"{name}:{line}", "exec"), namespace)
            except Exception as e:
                raise AssertionError(f"{name}, the python block at line {line} fails: "
                                     f"{type(e).__name__}: {e}\n{code}") from e
    finally:
        os.chdir(cwd)
    return len(blocks)


def _run_docs(name, folder, slow):
    blocks = _blocks(name)
    _link_demo(folder)
    if any(info.startswith("python") and not info.endswith("no-run") for info, _, _ in blocks):
        _link_es_en(folder)
    ran = run_shell_blocks(name, folder, blocks) + run_python_blocks(name, folder, blocks,
                                                                     slow)
    kinds = ("sh", "python", "python slow") if slow else ("sh", "python")
    assert ran == sum(info in kinds for info, _, _ in blocks)


@pytest.mark.parametrize("name", DOC_FILES)
def test_the_docs_code_blocks_run(name, tmp_path):
    """Shell blocks first (the walkthrough's runs), then the Python blocks, in one folder."""
    _run_docs(name, tmp_path, slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in DOC_FILES
                                  if any(b[0] == "python slow" for b in _blocks(n))])
def test_the_docs_slow_code_blocks_run(name, tmp_path):
    _run_docs(name, tmp_path, slow=True)


def test_a_failing_block_is_caught(tmp_path):
    """The mechanism itself: a block that uses a name no earlier block defined fails (the
    README's Python block once used an undefined ``few_pairs``), and so does a command that
    exits with an error."""
    blocks = code_blocks("```python\nx = 1\n```\n\n```python\nprint(x)\nfew_pairs\n```\n")
    with pytest.raises(AssertionError, match=r"doc.md, the python block at line 5 fails: "
                                             r"NameError: name 'few_pairs'"):
        run_python_blocks("doc.md", tmp_path, blocks)
    blocks = code_blocks("```sh\nmapalign --version\n```\n```sh\nmapalign fit no.vec\n```\n")
    with pytest.raises(AssertionError, match="the sh block at line 4 exits 1"):
        run_shell_blocks("doc.md", tmp_path, blocks)
    blocks = code_blocks("```sh\nmapalign evaluate . --dict none.txt | cat\n```\n")
    with pytest.raises(AssertionError, match="exits 1"):  # pipefail: a failure in a pipe
        run_shell_blocks("doc.md", tmp_path, blocks)


def _clidoc():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gen_cli_docs", os.path.join(ROOT, "scripts", "gen_cli_docs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current():
    clidoc = _clidoc()

    with open(os.path.join(ROOT, "docs", "cli.md"), encoding="utf-8") as f:
        current = f.read()
    assert current == clidoc.generate(), ("docs/cli.md is stale: regenerate it with "
                                          "`python scripts/gen_cli_docs.py`")


def test_cli_reference_lists_every_command_and_option():
    """The generator walks the commands: each command and each of its options is in it."""
    import click

    from mapalign.cli import main

    clidoc = _clidoc()

    text = clidoc.generate()
    for name, cmd in main.commands.items():
        assert f"## `mapalign {name}`" in text
        section = text.split(f"## `mapalign {name}`")[1].split("\n## ")[0]
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden:
                assert f"`{p.opts[0]}`" in section, (name, p.opts)
                if isinstance(p.type, click.Choice):
                    assert all(f"`{c}`" in section for c in p.type.choices), (name, p.opts)
