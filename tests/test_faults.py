"""Faults around a run: commands at once (issue 25, part 3), a full disk and a read-only run
(part 4), what a killed process left behind (part 6). Commands run as separate processes where
it matters (locks are between processes); a full disk and a read-only run are injected in this
process (so CI, which runs as root, tests them) and made for real in a user namespace where one
can be made."""
import errno
import json
import os
import shutil
import subprocess
import sys
import time
import warnings

import pytest
from click.testing import CliRunner

from conftest import write_inputs
from mapalign import export, lock, store
from mapalign.cli import main
from mapalign.synthetic import make_pair

CLI = [sys.executable, "-c", "from mapalign.cli import main; main()"]


def _cli(*args, timeout=120):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)


def _start(*args):
    return subprocess.Popen(CLI + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(p, timeout=120):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A small generated pair, its dictionaries and one fitted run with its cache built."""
    d = tmp_path_factory.mktemp("pair")
    src, tgt, train, test = make_pair(n_words=300, dim=8, noise=0.2, seed=3)
    write_inputs(d, {"src.vec": src, "tgt.vec": tgt}, {"train.txt": train, "test.txt": test})
    r = _cli("fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "-o", d / "run",
             "-q", "--refine", "0")
    assert r.returncode == 0, r.stderr
    return d


def _fit_args(pair, out, dictionary=None, *more):
    return ("fit", pair / "src.vec", pair / "tgt.vec", "--dict", dictionary or
            pair / "train.txt", "-o", out, "-q", "--refine", "0", *more)


def _report(run):
    return json.loads((run / "report.json").read_text())


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ---------------------------------------------------------------- 3. commands at once
@pytest.mark.parametrize("cache_built", [True, False])
def test_evaluations_at_once_are_all_recorded(pair, tmp_path, cache_built):
    run = tmp_path / "run"
    r = _cli(*_fit_args(pair, run))
    assert r.returncode == 0, r.stderr
    if cache_built:
        assert _cli("evaluate", run, "--dict", pair / "test.txt", "-q").returncode == 0
    before = len(_report(run)["evaluations"])
    procs = [_start("evaluate", run, "--dict", pair / "test.txt", "-q", "--json")
             for _ in range(6)]
    results = [_finish(p) for p in procs]
    assert [rc for rc, _, _ in results] == [0] * 6, [err for _, _, err in results]
    evaluations = _report(run)["evaluations"]
    assert len(evaluations) == before + 6  # none lost to another's read-modify-write
    p1 = {json.loads(out)["csls"]["p@1"] for _, out, _ in results}
    assert p1 == {e["metrics"]["csls"]["p@1"] for e in evaluations}
    assert not (run / lock.LOCK).exists()
    index = json.loads((run / "cache" / "index.json").read_text())
    assert {"source.npy", "target.npy", "source.words", "target.words"} <= set(index["files"])
    assert [n for n in os.listdir(run) + os.listdir(run / "cache") if n.endswith(".tmp")] == []


def _blocked_fit(pair, run, tmp_path, *more):
    """A fit of ``run`` that holds the run's lock until :func:`_unblock` (its dictionary is a
    FIFO nobody writes yet: it is read after the lock is taken)."""
    fifo = tmp_path / "dict.fifo"
    os.mkfifo(fifo)
    p = _start(*_fit_args(pair, run, fifo, *more))
    deadline = time.monotonic() + 60
    while not (run / lock.LOCK).exists() or not (run / lock.LOCK).read_text():
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, "the fit never took the lock"
        time.sleep(0.02)
    return p, fifo


def _unblock(pair, fifo):
    with open(fifo, "wb") as f:
        f.write((pair / "train.txt").read_bytes())


@pytest.mark.parametrize("force", [False, True])
def test_a_second_fit_into_the_same_folder_is_refused_at_once(pair, tmp_path, force):
    run = tmp_path / "run"
    first, fifo = _blocked_fit(pair, run, tmp_path)
    holder = json.loads((run / lock.LOCK).read_text())
    assert holder["pid"] == first.pid and holder["command"] == "fit"
    second = _cli(*_fit_args(pair, run), *(["--force"] if force else []), timeout=60)
    assert first.poll() is None  # refused while the first one runs, not after it
    assert second.returncode == 1
    assert f"Error: {run} is being written by another process: pid {first.pid}" in \
        second.stderr
    _unblock(pair, fifo)
    rc, _, err = _finish(first)
    assert rc == 0, err
    report = _report(run)
    assert report["inputs"]["dictionary"]["path"] == str(fifo)  # the first fit's run
    assert not (run / lock.LOCK).exists()


def test_an_evaluation_during_a_refit_is_printed_not_recorded(pair, tmp_path):
    run = tmp_path / "run"
    assert _cli(*_fit_args(pair, run)).returncode == 0
    before = len(_report(run)["evaluations"])
    fit, fifo = _blocked_fit(pair, run, tmp_path, "--force")
    r = _cli("evaluate", run, "--dict", pair / "test.txt", timeout=60)
    assert fit.poll() is None
    assert r.returncode == 0, r.stderr
    assert "CSLS" in r.stdout
    assert f"warning: {run / 'report.json'}: this result was not recorded: {run} is being " \
           f"written by another process: pid {fit.pid}" in r.stderr
    assert len(_report(run)["evaluations"]) == before  # not appended to the run being replaced
    _unblock(pair, fifo)
    assert _finish(fit)[0] == 0


def test_a_run_that_appeared_during_the_fit_is_kept(pair, tmp_path):
    run = tmp_path / "run"
    fit, fifo = _blocked_fit(pair, run, tmp_path)
    (run / "report.json").write_text('{"written": "by someone who ignored the lock"}')
    _unblock(pair, fifo)
    rc, _, err = _finish(fit)
    assert rc == 1
    assert f"Error: {run}: another run was written there while this one was computed; it is " \
           "kept" in err
    assert _report(run) == {"written": "by someone who ignored the lock"}
    assert not (run / "mapping.npz").exists()


def test_a_stale_lock_is_taken_over_saying_so(pair, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = _dead_pid()
    (run / lock.LOCK).write_text(json.dumps({"pid": dead, "host": lock.host(),
                                             "command": "fit"}))
    r = _cli(*[a for a in _fit_args(pair, run) if a != "-q"])
    assert r.returncode == 0, r.stderr
    assert f"warning: {run}: taking over the lock of pid {dead} on {lock.host()} (fit), which " \
           "no longer runs" in r.stderr
    assert (run / "report.json").exists() and not (run / lock.LOCK).exists()


def test_a_live_or_foreign_lock_is_never_taken_over(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for holder in ({"pid": sleeper.pid, "host": lock.host(), "command": "fit"},
                       {"pid": _dead_pid(), "host": "another-host", "command": "fit"}):
            (tmp_path / lock.LOCK).write_text(json.dumps(holder))
            with pytest.raises(lock.RunLockedError, match=f"pid {holder['pid']} on "
                               f"{holder['host']}"):
                lock.acquire(tmp_path, "evaluate", wait=0.2)
            assert json.loads((tmp_path / lock.LOCK).read_text()) == holder
    finally:
        sleeper.kill()
        sleeper.wait()


# ---------------------------------------------------------------- 4. full disk, read-only run
# In process (the CLI through CliRunner): a writer that refuses the run directory's writes as a
# full disk (ENOSPC: files are created, their bytes refused) or a read-only one (EROFS, EACCES:
# nothing is created or replaced there) would, so that CI, which runs as root, tests it. A real
# full tmpfs and a real read-only mount follow, in a user namespace where one can be made.
FIVE = ["src.vec", "tgt.vec", "W_src.npy", "W_tgt.npy", "dictionary.txt"]


def _run(*args):
    """The CLI in this process: ``(result, [warning messages])``, every warning recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return r, [str(w.message) for w in caught]


