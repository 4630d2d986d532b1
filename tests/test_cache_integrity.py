"""A run's cache (RUN/cache/) is checked before use: a damaged entry is never used, it is named
in a warning and rebuilt from the inputs, and the answers are those of a clean cache. A changed
modification time (or --verify) makes a command read the whole file; a repeated command whose
cache is as written reads none (the fast path)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import mapalign.cache as cache_module
from mapalign.cache import CacheWarning
from mapalign.cli import main
from mapalign.synthetic import make_pair, vec_bytes

PENALTY = "penalty.v200000.k10.npy"
ENTRIES = ("source.npy", "target.npy", "source.words", "target.words", PENALTY)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A fitted run whose cache is built, its test words, and the clean answers."""
    d = tmp_path_factory.mktemp("cache")
    src, tgt, train, test = make_pair(n_words=600, dim=16, noise=0.3, seed=3)
    (d / "src.vec").write_bytes(vec_bytes(src))
    (d / "tgt.vec").write_bytes(vec_bytes(tgt))
    (d / "train.txt").write_text("".join(f"{s} {t}\n" for s, t in train))
    (d / "test.txt").write_text("".join(f"{s} {t}\n" for s, t in test))
    out = d / "run"
    assert run("fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "-o", out,
               "-q").exit_code == 0
    words = [s for s, _ in test[:20]]
    answers = _answers(out, d, words)
    assert sorted(os.listdir(out / "cache")) == sorted(ENTRIES + ("index.json",))
    files = {n: (out / "cache" / n).read_bytes() for n in ENTRIES}
    return d, out, words, answers, files


def _answers(run_dir, d, words, *flags, said=None):
    """translate (words, scores) and evaluate (every metric) of a run; their JSON warnings
    go into ``said``."""
    r = run("translate", run_dir, *words, "-k", "3", "--json", *flags)
    assert r.exit_code == 0, r.output
    e = run("evaluate", run_dir, "--dict", d / "test.txt", "--json", "-q", *flags)
    assert e.exit_code == 0, e.output
    docs = json.loads(r.stdout), json.loads(e.stdout)
    for doc in docs:
        (said if said is not None else []).extend(doc.pop("warnings"))
    return docs


def _copy(clean, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(clean[1], run_dir)  # copy2: the cache files keep their times
    return run_dir


def _damage(path):
    """Change the file in place, keeping its size: bits flipped (sign and exponent) in floats
    throughout a .npy's data; in a .words file each two words swapped (the first and second,
    the third and fourth, ...)."""
    raw = bytearray(path.read_bytes())
    if path.suffix == ".npy":
        start = len(raw) - (len(raw) - 128) // 4 * 4  # the data after a 128-byte header
        rng = np.random.default_rng(0)
        for i in rng.choice((len(raw) - start) // 4, size=min(2000, (len(raw) - start) // 8),
                            replace=False):
            raw[start + 4 * i + 3] ^= 0x41  # high byte of a little-endian float32
    else:
        lines = raw.decode("utf-8").split("\n")
        for i in range(0, len(lines) - 2, 2):  # the last, empty, after the final newline
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        raw = bytearray("\n".join(lines).encode("utf-8"))
    assert len(raw) == path.stat().st_size
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("name", ENTRIES)
@pytest.mark.parametrize("how", ["mtime changed", "mtime restored, --verify"])
def test_damaged_entry_is_named_rebuilt_and_never_used(clean, tmp_path, name, how):
    d, _, words, answers, files = clean
    run_dir = _copy(clean, tmp_path)
    path = run_dir / "cache" / name
    st = path.stat()
    _damage(path)
    if how == "mtime changed":
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        flags = ()
    else:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        flags = ("--verify",)
    said = []
    with pytest.warns(CacheWarning, match=f"cache/{name} is damaged") as caught:
        got = _answers(run_dir, d, words, *flags, said=said)
    assert got == answers  # the damaged bytes were not used
    assert len([w for w in caught if name in str(w.message)]) == 1  # rebuilt once, then used
    assert [w for w in said if name in w] == [str(w.message) for w in caught
                                               if name in str(w.message)]  # in the JSON too
    assert path.read_bytes() == files[name]
    # rebuilt and recorded: the next command takes the fast path again, without a warning
    assert _answers(run_dir, d, words) == answers


def test_damage_with_size_and_time_kept_is_caught_only_with_verify(clean, tmp_path,
                                                                   monkeypatch):
    """The fast path of a repeated command reads no cache file whole (no checksum); it does
    not see a change that keeps size and time, which --verify does (documented)."""
    d, _, words, answers, _ = clean
    run_dir = _copy(clean, tmp_path)
    path = run_dir / "cache" / "target.words"
    st = path.stat()
    _damage(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    def no_checksum(p, *a, **k):
        raise AssertionError(f"the fast path read {p} whole")

    with monkeypatch.context() as m:
        m.setattr(cache_module, "sha256", no_checksum)
        fooled = _answers(run_dir, d, words)
    assert fooled[0] != answers[0]  # the swapped words were used: what --verify is for
    # as a user sees it: one warning line naming the file, then the clean answers
    r = subprocess.run([sys.executable, "-m", "mapalign.cli", "translate", str(run_dir),
                        *words, "-k", "3", "--json", "--verify"], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, r.stderr
    said = f"{path} is damaged (its checksum is not the one recorded when it was written): " \
        "not used, rebuilt from the run's inputs"
    assert r.stderr == f"warning: {said}\n"
    doc = json.loads(r.stdout)
    assert doc.pop("warnings") == [said]  # the JSON says it too
    assert doc == answers[0]


def test_a_copied_cache_is_checked_once_then_fast(clean, tmp_path, monkeypatch):
    """Cache files with new times but the recorded bytes (a copy without -p): each is read
    whole once, found good (no warning, no rebuild), and its new time recorded."""
    d, _, words, answers, files = clean
    run_dir = _copy(clean, tmp_path)
    for name in ENTRIES:
        os.utime(run_dir / "cache" / name)
    checked = []
    real = cache_module.sha256
    monkeypatch.setattr(cache_module, "sha256", lambda p: checked.append(p) or real(p))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert _answers(run_dir, d, words) == answers
    assert sorted(os.path.basename(p) for p in checked) == sorted(ENTRIES)
    checked.clear()
    assert _answers(run_dir, d, words) == answers and checked == []


def test_damaged_index_is_never_trusted(clean, tmp_path):
    """Bits flipped in cache/index.json (invalid JSON, a changed size, time or checksum): the
    commands give the clean answers."""
    d, _, words, answers, _ = clean
    index = clean[1] / "cache" / "index.json"
    raw = index.read_bytes()
    for pos in range(0, len(raw), max(1, len(raw) // 12)):
        run_dir = _copy(clean, tmp_path / str(pos))
        damaged = bytearray(raw)
        damaged[pos] ^= 0x01
        (run_dir / "cache" / "index.json").write_bytes(bytes(damaged))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CacheWarning)
            assert _answers(run_dir, d, words) == answers, pos
