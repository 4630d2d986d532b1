import errno
import gzip
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from mapalign.cli import main
from mapalign.normalize import normalize
from mapalign.export import OutputExistsError, atomic_file, write_vec
from mapalign.loading import load_embeddings
from mapalign.synthetic import make_pair, vec_bytes, write_demo


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    src, tgt, train, test = make_pair(n_words=600, dim=16, noise=0.3, seed=7)
    (d / "src.vec").write_bytes(vec_bytes(src))
    (d / "tgt.vec.gz").write_bytes(gzip.compress(vec_bytes(tgt)))
    (d / "train.txt").write_text("".join(f"{s} {t}\n" for s, t in train) + "zzz yyy\n")
    (d / "test.txt").write_text("".join(f"{s} {t}\n" for s, t in test))
    return d, test


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_fit_evaluate_translate_export(pair, tmp_path):
    d, test = pair
    out = tmp_path / "run"
    r = run("fit", d / "src.vec", d / "tgt.vec.gz", "--dict", d / "train.txt", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    report = json.loads((out / "report.json").read_text())
    assert report["seed_dictionary"]["pairs_oov"] == 1  # the "zzz yyy" line
    assert report["inputs"]["source"]["words"] == 600
    assert len(report["inputs"]["dictionary"]["sha256"]) == 64
    assert report["settings"]["method"] == "multistep" and report["seed"] == 0
    assert report["refine_choice"]["chosen_by"].startswith("held-out")
    assert {"load_source", "load_target", "fit"} <= set(report["timings_s"])
    assert report["versions"]["numpy"] == np.__version__

    r = run("evaluate", out, "--dict", d / "test.txt", "--json")
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.stdout)
    assert metrics["coverage"] == 100.0 and metrics["csls"]["p@1"] > 80
    recorded = json.loads((out / "report.json").read_text())["evaluations"][0]["metrics"]
    # the run's verdict comes first in the printed warnings (the dropped seed pair)
    seed = report["seed_dictionary"]
    assert metrics.pop("warnings") == [
        f"{out}: the fit used {seed['pairs_used']} of {seed['pairs']} seed pairs (1 dropped: a "
        "word out of vocabulary)"] + recorded.pop("warnings")
    assert recorded == metrics
    table = run("evaluate", out, "--dict", d / "test.txt").output
    assert "CSLS" in table and "coverage 100.0%" in table

    word, gold = test[0]
    r = run("translate", out, word, "-k", "3", "--json")
    assert json.loads(r.stdout)["words"][word]["translations"][0][0] == gold
    r = run("translate", out, word, "nosuchword")
    assert r.exit_code == 1 and "not in the source vocabulary" in r.output

    exp = tmp_path / "exp"
    r = run("export", out, "-o", exp, "-q")
    assert r.exit_code == 0, r.output
    aligned = load_embeddings(exp / "src.vec")
    W = np.load(exp / "W_src.npy")
    assert aligned.words[:3] == load_embeddings(d / "src.vec").words[:3]
    raw = load_embeddings(d / "src.vec")
    expected = normalize(raw.vectors, "unit,center,unit")[0] @ W
    np.testing.assert_allclose(aligned.vectors, expected, atol=1e-4)
    assert W.shape == (16, 16)
    lines = (exp / "dictionary.txt").read_text().splitlines()
    assert len(lines) > 100 and len(lines[0].split()) == 3
    r = run("export", out, "-o", exp, "-q")
    assert r.exit_code == 1 and "exists (use --force" in r.output
    assert run("export", out, "-o", exp, "-q", "--force").exit_code == 0


def test_fit_refuses_to_overwrite_and_needs_a_mode(pair, tmp_path):
    d, _ = pair
    args = ["fit", d / "src.vec", d / "tgt.vec.gz", "--dict", d / "train.txt", "-o", tmp_path,
            "-q", "--refine", "0"]
    assert run(*args).exit_code == 0
    before = (tmp_path / "report.json").read_bytes()
    r = run(*args)
    assert r.exit_code == 1 and "already holds a run" in r.output
    assert (tmp_path / "report.json").read_bytes() == before
    assert run(*args, "--force", "--method", "cca").exit_code == 0
    assert json.loads((tmp_path / "report.json").read_text())["settings"]["method"] == "cca"
    r = run("fit", d / "src.vec", d / "tgt.vec.gz", "-o", tmp_path / "x")
    assert r.exit_code == 2 and "--dict TRAIN or --unsupervised" in r.output


