"""Hostile or unusual input: every reader holds at most a bounded piece of a line (or word)
before it stops with ``FILE:LINE: line longer than N bytes`` (or ``word of N bytes``);
pipes and devices are read once as streams or refused at once; output paths that cannot be
written are refused before any work. Hostile files are generated here, never committed."""
import gzip
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import write_inputs
from mapalign import loading
from mapalign.cli import main
from mapalign.loading import FormatError, load_dictionary, load_embeddings, stream_embeddings
from mapalign.synthetic import make_pair, vec_bytes

BIG = 64 << 20  # a 64 MB line: a reader that holds it grows by at least that much
MB = 1 << 20


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A small generated pair, its dictionary and one fitted run."""
    d = tmp_path_factory.mktemp("pair")
    src, tgt, train, _ = make_pair(n_words=300, dim=8, noise=0.2, seed=3)
    write_inputs(d, {"src.vec": src, "tgt.vec": tgt}, {"train.txt": train})
    r = run("fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "-o", d / "run",
            "-q", "--refine", "0")
    assert r.exit_code == 0, r.output
    return d


# 1. bounded memory: every reader, a 64 MB line and an absurd word -------------------------
def _w2v_binary(words, vecs):
    out = f"{len(words)} {vecs.shape[1]}\n".encode()
    for w, v in zip(words, vecs):
        out += w.encode() + b" " + v.astype("<f4").tobytes() + b"\n"
    return out


NORMAL_VEC = "3 4\nthe 1 2 3 4\ncat 0.5 -1 0.2 0\ndog 1 1 1 1\n"
# how each reader is called, on a file named F (in a subprocess: its peak memory is its own)
READERS = {
    "vectors-text": "loading.load_embeddings(F)",
    "vectors-gz": "loading.load_embeddings(F)",
    "word2vec-binary": "loading.load_embeddings(F, fmt='word2vec-binary')",
    "detect-format": "loading.detect_format(F)",
    "dictionary": "loading.load_dictionary(F)",
    "dictionary-gz": "loading.load_dictionary(F)",
    "stream-embeddings": "loading.stream_embeddings(F, lambda w, m: None)",
}


def _normal_bytes(reader):
    if reader == "word2vec-binary":
        return _w2v_binary(["a", "b"], np.ones((2, 4), np.float32))
    if reader.startswith("dictionary"):
        return b"perro dog\ngato cat\n"
    return NORMAL_VEC.encode()


def _write(path, data, gz):
    path.write_bytes(gzip.compress(data, 1) if gz else data)
    return path


@pytest.fixture(scope="module")
def long_line(tmp_path_factory):
    """A 64 MB line without a newline, plain and gzipped."""
    d = tmp_path_factory.mktemp("hostile")
    data = b"a" * BIG
    return {False: _write(d / "long.txt", data, False), True: _write(d / "long.gz", data, True)}


_MEASURE = textwrap.dedent("""
    import json, resource, sys
    from mapalign import loading
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {}
    for name, F in (("normal", sys.argv[1]), ("hostile", sys.argv[2])):
        try:
            EXPR
            out[name + "_error"] = None
        except Exception as e:
            out[name + "_error"] = f"{type(e).__name__}: {e}"
        out[name] = peak()
    print(json.dumps(out))
