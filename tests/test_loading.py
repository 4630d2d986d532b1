import gzip
import warnings

import numpy as np
import pytest

from conftest import write_text
from mapalign.loading import (FormatError, detect_format, index_pairs, load_dictionary,
                              load_embeddings)

VEC = "3 4\nthe 1 2 3 4 \ncat 0.5 -1 2e-1 0\ndog 1 1 1 1\n"


def test_text_with_header(tmp_path):
    e = load_embeddings(write_text(tmp_path / "a.vec", VEC))
    assert e.words == ["the", "cat", "dog"]
    assert e.vectors.dtype == np.float32
    np.testing.assert_allclose(e.vectors[1], [0.5, -1, 0.2, 0])
    assert e.index["dog"] == 2 and e.dim == 4


def test_text_without_header_and_gzip(tmp_path):
    body = VEC.split("\n", 1)[1]
    plain = load_embeddings(write_text(tmp_path / "b.txt", body))
    p = tmp_path / "c.vec.gz"
    p.write_bytes(gzip.compress(VEC.encode()))
    gz = load_embeddings(p)
    assert plain.words == gz.words == ["the", "cat", "dog"]
    np.testing.assert_array_equal(plain.vectors, gz.vectors)
    assert detect_format(p) == "text"


def test_wide_text_rows_are_text(tmp_path, rng):
    # 300 dimensions: a text row is far longer than a binary one; still detected as text
    vecs = rng.standard_normal((3, 300)).astype(np.float32)
    rows = "".join(f"w{i} " + " ".join(f"{x:.6f}" for x in v) + "\n" for i, v in enumerate(vecs))
    p = write_text(tmp_path / "wide.vec", "3 300\n" + rows)
    assert detect_format(p) == "text"
    np.testing.assert_allclose(load_embeddings(p).vectors, vecs, atol=1e-6)


def test_crlf_and_blank_lines(tmp_path):
    e = load_embeddings(write_text(tmp_path / "a.vec", VEC.replace("\n", "\r\n").encode(), "wb"))
    assert e.words == ["the", "cat", "dog"]


def _word2vec_binary(words, vecs, header=None):
    out = (header or f"{len(words)} {vecs.shape[1]}\n").encode()
    for w, v in zip(words, vecs):
        out += w.encode() + b" " + v.astype("<f4").tobytes() + b"\n"
    return out


def test_word2vec_binary(tmp_path, rng):
    vecs = rng.standard_normal((5, 7)).astype(np.float32)
    words = ["a", "b", "café", "d", "e"]
    p = tmp_path / "w.bin"
    p.write_bytes(_word2vec_binary(words, vecs))
    assert detect_format(p) == "word2vec-binary"
    e = load_embeddings(p)
    assert e.words == words
    np.testing.assert_array_equal(e.vectors, vecs)
    assert load_embeddings(p, max_vocab=2).words == ["a", "b"]
    pg = tmp_path / "w.bin.gz"
    pg.write_bytes(gzip.compress(p.read_bytes()))
    np.testing.assert_array_equal(load_embeddings(pg).vectors, vecs)


def test_word2vec_binary_truncated(tmp_path, rng):
    p = tmp_path / "w.bin"
    p.write_bytes(_word2vec_binary(["a", "b"], rng.standard_normal((2, 7)))[:-10])
    with pytest.raises(FormatError, match="truncated"):
        load_embeddings(p, fmt="word2vec-binary")


def test_fasttext_bin_with_subwords(tmp_path):
    fasttext = pytest.importorskip("fasttext")
    corpus = write_text(tmp_path / "c.txt", "the cat sat on the mat . the dog ate a bone .\n" * 60)
    model = fasttext.train_unsupervised(corpus, model="skipgram", dim=8, minCount=1, epoch=2,
                                        thread=1, minn=2, maxn=3, verbose=0)
    path = str(tmp_path / "m.bin")
    model.save_model(path)
    assert detect_format(path) == "fasttext-bin"
    e = load_embeddings(path)
    assert "cat" in e and e.dim == 8
    np.testing.assert_allclose(e.vector("cat"), model.get_word_vector("cat"), rtol=1e-6)
    oov = e.vector("catz")  # not in the vocabulary: built from subwords
    assert "catz" not in e and oov.shape == (8,) and np.abs(oov).sum() > 0
    assert len(load_embeddings(path, max_vocab=3)) == 3


def test_max_vocab_stops_reading(tmp_path):
    # everything after the first two rows is garbage: it must never be parsed
    p = write_text(tmp_path / "a.vec", "1000 2\na 1 2\nb 3 4\nc not numbers at all\n")
    e = load_embeddings(p, max_vocab=2)
    assert e.words == ["a", "b"]
    with pytest.raises(FormatError):
        load_embeddings(p)