def test_bad_input_is_one_clear_line(tmp_path, pair):
    d, _ = pair
    bad = tmp_path / "bad.vec"
    bad.write_text("2 3\na 1 2 3\nb 1 two 3\n")
    r = run("fit", bad, d / "tgt.vec.gz", "--dict", d / "train.txt", "-o", tmp_path / "r")
    assert r.exit_code == 1
    assert f"Error: {bad}:3: non-numeric value 'two'" in r.output
    assert not (tmp_path / "r" / "report.json").exists()


def test_evaluate_detects_changed_inputs(pair, tmp_path):
    d, _ = pair
    src = tmp_path / "src.vec"
    src.write_bytes((d / "src.vec").read_bytes())
    out = tmp_path / "run"
    assert run("fit", src, d / "tgt.vec.gz", "--dict", d / "train.txt", "-o", out, "-q",
               "--refine", "0").exit_code == 0
    src.write_bytes(src.read_bytes().replace(b" 0.1", b" 0.2", 1))
    r = run("evaluate", out, "--dict", d / "test.txt")
    assert r.exit_code == 1 and "changed since the run was fitted" in r.output


def test_demo(tmp_path):
    r = run("demo", "--data-dir", tmp_path, "-o", tmp_path / "runs")
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(tmp_path / "runs")) == ["multistep", "procrustes"]
    assert r.output.count("CSLS") == 2
    p1 = [float(line.split()[1]) for line in r.output.splitlines() if line.startswith("CSLS")]
    assert min(p1) > 50


def test_shipped_demo_data_is_what_the_generator_makes(tmp_path):
    here = os.path.join(os.path.dirname(__file__), "..", "data", "demo")
    made = write_demo(tmp_path)
    for name, path in made.items():
        with open(os.path.join(here, name), "rb") as f:
            assert f.read() == open(path, "rb").read(), name


def test_write_vec_roundtrip_and_atomicity(tmp_path, rng):
    vecs = rng.standard_normal((10, 4)).astype(np.float32)
    words = [f"w{i}" for i in range(10)]
    p = tmp_path / "o.vec"
    write_vec(p, words, vecs)
    back = load_embeddings(p)
    assert back.words == words
    np.testing.assert_allclose(back.vectors, vecs, atol=1e-6)
    with pytest.raises(OutputExistsError):
        write_vec(p, words, vecs, overwrite=False)
    # a writer that fails half-way leaves the old file intact and no temp file behind
    before = p.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_file(p) as f:
            f.write(b"partial")
            raise RuntimeError("disk full")
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["o.vec"]
    with pytest.raises(ValueError, match="cannot be written"):
        write_vec(tmp_path / "x.vec", ["a b"], vecs[:1])


def test_cache_serves_later_commands_without_the_inputs(pair, tmp_path):
    """After the first command, translate/evaluate/export read the run's cache: they work
    with the input files gone, give the same answers, and a refit invalidates the cache."""
    d, test = pair
    src, tgt = tmp_path / "src.vec", tmp_path / "tgt.vec.gz"
    src.write_bytes((d / "src.vec").read_bytes())
    tgt.write_bytes((d / "tgt.vec.gz").read_bytes())
    out = tmp_path / "run"
    assert run("fit", src, tgt, "--dict", d / "train.txt", "-o", out, "-q").exit_code == 0
    word = test[0][0]
    first = run("translate", out, word, "--json", "-k", "4")
    fresh = json.loads(run("evaluate", out, "--dict", d / "test.txt", "--json").stdout)
    assert sorted(os.listdir(out / "cache")) == ["index.json", "penalty.v200000.k10.npy",
                                                "source.npy", "source.words", "target.npy",
                                                "target.words"]
    src.rename(tmp_path / "elsewhere.vec")
    tgt.unlink()
    again = run("translate", out, word, "--json", "-k", "4")
    assert again.exit_code == 0 and again.stdout == first.stdout
    cached = json.loads(run("evaluate", out, "--dict", d / "test.txt", "--json").stdout)
    assert cached == fresh
    r = run("export", out, "-o", tmp_path / "e", "-q")
    assert r.exit_code == 0, r.output
    # --verify insists on the inputs themselves
    r = run("translate", out, word, "--verify")
    assert r.exit_code == 1 and "gone" in r.output
    # a refit with other settings: the old cache belongs to the old mapping and is not used
    (tmp_path / "elsewhere.vec").rename(src)
    tgt.write_bytes((d / "tgt.vec.gz").read_bytes())
    assert run("fit", src, tgt, "--dict", d / "train.txt", "-o", out, "-q", "--force",
               "--method", "procrustes", "--refine", "0").exit_code == 0
    assert not (out / "cache").exists()
    assert run("translate", out, word, "-q").exit_code == 0
    index = json.loads((out / "cache" / "index.json").read_text())
    assert index["mapping_sha256"] == json.loads((out / "report.json").read_text())[
        "mapping"]["sha256"]