""")


@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_reader_stops_a_64mb_line_in_bounded_memory(reader, long_line, tmp_path):
    gz = reader.endswith("-gz")
    normal = _write(tmp_path / "normal", _normal_bytes(reader), gz)
    script = _MEASURE.replace("EXPR", READERS[reader])
    out = subprocess.run([sys.executable, "-c", script, str(normal), str(long_line[gz])],
                         capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory,
                         env=dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["normal_error"] is None
    assert res["hostile_error"].startswith(f"FormatError: {long_line[gz]}:1: line longer than")
    # the peak of the whole process (the normal read first): a held 64 MB line would add
    # at least 64 MB; the bounded readers hold at most a few MB more than a normal read
    assert res["hostile"] - res["normal"] < 16 * MB, res
    assert res["hostile"] < 2 * res["normal"]


def test_a_long_line_after_the_first_is_refused_at_its_line(tmp_path):
    # 300 dimensions: the limit is 64 KiB + 300 * 32 bytes; the third line is 1 MB
    row = "w " + " ".join(["0.5"] * 300) + "\n"
    p = tmp_path / "a.vec"
    p.write_text("2 300\n" + row + "x " + "1" * MB + "\n")
    limit = loading.vectors_line_limit(300)
    assert limit == 64 * 1024 + 300 * 32
    with pytest.raises(FormatError, match=rf"a.vec:3: line longer than {limit:,} bytes"):
        load_embeddings(p)
    # a header-less file: the limit follows the first row's dimension
    p.write_text(row + "x " + "1" * MB + "\n")
    with pytest.raises(FormatError, match=r"a.vec:2: line longer than"):
        load_embeddings(p)


@pytest.mark.parametrize("reader", ["vectors-text", "word2vec-binary", "dictionary"])
def test_an_absurd_word_is_refused(reader, tmp_path):
    word = "x" * 40000  # fits the line limit; no real word is near it
    if reader == "vectors-text":
        p = tmp_path / "a.vec"
        p.write_text(f"2 4\nok 1 2 3 4\n{word} 1 2 3 4\n")
        where = "a.vec:3"
    elif reader == "word2vec-binary":
        p = tmp_path / "a.bin"
        p.write_bytes(_w2v_binary(["ok", word], np.ones((2, 4), np.float32)))
        where = "a.bin:record 2"
    else:
        p = tmp_path / "d.txt"
        p.write_text(f"perro dog\n{word} cat\n")
        where = "d.txt:2"
    read = load_dictionary if reader == "dictionary" else load_embeddings
    with pytest.raises(FormatError, match=rf"{where}: word of 40,000 bytes \(the limit is 1,024"):
        read(p)


def test_a_binary_word_without_a_space_is_refused_early(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"1 4\n" + b"x" * (4 * MB))
    with pytest.raises(FormatError, match="a.bin:record 1: word longer than 1,024 bytes"):
        load_embeddings(p, fmt="word2vec-binary")


def test_absurd_dimensions_in_a_header_are_refused(tmp_path):
    p = tmp_path / "a.vec"
    p.write_text("1 999999999\nw 1\n")
    with pytest.raises(FormatError, match="a.vec:1: header says 999,999,999 dimensions"):
        load_embeddings(p)
    with pytest.raises(FormatError, match="a.vec:1: header says 999,999,999 dimensions"):
        load_embeddings(p, fmt="word2vec-binary")


def test_normal_files_load_as_before(tmp_path):
    # the readers' limits change nothing for real rows: words, vectors bit for bit
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(50)] + ["x" * 1024]  # a word at the limit is accepted
    vecs = rng.standard_normal((51, 1000)).astype(np.float32)
    text = "".join(f"{w} " + " ".join(repr(float(x)) for x in v) + "\n"
                   for w, v in zip(words, vecs))
    p = tmp_path / "a.vec"
    p.write_text(f"51 1000\n{text}")
    e = load_embeddings(p)
    assert e.words == words
    np.testing.assert_array_equal(e.vectors, vecs)
    b = tmp_path / "a.bin"
    b.write_bytes(_w2v_binary(words, vecs))
    np.testing.assert_array_equal(load_embeddings(b).vectors, vecs)


# 5. pipes and devices: read once as a stream, or refused at once ---------------------------
def _fifo(tmp_path, name="fifo"):
    path = tmp_path / name
    os.mkfifo(path)
    return path


def _writer(path, data=None, forever=None):
    """A thread that writes ``data`` (or ``forever`` over and over) into the FIFO ``path``."""
    def write():
        try:
            with open(path, "wb") as f:
                if data is not None:
                    f.write(data)
                while forever is not None:
                    f.write(forever)
        except BrokenPipeError:  # the reader stopped: what a bounded reader does
            pass
    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


def _cli(*args, timeout=60):
    """The CLI in a subprocess: a hang fails the test instead of hanging it."""
    return subprocess.run([sys.executable, "-c", "from mapalign.cli import main; main()",
                           *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_fit_refuses_a_fifo_at_once_even_without_a_writer(pair, tmp_path):
    fifo = _fifo(tmp_path)  # nobody writes: opening it would wait forever
    r = _cli("fit", fifo, pair / "tgt.vec", "--dict", pair / "train.txt", "-o", tmp_path / "r")
    assert r.returncode == 1
    assert f"Error: {fifo} is a FIFO (a pipe): mapalign re-reads" in r.stderr
    assert "save it to a file first" in r.stderr


@pytest.mark.parametrize("where", ["vectors", "dictionary", "apply"])
def test_dev_zero_is_refused_at_once(pair, tmp_path, where):
    if where == "vectors":
        args = ("fit", "/dev/zero", pair / "tgt.vec", "--dict", pair / "train.txt", "-o",
                tmp_path / "r")
    elif where == "dictionary":
        args = ("fit", pair / "src.vec", pair / "tgt.vec", "--dict", "/dev/zero", "-o",
                tmp_path / "r")
    else:
        args = ("apply", pair / "run", "/dev/zero", "-o", tmp_path / "o.vec")
    r = _cli(*args)
    assert r.returncode == 1 and "Error: /dev/zero is a character device" in r.stderr


def test_a_fifo_dictionary_is_read_once_and_checksummed(pair, tmp_path):
    data = (pair / "train.txt").read_bytes()
    fifo = _fifo(tmp_path)
    _writer(fifo, data)
    r = _cli("fit", pair / "src.vec", pair / "tgt.vec", "--dict", fifo, "-o", tmp_path / "r",
             "-q", "--refine", "0")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    ref = json.loads((pair / "run" / "report.json").read_text())
    d = report["inputs"]["dictionary"]
    assert d["sha256"] == hashlib.sha256(data).hexdigest() and d["bytes"] == len(data)
    assert d["pairs"] == ref["inputs"]["dictionary"]["pairs"]
    # a gzipped dictionary through a pipe: the checksum is of the bytes that came through
    gz = gzip.compress(data)
    fifo2 = _fifo(tmp_path, "fifo2")
    _writer(fifo2, gz)
    pairs = load_dictionary(fifo2)
    assert pairs == load_dictionary(pair / "train.txt")
    assert pairs.digest == {"bytes": len(gz), "sha256": hashlib.sha256(gz).hexdigest()}


def test_compare_reads_a_fifo_dictionary_once(pair, tmp_path):
    fifo = _fifo(tmp_path)
    _writer(fifo, (pair / "train.txt").read_bytes())
    r = _cli("compare", pair / "run", pair / "run", "--dict", fifo, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["dictionary"]["bytes"] == (pair / "train.txt").stat().st_size


@pytest.mark.parametrize("gz", [False, True])
def test_apply_reads_a_fifo_as_a_stream(pair, tmp_path, gz):
    data = (pair / "src.vec").read_bytes()
    r = run("apply", pair / "run", pair / "src.vec", "-o", tmp_path / "ref.vec", "-q")
    assert r.exit_code == 0, r.output
    fifo = _fifo(tmp_path)
    _writer(fifo, gzip.compress(data) if gz else data)
    r = _cli("apply", pair / "run", fifo, "-o", tmp_path / "out.vec", "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.vec").read_bytes() == (tmp_path / "ref.vec").read_bytes()


def test_evaluate_reads_a_fifo_dictionary_and_fit_multi_refuses_fifo_vectors(pair, tmp_path):
    ref = _cli("evaluate", pair / "run", "--dict", pair / "train.txt", "--json", "-q")
    assert ref.returncode == 0, ref.stderr
    fifo = _fifo(tmp_path)
    _writer(fifo, (pair / "train.txt").read_bytes())
    r = _cli("evaluate", pair / "run", "--dict", fifo, "--json", "-q")
    assert r.returncode == 0, r.stderr
    # the same numbers and words; the warning that this is the seed dictionary names the FIFO
    assert json.loads(r.stdout.replace(str(fifo), str(pair / "train.txt"))) == \
        json.loads(ref.stdout)
    silent = _fifo(tmp_path, "silent")  # nobody writes: opening it would wait forever
    r = _cli("fit-multi", f"es={silent}", f"en={pair / 'tgt.vec'}", "--dict",
             f"es-en={pair / 'train.txt'}", "-o", tmp_path / "multi")
    assert r.returncode == 1
    assert f"Error: {silent} is a FIFO (a pipe): mapalign re-reads" in r.stderr


def test_report_reads_a_fifo_dictionary(pair, tmp_path):
    pytest.importorskip("matplotlib")
    fifo = _fifo(tmp_path)
    _writer(fifo, (pair / "train.txt").read_bytes())
    r = _cli("report", pair / "run", "--dict", fifo, "-o", tmp_path / "r.html", "-q")
    assert r.returncode == 0, r.stderr
    assert "P@1" in (tmp_path / "r.html").read_text()


def test_an_empty_fifo_says_so(pair, tmp_path):
    fifo = _fifo(tmp_path)
    _writer(fifo, b"")
    with pytest.raises(FormatError, match="empty stream"):
        stream_embeddings(fifo, lambda w, m: None)


_ZEROS = textwrap.dedent("""
    import os, sys, threading
    from mapalign import loading
    F = sys.argv[1]
    os.mkfifo(F)
    def write():
        try:
            with open(F, "wb") as f:
                while True:
                    f.write(bytes(65536))
        except BrokenPipeError:
            pass
    threading.Thread(target=write, daemon=True).start()
    try:
        EXPR
    except Exception as e:
        print(f"{type(e).__name__}: {e}")