@pytest.mark.parametrize("text,line,message", [
    ("2 3\na 1 2 3\nb 1 2\n", 3, "expected a word and 3 values, found a word and 2 values"),
    ("2 3\na 1 2 3\nb 1 x 3\n", 3, "non-numeric value 'x'"),
    ("2 3\na 1 2 3\nb 1 nan 3\n", 3, "non-finite"),
    ("2 3\na 1 inf 3\nb 1 2 3\n", 2, "non-finite"),
    ("3 3\na 1 2 3\nb 1 2 3\n", 1, "header says 3 rows but the file has 2"),
    ("1 3\na 1 2 3\nb 1 2 3\n", 3, "more rows than the header"),
    ("a 1 2 3\nb 1 2 3 4\n", 2, "expected a word and 3 values"),
])
def test_bad_text_names_file_and_line(tmp_path, text, line, message):
    p = write_text(tmp_path / "bad.vec", text)
    with pytest.raises(FormatError) as err:
        load_embeddings(p)
    assert err.value.line == line
    assert str(err.value).startswith(f"{p}:{line}: ")
    assert message in str(err.value)


def test_bad_line_deep_in_a_large_file(tmp_path):
    rows = [f"w{i} " + " ".join(["0.5"] * 5) for i in range(20000)]
    rows[15000] = "w15000 0.5 0.5 oops 0.5 0.5"
    p = write_text(tmp_path / "big.vec", "20000 5\n" + "\n".join(rows) + "\n")
    with pytest.raises(FormatError, match=r"big.vec:15002: non-numeric value 'oops'"):
        load_embeddings(p)


def test_empty_file(tmp_path):
    with pytest.raises(FormatError, match="empty file"):
        load_embeddings(write_text(tmp_path / "e.vec", ""))
    with pytest.raises(FormatError, match="no word vectors"):
        load_embeddings(write_text(tmp_path / "h.vec", "\n\n"))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.vec"):
        load_embeddings(tmp_path / "nope.vec")


def test_duplicates_keep_first_and_warn_once(tmp_path):
    p = write_text(tmp_path / "d.vec", "a 1 1\nb 2 2\na 3 3\nb 4 4\na 5 5\nc 6 6\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = load_embeddings(p)
    assert e.words == ["a", "b", "c"]
    np.testing.assert_array_equal(e.vectors[:, 0], [1, 2, 6])
    assert len(caught) == 1
    assert "3 duplicate words" in str(caught[0].message) and "line 3" in str(caught[0].message)


def test_undecodable_bytes(tmp_path):
    p = tmp_path / "u.vec"
    p.write_bytes(b"3 2\nok 1 2\nbad\xff\xfe 3 4\nfine 5 6\n")
    with pytest.raises(FormatError, match=r"u.vec:3: bytes that are not UTF-8"):
        load_embeddings(p)
    with pytest.warns(UserWarning, match="1 lines .* skipped"):
        assert load_embeddings(p, encoding_errors="skip").words == ["ok", "fine"]
    p.write_bytes(b"ok 1 2\nbad\xff\xfe 3 4\nfine 5 6\n")
    with pytest.warns(UserWarning, match="skipped .first at line 2"):
        assert load_embeddings(p, encoding_errors="skip").words == ["ok", "fine"]
    with pytest.warns(UserWarning, match="U\\+FFFD"):
        assert load_embeddings(p, encoding_errors="replace").words[1] == "bad\ufffd\ufffd"


def test_dictionary(tmp_path):
    p = write_text(tmp_path / "d.txt", "perro dog\nperro hound\n\ngato\tcat\nperro dog\n")
    assert load_dictionary(p) == [("perro", "dog"), ("perro", "hound"), ("gato", "cat")]
    bad = write_text(tmp_path / "bad.txt", "perro dog\ngato\n")
    with pytest.raises(FormatError, match=r"bad.txt:2: expected 'source target', found 1"):
        load_dictionary(bad)
    with pytest.raises(FormatError, match="empty dictionary"):
        load_dictionary(write_text(tmp_path / "e.txt", "\n"))


def test_index_pairs_counts_oov(tmp_path):
    src = load_embeddings(write_text(tmp_path / "s.vec", "perro 1 0\ngato 0 1\n"))
    tgt = load_embeddings(write_text(tmp_path / "t.vec", "dog 1 0\ncat 0 1\nhound 1 1\n"))
    pairs = [("perro", "dog"), ("perro", "hound"), ("gato", "kitty"), ("pez", "fish")]
    s, t, info = index_pairs(pairs, src, tgt)
    assert s.tolist() == [0, 0] and t.tolist() == [0, 2]
    assert info == dict(pairs=4, pairs_used=2, pairs_oov=2, source_words=3, source_words_used=1)
    _, t2, info2 = index_pairs(pairs, src, tgt, tgt_limit=2)
    assert t2.tolist() == [0] and info2["pairs_oov"] == 3