def test_apply_streams_a_larger_file_identically_to_export(pair, tmp_path):
    """A run fitted on the first 300 words; apply maps the whole 600-word file, a block at a
    time: the rows of the words export also wrote are byte-identical."""
    import mapalign.loading as loading

    d, _ = pair
    out = tmp_path / "run"
    assert run("fit", d / "src.vec", d / "tgt.vec.gz", "--dict", d / "train.txt", "-o", out,
               "-q", "--max-vocab", "300").exit_code == 0
    assert run("export", out, "-o", tmp_path / "e", "-q", "--no-dictionary").exit_code == 0
    small_chunks = 64  # many blocks, so that streaming is what is tested
    old, loading._CHUNK_ROWS = loading._CHUNK_ROWS, small_chunks
    try:
        r = run("apply", out, d / "src.vec", "-o", tmp_path / "all.vec", "--json", "-q")
    finally:
        loading._CHUNK_ROWS = old
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["words"] == 600
    exported = (tmp_path / "e" / "src.vec").read_bytes().split(b"\n")[1:-1]
    applied = (tmp_path / "all.vec").read_bytes().split(b"\n")
    assert applied[0].split() == [b"600", b"16"]
    assert len(exported) == 300 and applied[1:301] == exported
    assert load_embeddings(tmp_path / "all.vec").vectors.shape == (600, 16)
    r = run("apply", out, d / "src.vec", "-o", tmp_path / "all.vec")
    assert r.exit_code == 1 and "exists" in r.output
    r = run("apply", out, d / "tgt.vec.gz", "--side", "target", "-o", tmp_path / "t.bin",
            "--out-format", "word2vec-binary", "-q")
    assert r.exit_code == 0 and load_embeddings(tmp_path / "t.bin").vectors.shape[1] == 16


def test_export_word2vec_binary_layout(pair, tmp_path):
    d, _ = pair
    out = tmp_path / "run"
    assert run("fit", d / "src.vec", d / "tgt.vec.gz", "--dict", d / "train.txt", "-o", out,
               "-q").exit_code == 0
    assert run("export", out, "-o", tmp_path / "t", "-q").exit_code == 0
    assert run("export", out, "-o", tmp_path / "b", "-q", "--out-format",
               "word2vec-binary").exit_code == 0
    text = load_embeddings(tmp_path / "t" / "src.vec")
    raw = (tmp_path / "b" / "src.bin").read_bytes()
    header, rest = raw.split(b"\n", 1)
    assert header == b"600 16"
    first = text.words[0].encode() + b" "
    assert rest.startswith(first)
    vec = np.frombuffer(rest[len(first):len(first) + 64], dtype="<f4")
    np.testing.assert_allclose(vec, text.vectors[0], atol=1e-6)
    assert rest[len(first) + 64:len(first) + 65] == b"\n"
    binary = load_embeddings(tmp_path / "b" / "src.bin")
    assert binary.words == text.words
    np.testing.assert_allclose(binary.vectors, text.vectors, atol=1e-6)
    gensim = pytest.importorskip("gensim", reason="gensim not installed: byte layout checked")
    kv = gensim.models.KeyedVectors.load_word2vec_format(str(tmp_path / "b" / "src.bin"),
                                                         binary=True)
    np.testing.assert_allclose(kv[text.words[5]], text.vectors[5], atol=1e-6)


