"""Faults around a run: commands at once (issue 25, part 3), a full disk and a read-only run
(part 4), what a killed process left behind (part 6). Commands run as separate processes where
it matters (locks are between processes)."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import write_inputs
from mapalign import lock
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
