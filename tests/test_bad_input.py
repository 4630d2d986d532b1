"""Bad input and interrupted runs, through the command line as a user meets them: every case
ends with a message naming the file (and line), a clear exit status, and no partial output."""
import gzip
import json
import os
import signal

import numpy as np
import pytest
from click.testing import CliRunner

from mapalign import Embeddings, FormatError, load_dictionary, load_embeddings
from mapalign.cli import main
from mapalign.synthetic import make_pair, vec_bytes

from conftest import write_inputs


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A small pair, its dictionaries and one fitted run, shared by the tests below."""
    d = tmp_path_factory.mktemp("pair")
    src, tgt, train, test = make_pair(n_words=500, dim=12, noise=0.2, seed=2)
    write_inputs(d, {"src.vec": src, "tgt.vec": tgt}, {"train.txt": train, "test.txt": test})
    r = run("fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "-o", d / "run",
            "-q", "--refine", "1")
    assert r.exit_code == 0, r.output
    return d, src, tgt, test


def _no_partials(folder):
    return [n for n in os.listdir(folder) if n.startswith(".")] == []


# 1. output under an existing file, broken reports ----------------------------------------
def test_fit_output_under_a_file_fails_before_loading(fitted, tmp_path):
    d = fitted[0]
    big = tmp_path / "big.vec"
    big.write_text("x 1 2\n" + "not a vector line\n")  # would fail if it were ever read
    r = run("fit", big, d / "tgt.vec", "--dict", d / "train.txt", "-o", d / "src.vec" / "run")
    assert r.exit_code == 1
    assert f"{d / 'src.vec'} is a file" in r.output and "Traceback" not in r.output


def test_export_output_under_a_file(fitted):
    d = fitted[0]
    r = run("export", d / "run", "-o", d / "src.vec" / "out")
    assert r.exit_code == 1 and f"{d / 'src.vec'} is a file" in r.output


@pytest.mark.parametrize("content,message", [
    ("[]", "not a mapalign run report"),
    ("null", "not a mapalign run report"),
    ("{}", "not a mapalign run report (no 'mapping', 'settings', 'inputs' entry)"),
    ('{"mapping": ', "report.json:1: not valid JSON"),
])
def test_broken_report_json(fitted, tmp_path, content, message):
    d = fitted[0]
    broken = tmp_path / "run"
    broken.mkdir()
    (broken / "mapping.npz").write_bytes((d / "run" / "mapping.npz").read_bytes())
    (broken / "report.json").write_text(content)
    r = run("evaluate", broken, "--dict", d / "test.txt")
    assert r.exit_code == 1 and message in r.output
    assert str(broken / "report.json") in r.output


# 2. truncated gzip ------------------------------------------------------------------------
def test_truncated_gzip_vectors_and_dictionary(fitted, tmp_path):
    d = fitted[0]
    data = gzip.compress((d / "src.vec").read_bytes())
    (tmp_path / "cut.vec.gz").write_bytes(data[:len(data) // 2])
    (tmp_path / "cut.txt.gz").write_bytes(gzip.compress((d / "train.txt").read_bytes())[:60])
    r = run("fit", tmp_path / "cut.vec.gz", d / "tgt.vec", "--dict", d / "train.txt", "-o",
            tmp_path / "run")
    assert r.exit_code == 1 and "truncated" in r.output and "cut.vec.gz" in r.output
    assert "Aborted" not in r.output
    r = run("fit", d / "src.vec", d / "tgt.vec", "--dict", tmp_path / "cut.txt.gz", "-o",
            tmp_path / "run")
    assert r.exit_code == 1 and "cut.txt.gz" in r.output and "truncated" in r.output
    assert not (tmp_path / "run").exists()


# 3. format sniffing keeps odd text as text -------------------------------------------------
@pytest.mark.parametrize("body,line,message", [
    (b"2 3\ncaf\xe9 0.1 0.2 0.3\nb 1 2 3\n", 2, "not UTF-8"),
    (b"2 4\na 0.1 0.2 0.3\nb 1 2 3\n", 2, "expected a word and 4 values, found a word and 3"),
    (b"2 3\na 0.1 x 0.3\nb 1 2 3\n", 2, "non-numeric value 'x'"),
])
def test_odd_first_rows_get_the_text_readers_message(fitted, tmp_path, body, line, message):
    p = tmp_path / "odd.vec"
    p.write_bytes(body)
    with pytest.raises(FormatError) as err:
        load_embeddings(p)
    assert str(err.value).startswith(f"{p}:{line}: ") and message in str(err.value)
    d = fitted[0]
    r = run("fit", p, d / "tgt.vec", "--dict", d / "train.txt", "-o", tmp_path / "run")
    assert r.exit_code == 1 and f"{p}:{line}: " in r.output and message in r.output
    assert not (tmp_path / "run").exists()


def test_latin1_text_loads_with_replace(tmp_path):
    p = tmp_path / "latin1.vec"
    p.write_bytes(b"2 3\ncaf\xe9 0.1 0.2 0.3\nb 1 2 3\n")
    with pytest.warns(UserWarning, match="kept with U\\+FFFD"):
        emb = load_embeddings(p, encoding_errors="replace")
    assert emb.words == ["caf\ufffd", "b"]


# 4. different dimensions -------------------------------------------------------------------
def test_unsupervised_unequal_dimensions_message(fitted, tmp_path):
    d, src, _, _ = fitted
    other = Embeddings([f"w{i}" for i in range(300)],
                       np.random.default_rng(0).standard_normal((300, 7)))
    (tmp_path / "o.vec").write_bytes(vec_bytes(other))
    r = run("fit", d / "src.vec", tmp_path / "o.vec", "--unsupervised", "-o", tmp_path / "r")
    assert r.exit_code == 1 and "source 12, target 7" in r.output


def test_supervised_unequal_dimensions_work(fitted, tmp_path):
    d, src, tgt, test = fitted
    pad = Embeddings(tgt.words, np.hstack([tgt.vectors, 0.01 * np.ones((len(tgt), 3))]))
    (tmp_path / "t15.vec").write_bytes(vec_bytes(pad))
    r = run("fit", d / "src.vec", tmp_path / "t15.vec", "--dict", d / "train.txt",
            "--method", "procrustes", "-o", tmp_path / "r", "-q")
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["mapping"]["shape_src"] == [12, 15]


# 5. export's dictionary is a valid --dict --------------------------------------------------
def test_exported_dictionary_is_accepted(fitted, tmp_path):
    d = fitted[0]
    r = run("export", d / "run", "-o", tmp_path / "exp", "--no-vectors", "-q")
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "exp" / "dictionary.txt").read_text().split("\n")[0].split()) == 3
    r = run("fit", d / "src.vec", d / "tgt.vec", "--dict", tmp_path / "exp" / "dictionary.txt",
            "-o", tmp_path / "r2", "-q")
    assert r.exit_code == 0, r.output
    (tmp_path / "bad.txt").write_text("a b c\n")
    with pytest.raises(FormatError, match="bad.txt:1: .*third field 'c'"):
        load_dictionary(tmp_path / "bad.txt")


# 7. cheap checks before expensive work -----------------------------------------------------
def test_dictionary_errors_come_before_loading_vectors(fitted, tmp_path):
    d = fitted[0]
    (tmp_path / "dict.txt").write_text("a b\nc\n")
    (tmp_path / "garbage.vec").write_text("not vectors at all\n")
    r = run("fit", tmp_path / "garbage.vec", d / "tgt.vec", "--dict", tmp_path / "dict.txt",
            "-o", tmp_path / "r")
    assert r.exit_code == 1 and "dict.txt:2:" in r.output


def test_gpu_without_gpu_fails_before_loading(fitted, tmp_path):
    from mapalign.backend import resolve_device

    if resolve_device("auto") == "gpu":
        pytest.skip("a GPU is visible here")
    d = fitted[0]
    (tmp_path / "garbage.vec").write_text("not vectors at all\n")
    r = run("fit", tmp_path / "garbage.vec", d / "tgt.vec", "--dict", d / "train.txt",
            "--device", "gpu", "-o", tmp_path / "r")
    assert r.exit_code == 1 and "--device gpu" in r.output


# 8. progress on long steps -----------------------------------------------------------------
def test_refinement_and_export_report_progress(fitted, tmp_path):
    d = fitted[0]
    r = run("fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "-o",
            tmp_path / "r")
    assert r.exit_code == 0 and "refinement: round 1" in r.output
    r = run("export", tmp_path / "r", "-o", tmp_path / "e")
    assert r.exit_code == 0 and "writing src.vec" in r.output
    assert "inducing the dictionary" in r.output


# 9. nothing to evaluate --------------------------------------------------------------------
def test_evaluate_with_no_usable_pair_fails(fitted, tmp_path):
    d = fitted[0]
    (tmp_path / "oov.txt").write_text("nosuch word\n")
    r = run("evaluate", d / "run", "--dict", tmp_path / "oov.txt")
    assert r.exit_code == 1 and "oov.txt: none of its 1 pairs" in r.output
    r = run("evaluate", d / "run", "--dict", d / "test.txt", "--eval-vocab", "1")
    assert r.exit_code == 1 and "test.txt: none of its" in r.output


# 10. byte-order marks ----------------------------------------------------------------------
def test_bom_is_skipped_through_the_cli(fitted, tmp_path):
    d = fitted[0]
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + (d / "train.txt").read_bytes())
    (tmp_path / "bom.vec").write_bytes(b"\xef\xbb\xbf" + (d / "src.vec").read_bytes())
    r = run("fit", tmp_path / "bom.vec", d / "tgt.vec", "--dict", tmp_path / "bom.txt", "-o",
            tmp_path / "run", "--json", "-q")
    assert r.exit_code == 0, r.output
    seed = json.loads(r.stdout)["seed_dictionary"]
    assert seed["pairs_used"] == len((d / "train.txt").read_text().splitlines())


def test_bom_is_skipped(tmp_path):
    (tmp_path / "d.txt").write_bytes(b"\xef\xbb\xbfa b\nc d\n")
    assert load_dictionary(tmp_path / "d.txt") == [("a", "b"), ("c", "d")]
    (tmp_path / "v.vec").write_bytes(b"\xef\xbb\xbf2 2\na 1 2\nb 3 4\n")
    assert load_embeddings(tmp_path / "v.vec").words == ["a", "b"]
    (tmp_path / "n.vec").write_bytes(b"\xef\xbb\xbfa 1 2\nb 3 4\n")
    assert load_embeddings(tmp_path / "n.vec").words == ["a", "b"]


# 11. messages that say what they mean ------------------------------------------------------
def test_binary_garbage_is_not_called_an_encoding_problem(tmp_path):
    p = tmp_path / "g.vec"
    p.write_bytes(b"a 1 2\n" + b"\x00\x01\x02\x03\x04\x05 \x9a\x9b\n")
    with pytest.raises(FormatError, match=r"g.vec:2: binary data") as err:
        load_embeddings(p)
    assert "--encoding-errors" not in str(err.value)


# 12. CLI: help, --json, -q, Ctrl-C ---------------------------------------------------------
def test_help_texts_and_json(fitted, tmp_path):
    r = run("fit", "--help")
    assert "RUN\n  (-o)" in r.output or "RUN (-o)" in r.output
    for opt in ("--method", "--format", "--device", "--seed", "--adv-epochs"):
        line = [ln for ln in r.output.splitlines() if ln.strip().startswith(opt)][0]
        assert len(line.split(opt, 1)[1].strip()) > 10, line  # a help text follows
    d = fitted[0]
    r = run("export", d / "run", "-o", tmp_path / "e", "--json", "--no-vectors")
    assert json.loads(r.stdout)["files"] == ["W_src.npy", "W_tgt.npy", "dictionary.txt"]
    r = run("translate", d / "run", fitted[3][0][0], "-q", "--json")
    assert r.exit_code == 0 and r.stderr == ""


def test_ctrl_c_exits_130_and_leaves_no_partial_export(fitted, tmp_path, monkeypatch):
    import mapalign.runs as runs

    d = fitted[0]
    calls = []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:  # the second file: one already written to the temporary folder
            raise KeyboardInterrupt
        return original(*a, **k)

    original = runs.write_vec
    monkeypatch.setattr(runs, "write_vec", interrupted)
    out = tmp_path / "e"
    r = run("export", d / "run", "-o", out)
    assert r.exit_code == 130
    assert os.listdir(out) == []  # nothing of the set, and no temporary folder


def test_export_set_holds_back_ctrl_c_until_complete(fitted, tmp_path, monkeypatch):
    """An interrupt that arrives while the files are moved into place waits for the set."""
    import mapalign.export as export

    d = fitted[0]
    real_replace = os.replace
    moved = []

    def replace(a, b):
        real_replace(a, b)
        if os.path.dirname(b) == str(tmp_path / "e"):  # moving the set into place
            moved.append(b)
            if len(moved) == 1:
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(export.os, "replace", replace)
    r = run("export", d / "run", "-o", tmp_path / "e", "--no-vectors")
    assert r.exit_code == 130
    assert sorted(os.listdir(tmp_path / "e")) == ["W_src.npy", "W_tgt.npy", "dictionary.txt"]


# 14. inputs that moved ---------------------------------------------------------------------
def test_moved_inputs_with_src_and_tgt(fitted, tmp_path):
    d = fitted[0]
    run_dir = tmp_path / "run"
    r = run("fit", d / "src.vec", d / "tgt.vec", "--dict", d / "train.txt", "-o", run_dir, "-q",
            "--refine", "0")
    assert r.exit_code == 0
    report = json.loads((run_dir / "report.json").read_text())
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("src.vec", "tgt.vec"):
        (moved / name).write_bytes((d / name).read_bytes())
    report["inputs"]["source"]["path"] = str(tmp_path / "gone" / "src.vec")
    (run_dir / "report.json").write_text(json.dumps(report))
    r = run("evaluate", run_dir, "--dict", d / "test.txt")
    assert r.exit_code == 1 and "--src" in r.output
    r = run("evaluate", run_dir, "--dict", d / "test.txt", "--src", moved / "src.vec")
    assert r.exit_code == 0, r.output
    r = run("translate", run_dir, fitted[3][0][0], "--src", moved / "tgt.vec")
    assert r.exit_code == 1 and "is not the file the run was fitted on" in r.output


# 15. all-zero vectors ----------------------------------------------------------------------
def test_zero_vectors_warn_through_the_cli(fitted, tmp_path):
    d, src, _, _ = fitted
    vecs = src.vectors.copy()
    vecs[[3, 7]] = 0
    (tmp_path / "z.vec").write_bytes(vec_bytes(Embeddings(src.words, vecs)))
    r = run("fit", tmp_path / "z.vec", d / "tgt.vec", "--dict", d / "train.txt", "-o",
            tmp_path / "run")
    assert r.exit_code == 0 and f"{tmp_path / 'z.vec'}: 2 all-zero vectors" in r.stderr


def test_zero_vectors_warn_and_stay_finite(tmp_path):
    p = tmp_path / "z.vec"
    p.write_text("3 2\na 1 2\nb 0 0\nc 0 0\n")
    with pytest.warns(UserWarning, match="2 all-zero vectors \\(first 'b'\\)"):
        emb = load_embeddings(p)
    from mapalign.normalize import normalize

    assert np.isfinite(normalize(emb.vectors, "unit,center,unit")[0]).all()


# 16. case fallback in translate ------------------------------------------------------------
def test_translate_tries_the_lowercased_word(fitted, tmp_path):
    d, src, _, test = fitted
    word = test[0][0]
    r = run("translate", d / "run", word.upper(), "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["words"][word.upper()]["as"] == word
    assert f"translating {word!r}" in r.stderr
    r = run("translate", d / "run", "ZZZNOPE")
    assert r.exit_code == 1 and "not in the source vocabulary" in r.output


# fuzz --------------------------------------------------------------------------------------
def _corrupt(data: bytes, rng) -> bytes:
    if rng.integers(2):  # half the files have no header, so a row more or less is no error
        data = data.split(b"\n", 1)[1]
    lines = data.split(b"\n")
    body = range(1, len(lines) - 1)
    kind = rng.integers(8)
    if kind == 0:  # flip bytes
        b = bytearray(data)
        for i in rng.integers(0, len(b), rng.integers(1, 5)):
            b[i] = rng.integers(0, 256)
        return bytes(b)
    if kind == 1:  # cut the file
        return data[:rng.integers(1, len(data))]
    if kind == 2:  # drop a field
        i = rng.choice(body)
        fields = lines[i].split(b" ")
        del fields[rng.integers(1, len(fields))]
        lines[i] = b" ".join(fields)
    elif kind == 3:  # duplicate a field
        i = rng.choice(body)
        fields = lines[i].split(b" ")
        fields.insert(1, fields[1])
        lines[i] = b" ".join(fields)
    elif kind == 4:  # another encoding
        return data.decode("utf-8").encode(["utf-16", "latin-1", "utf-32"][rng.integers(3)])
    elif kind == 5:  # a line duplicated or removed
        i = rng.choice(body)
        lines.insert(i, lines[i]) if rng.integers(2) else lines.pop(i)
    elif kind == 6:  # Windows line ends
        return data.replace(b"\n", b"\r\n")
    else:  # blank lines and trailing blanks
        i = rng.choice(body)
        lines[i] += b" \t"
        lines.insert(i, b"")
    return b"\n".join(lines)


def _reference_parse(data: bytes):
    """The plain reading of a text .vec: first occurrence of each word wins."""
    out = {}
    lines = data.decode("utf-8").splitlines()
    if lines and len(lines[0].split()) == 2 and all(f.isdigit() for f in lines[0].split()):
        lines = lines[1:]
    for line in lines:
        fields = line.split()
        if fields and fields[0] not in out:
            out[fields[0]] = np.array([float(v) for v in fields[1:]], dtype=np.float32)
    return out


@pytest.mark.slow
def test_fuzz_corrupted_vec_files(tmp_path):
    """Hundreds of corrupted copies: each loads to exactly the vectors the bytes say, or stops
    with a file:line message (never another exception, never a silently wrong vector)."""
    rng = np.random.default_rng(0)
    words = [f"w{i}\u00e9" for i in range(30)]
    vecs = np.round(rng.standard_normal((30, 5)), 4).astype(np.float32)
    clean = vec_bytes(Embeddings(words, vecs))
    p = tmp_path / "f.vec"
    outcomes = {"loaded": 0, "error": 0}
    for trial in range(300):
        data = _corrupt(clean, rng)
        gz = rng.integers(4) == 0
        p.write_bytes(gzip.compress(data)[:None if rng.integers(3) else -7] if gz else data)
        try:
            with _quiet():
                emb = load_embeddings(p)
        except FormatError as e:
            assert str(e).startswith(str(p)), e
            outcomes["error"] += 1
            continue
        outcomes["loaded"] += 1
        ref = _reference_parse(data)
        assert emb.words == list(ref), trial
        for w, v in zip(emb.words, emb.vectors):
            np.testing.assert_allclose(v, ref[w], rtol=1e-6, err_msg=str(trial))
    assert outcomes["error"] > 100 and outcomes["loaded"] > 50, outcomes


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self._w.__exit__(*exc)