""")


def _limit_memory():  # the child may not grow past 2 GB (an unbounded reader would)
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.parametrize("reader", ["dictionary", "stream-embeddings"])
def test_an_endless_stream_of_zeros_stops_fast(tmp_path, reader):
    # /dev/zero through a pipe: the bounded reader stops at the first line's limit
    fifo = tmp_path / "fifo"
    script = _ZEROS.replace("EXPR", READERS[reader])
    out = subprocess.run([sys.executable, "-c", script, str(fifo)], capture_output=True,
                         text=True, timeout=120, preexec_fn=_limit_memory,
                         env=dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"))
    assert out.stdout.startswith(f"FormatError: {fifo}:1: line longer than"), out


def test_every_reader_opens_its_input_once(pair, tmp_path, monkeypatch):
    # gzip detection, format detection and the checksum used to open the file again: a
    # pipe can be read only once
    opened = []
    real_open = open

    def counting_open(path, *a, **k):
        opened.append(os.fspath(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", counting_open)
    gz = tmp_path / "src.vec.gz"
    gz.write_bytes(gzip.compress((pair / "src.vec").read_bytes()))
    load_embeddings(gz)
    stream_embeddings(gz, lambda w, m: None)
    load_dictionary(pair / "train.txt")
    assert opened == [str(gz), str(gz), str(pair / "train.txt")]


# output paths: checked before the fit ---------------------------------------------------------
def _no_loading(monkeypatch):
    import mapalign.runs as runs

    def fail(*a, **k):
        raise AssertionError("inputs were read before the output was checked")
    monkeypatch.setattr(runs, "load_embeddings", fail)
    monkeypatch.setattr(runs, "load_dictionary", fail)


@pytest.mark.parametrize("case", ["loop", "inside-loop", "dangling", "under-a-file"])
def test_fit_output_that_cannot_be_written_fails_before_loading(pair, tmp_path, monkeypatch,
                                                                 case):
    _no_loading(monkeypatch)
    if case in ("loop", "inside-loop"):
        os.symlink(tmp_path / "b", tmp_path / "a")
        os.symlink(tmp_path / "a", tmp_path / "b")
        out, message = tmp_path / "a", "symbolic links"
        if case == "inside-loop":
            out = out / "run"
    elif case == "dangling":
        os.symlink(tmp_path / "missing" / "x", tmp_path / "a")
        out, message = tmp_path / "a", "symbolic link to a missing place"
    else:
        (tmp_path / "f").write_text("x")
        out, message = tmp_path / "f" / "run", "is a file"
    r = run("fit", pair / "src.vec", pair / "tgt.vec", "--dict", pair / "train.txt", "-o", out)
    assert r.exit_code == 1 and "Error:" in r.output and message in r.output, r.output


def test_export_and_apply_outputs_are_checked_before_the_work(pair, tmp_path, monkeypatch):
    import mapalign.runs as runs

    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")

    def fail(*a, **k):
        raise AssertionError("the run was read before the output was checked")
    monkeypatch.setattr(runs, "load_run", fail)
    r = run("export", pair / "run", "-o", tmp_path / "a")
    assert r.exit_code == 1 and "symbolic links" in r.output, r.output
    monkeypatch.undo()
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        runs.apply_run(pair / "run", pair / "src.vec", tmp_path / "folder")
    with pytest.raises(OSError, match="symbolic links"):
        runs.apply_run(pair / "run", pair / "src.vec", tmp_path / "a" / "o.vec")


_FIT_WITHOUT_LOADING = """
import sys
import mapalign.runs as runs
def fail(*a, **k):
    raise AssertionError("inputs were read before the output was checked")