def _words(pair, n=5):
    return [line.split()[0] for line in (pair / "test.txt").read_text().splitlines()[:n]]


def _answers(pair, run, out):
    """What evaluate, translate and export give for ``run`` (export into ``out``)."""
    e, _ = _run("evaluate", run, "--dict", pair / "test.txt", "--json", "-q")
    t, _ = _run("translate", run, *_words(pair), "-k", "3", "--json")
    x, _ = _run("export", run, "-o", out, "--json", "-q")
    a, _ = _run("apply", run, pair / "src.vec", "-o", out / "applied.vec", "-q")
    assert (e.exit_code, t.exit_code, x.exit_code, a.exit_code) == (0, 0, 0, 0), \
        e.output + t.output + x.output + a.output
    return {"evaluate": json.loads(e.stdout), "translate": json.loads(t.stdout),
            "export": {n: (out / n).read_bytes() for n in FIVE},
            "apply": (out / "applied.vec").read_bytes()}


@pytest.fixture(scope="module")
def reference(pair, tmp_path_factory):
    """The answers of a copy of the run on a disk that takes every write."""
    d = tmp_path_factory.mktemp("reference")
    shutil.copytree(pair / "run", d / "run")
    return _answers(pair, d / "run", d / "out")


def _fd_path(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


@pytest.fixture
def refuse_writes(monkeypatch):
    """``refuse(folder, code)``: from now on this process cannot write under ``folder``, as a
    full disk (``ENOSPC``: the bytes of every file are refused, through the one function every
    output's bytes go through and ``os.write``) or a read-only one (``EROFS``, ``EACCES``:
    nothing can be created, opened for writing or replaced there)."""
    monkeypatch.setattr(store, "_warned_unwritable", set())  # warned once per process

    def refuse(folder, code):
        folder = os.path.abspath(folder) + os.sep

        def under(path):
            return os.path.abspath(os.fspath(path)).startswith(folder)

        if code == errno.ENOSPC:
            real_write, real_os_write = export._write, os.write

            def _write(f, data):
                if under(_fd_path(f.fileno())):
                    raise OSError(code, os.strerror(code))
                return real_write(f, data)

            def os_write(fd, data):
                if under(_fd_path(fd)):
                    raise OSError(code, os.strerror(code))
                return real_os_write(fd, data)

            monkeypatch.setattr(export, "_write", _write)
            monkeypatch.setattr(os, "write", os_write)
            return
        real_open, real_mkdir, real_replace = os.open, os.mkdir, os.replace

        def os_open(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and under(path):
                raise OSError(code, os.strerror(code), path)
            return real_open(path, flags, *args, **kwargs)

        def os_mkdir(path, *args, **kwargs):
            if under(path):
                raise OSError(code, os.strerror(code), path)
            return real_mkdir(path, *args, **kwargs)

        def os_replace(a, b, *args, **kwargs):
            if under(b):
                raise OSError(code, os.strerror(code), b)
            return real_replace(a, b, *args, **kwargs)

        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(os, "mkdir", os_mkdir)
        monkeypatch.setattr(os, "replace", os_replace)

    return refuse


def _snapshot(folder):
    """Every file under ``folder`` with its bytes."""
    return {os.path.relpath(os.path.join(root, n), folder):
            open(os.path.join(root, n), "rb").read()
            for root, _, names in os.walk(folder) for n in names}


def _unwritable_warnings(messages, run, reason):
    said = [m for m in messages if "cannot be written" in m]
    assert said == [f"{run} cannot be written ({reason}): results are computed in memory, and "
                    "the run's cache and report.json are not updated"], messages
    return said


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES],
                         ids=["full", "read-only", "not-ours"])