def test_read_only_run_directory_still_serves(pair, tmp_path, monkeypatch):
    """Where the run directory cannot be written, the cache lives in memory instead."""
    import mapalign.cache as cache

    d, test = pair
    out = tmp_path / "run"
    assert run("fit", d / "src.vec", d / "tgt.vec.gz", "--dict", d / "train.txt", "-o", out,
               "-q").exit_code == 0
    word = test[0][0]
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):  # as if the folder were read-only: no cache/ made in it
        if os.path.dirname(os.path.abspath(path)) == str(out):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(cache.os, "mkdir", mkdir)
    r = run("translate", out, word, "--json")
    m = run("evaluate", out, "--dict", d / "test.txt", "--json")
    assert r.exit_code == 0 and m.exit_code == 0 and not (out / "cache").exists(), r.output
    monkeypatch.undo()
    unwritable = [w for w in json.loads(r.stdout)["warnings"] if "cannot be written" in w]
    assert len(unwritable) == 1 and str(out) in unwritable[0]  # said in the JSON too

    def said_without(doc, w):
        return {**doc, "warnings": [x for x in doc["warnings"] if x not in w]}

    again = json.loads(run("translate", out, word, "--json").stdout)
    assert again == said_without(json.loads(r.stdout), unwritable)  # as from the cache
    assert (out / "cache").exists()
    assert json.loads(run("evaluate", out, "--dict", d / "test.txt", "--json").stdout) == \
        said_without(json.loads(m.stdout), unwritable)


def test_format_rows_is_printf_byte_for_byte(rng):
    """The vectorised .vec writer against Python's %.6f (C's printf rounding) on the hard
    cases: signed zeros, negatives that round to zero, exact binary ties (1/128 * 10^6 ends
    in .5), carries into a new integer digit, every width of integer part, and the
    fallbacks (non-finite, huge, other precisions)."""
    from mapalign.export import format_rows

    def printf(words, V, p=6):
        return "".join(w + "".join(f" {v:.{p}f}" for v in row) + "\n"
                       for w, row in zip(words, V.astype(np.float64).tolist())).encode()

    hard = np.array([0.0, -0.0, -1e-9, 4e-7, 5e-7, -5e-7, 1 / 128, -3 / 128, 0.4999995,
                     9.9999996, -9.9999996, 10.0, 99.99999, -123.5, 1234.0, -98765.4,
                     999999.94, 9999990.0], dtype=np.float32)
    cases = [hard.reshape(-1, 1), np.tile(hard, (3, 1)), -hard.reshape(2, -1)]
    cases += [(rng.standard_normal((300, 7)) * s).astype(np.float32)
              for s in (0.05, 1, 30, 1e4)]
    cases += [(rng.standard_normal((2500, 3)) * 0.1).astype(np.float32)]  # sub-blocks joined
    cases += [np.array([[np.nan, 1.0], [np.inf, -2.0]], dtype=np.float32),
              np.array([[3e7, -1.5]], dtype=np.float32), np.zeros((2, 0), np.float32)]
    for V in cases:
        words = [f"w{i}" for i in range(len(V))]
        assert format_rows(words, V) == printf(words, V), V
    V = cases[3]
    assert format_rows(["a"] * len(V), V, 3) == printf(["a"] * len(V), V, 3)
    # words of every length side by side (their field is padded), one with a NUL byte
    words = ["x" * (i % 37) + "é" * (i % 5) for i in range(len(V))]
    words[7] = "nul\0byte"
    assert format_rows(words, V) == printf(words, V)
    assert format_rows(words[8:], V[8:]) == printf(words[8:], V[8:])


def test_a_small_nonzero_difference_is_not_printed_as_zero():
    from mapalign.cli import _signed

    assert _signed(-4e-5, 4) == "-4.0e-05" and _signed(0.0, 4) == "+0.0000"
    assert _signed(-0.0008, 4) == "-0.0008" and _signed(1.8, 2) == "+1.80"