runs.load_embeddings = runs.load_dictionary = fail
from mapalign.cli import main
main(sys.argv[1:])
"""


def test_fit_into_a_read_only_folder_fails_before_loading(pair, tmp_path):
    """As a user whom permissions bind: root runs it in a user namespace without its mapping
    (as CI does), where permissions apply again; skipped, saying why, where there is none."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    command = [sys.executable, "-c", _FIT_WITHOUT_LOADING, "fit", str(pair / "src.vec"),
               str(pair / "tgt.vec"), "--dict", str(pair / "train.txt"), "-o", str(ro / "run")]
    if os.geteuid() == 0:
        probe = subprocess.run(["unshare", "--user", "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            ro.chmod(0o700)
            pytest.skip(f"root ignores permissions, and no user namespace here to drop that "
                        f"(unshare --user: {probe.stderr.strip()})")
        command = ["unshare", "--user"] + command
    try:
        p = subprocess.run(command, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    finally:
        ro.chmod(0o700)
    assert p.returncode == 1 and "is not writable" in p.stderr, p.stderr
    assert not (ro / "run").exists()


def test_fasttext_bin_words_and_matrix_are_checked_before_loading(tmp_path):
    fasttext = pytest.importorskip("fasttext")
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat . the dog ate a bone .\n" * 60)
    model = fasttext.train_unsupervised(str(corpus), model="skipgram", dim=8, minCount=1,
                                        epoch=1, thread=1, minn=2, maxn=3, verbose=0)
    good = tmp_path / "m.bin"
    model.save_model(str(good))
    data = good.read_bytes()
    assert len(load_embeddings(good)) == len(model.words)  # the check reads real models
    # the word "the" grown to 5 MB: the fasttext package would hold it
    at = data.index(b"the\0")
    (tmp_path / "w.bin").write_bytes(data[:at] + b"t" * (5 * MB) + data[at + 3:])
    with pytest.raises(FormatError, match=r"w.bin:word \d+: word longer than 1,024 bytes"):
        load_embeddings(tmp_path / "w.bin")
    import struct  # the input matrix claims 10^12 rows: more than the file holds

    shape = struct.pack("<qq", len(model.words) + model.bucket, 8)
    at = data.index(shape)
    (tmp_path / "t.bin").write_bytes(data[:at] + struct.pack("<qq", 10 ** 12, 8)
                                     + data[at + 16:])
    with pytest.raises(FormatError, match="does not fit the file"):
        load_embeddings(tmp_path / "t.bin")


def test_a_fifo_given_for_moved_vectors_is_named(pair, tmp_path):
    fifo = _fifo(tmp_path)  # no writer: opening it would wait forever
    r = _cli("evaluate", pair / "run", "--dict", pair / "train.txt", "--src", fifo)
    assert r.returncode == 1 and f"Error: {fifo} is a FIFO (a pipe)" in r.stderr, r.stderr