def test_a_run_that_cannot_be_written_still_answers(pair, reference, tmp_path, refuse_writes,
                                                    code, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(pair / "run", run)  # no cache yet: the first command would write it
    before = _snapshot(run)
    refuse_writes(run, code)
    reason = os.strerror(code)
    reason = reason[:1].lower() + reason[1:]
    for command in (("evaluate", run, "--dict", pair / "test.txt", "--json", "-q"),
                    ("translate", run, *_words(pair), "-k", "3", "--json")):
        monkeypatch.setattr(store, "_warned_unwritable", set())  # a new process each time
        r, said = _run(*command)
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        # once, though cache and report both failed; on stderr and in the JSON warnings
        assert _unwritable_warnings(said, run, reason) == \
            [w for w in doc["warnings"] if "cannot be written" in w]
        doc["warnings"] = [w for w in doc["warnings"] if "cannot be written" not in w]
        assert doc == reference[command[0]]  # computed in memory
    x, said = _run("export", run, "-o", tmp_path / "out", "--json", "-q")
    assert x.exit_code == 0, x.output  # outputs written: the report not updated is no failure
    assert sorted(os.listdir(tmp_path / "out")) == sorted(FIVE)
    assert {n: (tmp_path / "out" / n).read_bytes() for n in FIVE} == reference["export"]
    a, said = _run("apply", run, pair / "src.vec", "-o", tmp_path / "applied.vec", "-q")
    assert a.exit_code == 0, a.output
    assert (tmp_path / "applied.vec").read_bytes() == reference["apply"]
    shutil.copytree(pair / "run", tmp_path / "other")
    for command in (("compare", run, tmp_path / "other", "--dict", pair / "test.txt", "--json"),
                    ("report", run, "--dict", pair / "test.txt", "-o",
                     tmp_path / "report.html", "-q")):
        monkeypatch.setattr(store, "_warned_unwritable", set())
        r, said = _run(*command)
        assert r.exit_code == 0, (command[0], r.output)
        _unwritable_warnings(said, run, reason)
    assert (tmp_path / "report.html").stat().st_size > 10000
    assert _snapshot(run) == before  # nothing partial: no temporary file, no lock, no entry
    monkeypatch.undo()  # the disk has room again: the next command writes what it can
    r, said = _run("evaluate", run, "--dict", pair / "test.txt", "--json", "-q")
    assert r.exit_code == 0 and said == [], (r.output, said)
    assert json.loads(r.stdout) == reference["evaluate"]
    assert len(_report(run)["evaluations"]) == 1


def test_an_os_error_names_the_file_not_its_temporary(pair, tmp_path, refuse_writes):
    out = tmp_path / "out"
    refuse_writes(out, errno.ENOSPC)
    r, _ = _run("export", pair / "run", "-o", out, "-q")
    assert r.exit_code == 1
    assert r.stderr == f"Error: {out / 'W_src.npy'}: no space left on device\n"
    assert os.listdir(out) == []  # the set is all or nothing: no partial folder left
    with pytest.raises(OSError, match=f"^{out / 'x.json'}: no space left on device$"):
        export.write_json(out / "x.json", {})  # what the run's report and cache go through
    assert os.listdir(out) == []


# A real full disk (a tmpfs filled to the last byte) and a real read-only mount (a bind mount
# remounted read-only, which binds root too), made in a user namespace; the commands run there
# and this script reports what they did.
_IN_NAMESPACE = r'''
import json, os, shutil, subprocess, sys, time
mode, mnt, run_src, pair, out = sys.argv[1:]
cli = [sys.executable, "-c", "from mapalign.cli import main; main()"]
run = os.path.join(mnt, "run")
if mode == "full":
    shutil.copytree(run_src, run)
    with open(os.path.join(mnt, "fill"), "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
words = [l.split()[0] for l in open(os.path.join(pair, "test.txt")).read().splitlines()[:5]]
commands = {"evaluate": ["evaluate", run, "--dict", os.path.join(pair, "test.txt"), "--json",
                         "-q"],
            "translate": ["translate", run, *words, "-k", "3", "--json"],
            "export": ["export", run, "-o", out, "--json", "-q"]}
done = {}
def command(name, args):
    t = time.monotonic()
    p = subprocess.run(cli + args, capture_output=True, text=True, timeout=120)
    done[name] = {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr,
                  "s": time.monotonic() - t}
for name, args in commands.items():
    command(name, args)
done["files"] = {os.path.relpath(os.path.join(r, n), run): open(os.path.join(r, n), "rb").read().hex()
                 for r, _, names in os.walk(run) for n in names}
if mode == "full":
    os.remove(os.path.join(mnt, "fill"))
    command("after", commands["evaluate"])
print(json.dumps(done))
'''


def _in_namespace(mount, script_args, tmp_path):
    """Run :data:`_IN_NAMESPACE` where ``mount`` (shell) has made its folder, in a user
    namespace; without ``mount``, as a user whom permissions bind (root in a user namespace
    without its mapping no longer overrides them). Skips, saying why, where user namespaces
    are not allowed."""
    unshare = ["unshare", "--user", "--map-root-user", "--mount"] if mount else \
        ["unshare", "--user"] if os.geteuid() == 0 else []
    if unshare:
        probe = subprocess.run(unshare + ["true"], capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.skip(f"no user namespace here ({' '.join(unshare)}: "
                        f"{probe.stderr.strip()})")
    script = tmp_path / "in_namespace.py"
    script.write_text(_IN_NAMESPACE)
    p = subprocess.run(unshare + ["sh", "-c", f'{mount or "true"} && exec "$0" "$@"',
                                  sys.executable, str(script), *map(str, script_args)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _warning_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize("mode", ["full", "read-only", "permissions"])
def test_a_real_full_disk_or_read_only_run(pair, reference, tmp_path, mode):
    """A tmpfs filled to its last byte; a run on a read-only mount; a run folder of mode 555
    (``chmod a-w``), used by a user whom permissions bind."""
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    if mode == "full":
        mount, reason = f"mount -t tmpfs -o size=256k tmpfs {mnt}", "no space left on device"
    else:
        shutil.copytree(pair / "run", mnt / "run")
        mount = f"mount --bind {mnt} {mnt} && mount -o remount,bind,ro {mnt}" \
            if mode == "read-only" else None
        reason = "read-only file system" if mode == "read-only" else "permission denied"
    if mode == "permissions":
        (mnt / "run").chmod(0o555)
    try:
        done = _in_namespace(mount, [mode, mnt, pair / "run", pair, out], tmp_path)
    finally:
        if mode == "permissions":
            (mnt / "run").chmod(0o755)
    run = mnt / "run"
    warning = f"warning: {run} cannot be written ({reason}): results are computed in memory, " \
              "and the run's cache and report.json are not updated"
    for name in ("evaluate", "translate", "export"):
        assert done[name]["rc"] == 0, done[name]["stderr"]
        assert _warning_lines(done[name]["stderr"]) == [warning], done[name]["stderr"]
    for name in ("evaluate", "translate"):
        doc = json.loads(done[name]["stdout"])
        assert doc["warnings"] == [warning[len("warning: "):]]  # in the JSON too
        assert {**doc, "warnings": []} == reference[name]
    assert {n: (out / n).read_bytes() for n in FIVE} == reference["export"]
    # nothing partial in the run: its two files as they were, no cache entry, lock, temporary
    assert done["files"] == {n: (pair / "run" / n).read_bytes().hex()
                             for n in ("report.json", "mapping.npz")}
    if mode == "full":  # room again: no lock left behind to wait for or take over
        assert done["after"]["rc"] == 0 and done["after"]["stderr"] == ""
        assert json.loads(done["after"]["stdout"]) == reference["evaluate"]


def test_a_lock_whose_contents_cannot_be_written_is_not_left(tmp_path, monkeypatch):
    """A full disk lets the lock file be created and refuses its bytes: the empty file is
    removed, else every later command would wait for it, then take it over."""
    real_write = os.write

    def full(fd, data):
        if _fd_path(fd).endswith(lock.LOCK):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match=f"^{tmp_path / lock.LOCK}: no space left on device$"):
        lock.acquire(tmp_path, "evaluate")
    assert not (tmp_path / lock.LOCK).exists() and not lock.holds(tmp_path)
    monkeypatch.undo()
    start = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with lock.locked(tmp_path, "evaluate"):
            assert json.loads((tmp_path / lock.LOCK).read_text())["pid"] == os.getpid()
    assert time.monotonic() - start < 1 and caught == []  # taken at once, nothing taken over
    assert not (tmp_path / lock.LOCK).exists()


# ---------------------------------------------------------------- 6. leftovers
def _leftovers(folder, pid, tag):
    """A temporary file and a partial folder, as a process ``pid`` on the host ``tag`` (8 hex
    digits, :func:`mapalign.lock.temp_tag`) would have left them in ``folder``."""
    f = folder / f".report.json.~{pid}-{tag}-k3j9x2.tmp"
    f.write_bytes(b"half a report")
    d = folder / f".mapalign-partial-{pid}-{tag}-q8w7e6"
    d.mkdir()
    (d / "src.vec").write_bytes(b"half a file")
    return {f.name, d.name}


def test_leftovers_of_a_dead_process_are_removed_by_the_next_writer(pair, tmp_path):
    run, out = tmp_path / "run", tmp_path / "out"
    shutil.copytree(pair / "run", run)
    (run / "cache").mkdir()
    out.mkdir()
    here, elsewhere, dead = lock._host_tag(), lock._host_tag("another-host"), _dead_pid()
    kept, gone = {}, {}
    for folder in (run, run / "cache", out):
        gone[folder] = _leftovers(folder, dead, here)
        kept[folder] = _leftovers(folder, os.getpid(), here) | \
            _leftovers(folder, dead, elsewhere) | {"notes.tmp", ".mapalign-partial-mine"}
        (folder / "notes.tmp").write_text("not ours")
        (folder / ".mapalign-partial-mine").mkdir()
    # evaluate writes the run and its cache, export the folder it exports into
    r, _ = _run("evaluate", run, "--dict", pair / "test.txt", "-q")
    assert r.exit_code == 0, r.output
    r, _ = _run("export", run, "-o", out, "-q")
    assert r.exit_code == 0, r.output
    for folder in (run, run / "cache", out):
        names = set(os.listdir(folder))
        assert names & gone[folder] == set(), folder  # the dead process's: removed
        assert kept[folder] <= names, folder  # a live process's, another host's, the user's


def test_an_input_replaced_keeping_size_and_time_is_caught_only_with_verify(pair, tmp_path):
    """What the docs say of the fast path: size and modification time are trusted, as make and
    rsync trust them; --verify compares the whole checksum."""
    for name in ("src.vec", "tgt.vec", "train.txt"):
        shutil.copy2(pair / name, tmp_path / name)
    run, src = tmp_path / "run", tmp_path / "src.vec"
    r, _ = _run("fit", src, tmp_path / "tgt.vec", "--dict", tmp_path / "train.txt", "-o", run,
                "-q", "--refine", "0")
    assert r.exit_code == 0, r.output
    st, raw = src.stat(), src.read_bytes()
    header, rest = raw.split(b"\n", 1)
    changed = header + b"\n" + rest.replace(b"0", b"1")  # every value changed, same size
    assert len(changed) == len(raw) and changed != raw
    src.write_bytes(changed)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    r, said = _run("evaluate", run, "--dict", pair / "test.txt", "-q")
    assert r.exit_code == 0 and str(src) not in r.output + "".join(said)  # not seen
    r, _ = _run("evaluate", run, "--dict", pair / "test.txt", "-q", "--verify")
    assert r.exit_code == 1
    assert r.stderr == f"Error: {src} changed since the run was fitted (checksum differs)\n"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["full", "read-only"])
def test_a_multilingual_run_that_cannot_be_written_still_answers(tmp_path, refuse_writes,
                                                                 code, monkeypatch):
    """evaluate-multi (with and without a dictionary) and export-multi on a fit-multi run
    whose folder takes no write: the answers of a writable copy, one warning, the run as it
    was."""
    from mapalign.synthetic import make_family

    spaces, dicts, _ = make_family(("aa", "bb", "hub"), n_words=300, dim=8, seed=4)
    write_inputs(tmp_path, {f"{lang}.vec": e for lang, e in spaces.items()},
                 {f"{a}-{b}.txt": p for (a, b), p in dicts.items()})
    r, _ = _run("fit-multi", *[f"{lang}={tmp_path / lang}.vec" for lang in spaces],
                "--dict", f"aa-hub={tmp_path / 'aa-hub.txt'}", "--dict",
                f"bb-hub={tmp_path / 'bb-hub.txt'}", "--hub", "hub", "--method", "hub", "-o",
                tmp_path / "multi", "-q")
    assert r.exit_code == 0, r.output
    shutil.copytree(tmp_path / "multi", tmp_path / "clean")
    commands = [("evaluate-multi", "--dict", f"aa-bb={tmp_path / 'aa-bb.txt'}", "--json", "-q"),
                ("evaluate-multi", "--json", "-q")]
    want = [json.loads(_run(c[0], tmp_path / "clean", *c[1:])[0].stdout) for c in commands]
    run = tmp_path / "multi"
    before = _snapshot(run)
    refuse_writes(run, code)
    reason = os.strerror(code)
    reason = reason[:1].lower() + reason[1:]
    for command, expected in zip(commands, want):
        monkeypatch.setattr(store, "_warned_unwritable", set())
        r, said = _run(command[0], run, *command[1:])
        assert r.exit_code == 0, r.output
        _unwritable_warnings(said, run, reason)
        doc = json.loads(r.stdout)
        doc["warnings"] = [w for w in doc["warnings"] if "cannot be written" not in w]
        assert doc == expected
    monkeypatch.setattr(store, "_warned_unwritable", set())
    x, said = _run("export-multi", run, "-o", tmp_path / "out", "-q")
    assert x.exit_code == 0, x.output
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        [f"W_{lang}.npy" for lang in spaces] + [f"{lang}.vec" for lang in spaces])
    assert _snapshot(run) == before
