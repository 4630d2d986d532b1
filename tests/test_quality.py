"""Quality without a dictionary (mapalign.quality): the criterion a fit records is the one
evaluate recomputes; the reference level separates a real alignment from none; compare without
a dictionary prefers the better mapping; round trip and hubness measure what they say."""
import json

import numpy as np
import pytest

import mapalign
from mapalign import Embeddings, SupervisedAligner, quality
from mapalign.runs import fit_run
from mapalign.synthetic import make_pair

from conftest import write_inputs


@pytest.fixture(scope="module")
def pair():
    return make_pair(n_words=1000, dim=24, noise=0.4, seed=2)


def _noisy(pairs, tgt, share, seed):
    """``pairs`` with ``share`` of them replaced by random pairs."""
    rng = np.random.default_rng(seed)
    return [(a, tgt.words[rng.integers(len(tgt))]) if rng.random() < share else (a, b)
            for a, b in pairs]


@pytest.fixture(scope="module")
def runs(pair, tmp_path_factory):
    """A good and a worse supervised run of the generated pair, as run directories."""
    src, tgt, train, _ = pair
    folder = tmp_path_factory.mktemp("quality")
    p = write_inputs(folder, {"s.vec": src, "t.vec": tgt},
                     {"good.txt": train, "bad.txt": _noisy(train, tgt, 0.9, 1),
                      "test.txt": pair[3]})
    out = {"test": str(p["test.txt"]), "inputs": p}
    for name, dictionary, method in (("good", "good", "procrustes"), ("bad", "bad", "procrustes"),
                                     ("ms-good", "good", "multistep"),
                                     ("ms-bad", "bad", "multistep")):
        out[name] = str(folder / name)
        fit_run(str(p["s.vec"]), str(p["t.vec"]), out[name], str(p[dictionary + ".txt"]),
                method=method, refine=0)
    return out


def test_recorded_criterion_is_recomputed_exactly(runs):
    """A fit records criterion and reference in report.json; evaluate reads only the first
    words of the inputs again and finds the same values."""
    with open(f"{runs['good']}/report.json") as f:
        recorded = json.load(f)["quality"]
    again = quality.evaluate_unsupervised_run(runs["good"], record=False)
    assert recorded["criterion"] == again["criterion"]
    assert recorded["reference"] == again["reference"]
    assert recorded["round_trip"] == again["round_trip"]
    assert recorded["verdict"] == again["verdict"]


def test_reference_below_a_real_alignment_and_level_with_none(pair, rng):
    src, tgt, train, _ = pair
    good = quality.evaluate_unsupervised(
        SupervisedAligner(method="procrustes", refine=0).fit(src, tgt, train), src, tgt)
    assert good["criterion_ci95"][0] > quality.level(good["reference"], quality.GOOD)
    assert good["scaled"] == pytest.approx(quality.scaled(good["criterion"], good["reference"]))
    assert good["verdict"].startswith("good")
    # two independent random spaces: no map relates them, whatever dictionary it was fitted on
    s = Embeddings(src.words, rng.standard_normal(src.vectors.shape).astype(np.float32))
    t = Embeddings(tgt.words, rng.standard_normal(tgt.vectors.shape).astype(np.float32))
    none = quality.evaluate_unsupervised(
        SupervisedAligner(method="procrustes", refine=0).fit(s, t, train), s, t)
    assert abs(none["criterion"] - none["reference"]) < 0.01
    assert none["criterion_ci95"][0] < none["reference"] < none["criterion_ci95"][1] + 0.01
    assert none["verdict"].startswith("no alignment")


def test_cross_fitting_keeps_unrelated_pairs_at_chance(pair, rng):
    """Scored by a map fitted on the other half, a dictionary of unrelated pairs scores what
    random pairs do (about 0): in-sample it would score its own overfit."""
    src, tgt, _, _ = pair
    X = quality._common_space(src.vectors, 1000, np)
    Z = quality._common_space(tgt.vectors, 1000, np)
    fwd = rng.integers(0, len(Z), len(X))
    assert abs(quality.isometric_agreement(X, Z, fwd).mean()) < 0.03
    assert quality.isometric_agreement(X, Z, fwd, folds=1).mean() > 0.1


def test_compare_without_dictionary_prefers_the_better_mapping(runs):
    a = quality.compare_unsupervised_runs(runs["good"], runs["bad"])
    assert a["prefers"] == "a" and a["difference_ci95"][0] > 0
    b = quality.compare_unsupervised_runs(runs["bad"], runs["good"])
    assert b["prefers"] == "b" and b["difference"] == pytest.approx(-a["difference"])
    assert a["words"] == 1000


def test_round_trip_and_hubness_measure_what_they_say():
    # every query translated to target 0: one hub takes all, skewed counts
    h = quality.hubness(np.zeros(500, dtype=int), 1000)
    assert h["top1pct_share"] == 1.0 and h["targets_retrieved"] == 1 and h["skew"] > 10
    h = quality.hubness(np.arange(500), 1000)
    assert h["top1pct_share"] == pytest.approx(10 / 500)
    # identical spaces: every word translates to itself and back
    rng = np.random.default_rng(0)
    X = quality._common_space(rng.standard_normal((300, 20)), 300, np)
    m = quality.measures(X, X, X, X)
    assert (m["fwd"] == np.arange(300)).all() and m["round_trip"].mean() == 1.0


def test_evaluation_recorded_in_the_run_and_multi_pairs(runs, pair):
    quality.evaluate_unsupervised_run(runs["bad"])
    with open(f"{runs['bad']}/report.json") as f:
        entry = json.load(f)["evaluations"][-1]
    assert entry["dictionary"] is None and isinstance(entry["quality"]["criterion"], float)
    from mapalign.synthetic import make_family

    spaces, dicts, _ = make_family(("aa", "bb", "hub"), n_words=400, dim=12, noise=0.2,
                                   hub_noise=0.2, seed=3)
    model = mapalign.MultiAligner(hub="hub", vocab=300, criterion_vocab=300).fit(
        spaces, {k: v for k, v in dicts.items() if "hub" in k})
    out = quality.evaluate_unsupervised_multi(model, spaces)
    assert sorted(out) == ["aa-bb", "aa-hub", "bb-aa", "bb-hub", "hub-aa", "hub-bb"]
    assert all(v["criterion"] > v["reference"] + 0.05 for v in out.values())


# ------------------------------------------------------------------ the commands, no --dict
def _cli(*args):
    from click.testing import CliRunner

    from mapalign.cli import main

    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()
    return runner.invoke(main, [str(a) for a in args])


NUMERIC = ("criterion", "reference", "round_trip", "hubness")


def _numeric_and_verdict(q):
    assert all(isinstance(q[k], float) for k in NUMERIC), q
    assert isinstance(q["verdict"], str) and q["verdict"]


def test_evaluate_without_dict_recomputes_what_the_fit_recorded(runs, monkeypatch):
    """`evaluate RUN` (no --dict) gives the fit's recorded criterion, reference, round trip
    and hubness; the reference recomputed gives the same as the one the fit recorded (which
    evaluate reuses); with the run's cache built by `evaluate --dict`, the mapped words come
    from it (mapping them again would fail here) and the numbers stay the same; the
    dictionary evaluation's numbers do not change."""
    from mapalign.mapping import Mapping

    run = runs["good"]
    with open(f"{run}/report.json") as f:
        recorded = json.load(f)["quality"]
    r = _cli("evaluate", run, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    _numeric_and_verdict(doc)
    assert doc["warnings"] == [] and doc["reference_recorded"] is True
    for key in (*NUMERIC, "criterion_ci95", "verdict"):
        assert doc[key] == recorded[key], key
    again = quality.evaluate_unsupervised_run(run, record=False, reuse_reference=False)
    assert again["reference_recorded"] is False
    assert again["reference_detail"] == recorded["reference_detail"]
    with open(f"{run}/report.json") as f:
        entry = json.load(f)["evaluations"][-1]
    assert entry["dictionary"] is None and entry["quality"]["criterion"] == doc["criterion"]

    test = runs["test"]
    first = json.loads(_cli("evaluate", run, "--dict", test, "--json").stdout)
    monkeypatch.setattr(Mapping, "mapped", lambda *a, **k: pytest.fail("mapped again"))
    cached = quality.evaluate_unsupervised_run(run, record=False)
    for key in (*NUMERIC, "criterion_ci95"):
        assert cached[key] == recorded[key], key
    second = json.loads(_cli("evaluate", run, "--dict", test, "--json").stdout)
    assert first == second


def test_the_recorded_reference_is_reused_only_where_it_applies(runs, monkeypatch):
    monkeypatch.setattr(quality, "reference", lambda *a, **k: pytest.fail("recomputed"))
    assert quality.evaluate_unsupervised_run(runs["good"], record=False)["reference_recorded"]
    with pytest.raises(pytest.fail.Exception):  # another seed: another reference
        quality.evaluate_unsupervised_run(runs["good"], record=False, seed=1)
    with pytest.raises(pytest.fail.Exception):  # other words
        quality.evaluate_unsupervised_run(runs["good"], record=False, n=500)


def test_compare_without_dict_on_the_command_line(runs):
    r = _cli("compare", runs["bad"], runs["good"], "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["prefers"] == "b" and doc["preferred_run"] == runs["good"]
    assert doc["difference_ci95"][1] < 0 and doc["warnings"] == []
    r = _cli("compare", runs["good"], runs["bad"])
    assert r.exit_code == 0 and f"prefers A ({runs['good']})" in r.stdout, r.output
    r = _cli("compare", runs["good"], runs["good"], "--json")  # the same run: no preference
    assert json.loads(r.stdout)["prefers"] is None


def test_compare_without_dict_across_methods_warns(runs, pair, rng):
    """The criterion leans towards runs whose map is near orthogonal: between runs of
    different methods compare says its preference can be wrong (JSON and stderr, whichever
    run it prefers); between runs of one method: no warning."""
    from mapalign.lock import MapalignWarning

    for a, b, prefers in ((runs["good"], runs["ms-bad"], "a"), (runs["ms-good"], runs["bad"], "a"),
                          (runs["bad"], runs["ms-good"], "b")):
        with pytest.warns(MapalignWarning, match="come from different methods"):
            r = _cli("compare", a, b, "--json")
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        assert doc["prefers"] == prefers and not doc["same_method"], doc
        said = [w for w in doc["warnings"] if "different methods" in w]
        assert len(said) == 1 and "--dict" in said[0], doc["warnings"]
    assert doc["methods"] == {"a": "procrustes", "b": "multistep"}
    with pytest.warns(MapalignWarning, match=r"different methods \(multistep, procrustes\)"):
        r = _cli("compare", runs["ms-good"], runs["good"], "-q")  # on stderr, as warnings go
    assert r.exit_code == 0
    r = _cli("compare", runs["good"], runs["bad"], "--json")
    doc = json.loads(r.stdout)
    assert doc["prefers"] == "a" and doc["same_method"]
    assert not any("different methods" in w for w in doc["warnings"])
    # (true translations score far above random pairs, in-sample or not)
    src, tgt, train, _ = pair
    X = quality._common_space(src.vectors, len(src), np)
    Z = quality._common_space(tgt.vectors, len(tgt), np)
    s_row, t_row = ({w: i for i, w in enumerate(e.words)} for e in (src, tgt))
    rows = np.array([(s_row[a], t_row[b]) for a, b in dict(train).items()])
    true = quality.isometric_agreement(X[rows[:, 0]], Z, rows[:, 1], method="multistep")
    noise = quality.isometric_agreement(X[rows[:, 0]], Z, rng.integers(0, len(Z), len(rows)),
                                        method="multistep")
    assert true.mean() > 0.5 > 0.1 > abs(noise.mean())


def test_options_of_a_dictionary_evaluation_without_dict_are_a_usage_error(runs):
    for args in (["evaluate", runs["good"], "--eval-vocab", "10"],
                 ["compare", runs["good"], runs["bad"], "-k", "5"]):
        r = _cli(*args)
        assert r.exit_code == 2 and "only with --dict" in r.stderr, r.output


@pytest.fixture(scope="module")
def multi_run(tmp_path_factory):
    from mapalign.synthetic import make_family

    d = tmp_path_factory.mktemp("quality-multi")
    spaces, dicts, _ = make_family(("aa", "bb", "hub"), n_words=400, dim=12, noise=0.2,
                                   hub_noise=0.2, seed=3)
    p = write_inputs(d, {f"{lang}.vec": e for lang, e in spaces.items()},
                     {f"{a}-{b}.txt": dicts[(a, b)][:150] for a, b in dicts if b == "hub"})
    r = _cli("fit-multi", *(f"{lang}={p[lang + '.vec']}" for lang in spaces), "--hub", "hub",
             *(x for a in ("aa", "bb") for x in ("--dict", f"{a}-hub={p[a + '-hub.txt']}")),
             "-o", d / "multi", "-q")
    assert r.exit_code == 0, r.output
    return str(d / "multi")


def test_evaluate_multi_without_dict_measures_every_directed_pair(multi_run):
    """Each directed pair: numeric criterion above its reference, verdict; the pairs a
    multilingual fit records (each language to the hub) are recomputed exactly."""
    with open(f"{multi_run}/report.json") as f:
        recorded = json.load(f)["multi"]["quality"]
    assert sorted(recorded) == ["aa-hub", "bb-hub"]
    r = _cli("evaluate-multi", multi_run, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert sorted(doc["pairs"]) == ["aa-bb", "aa-hub", "bb-aa", "bb-hub", "hub-aa", "hub-bb"]
    assert doc["warnings"] == []
    for pair, q in doc["pairs"].items():
        _numeric_and_verdict(q)
        assert q["criterion_ci95"][0] > quality.level(q["reference"], quality.USABLE), pair
        assert q["reference_recorded"] == (pair in recorded)
    again = quality.evaluate_unsupervised_multi_run(multi_run, [("aa", "hub")], record=False,
                                                    reuse_reference=False)
    for key in (*NUMERIC, "reference_detail"):
        assert again["aa-hub"][key] == recorded["aa-hub"][key], key
    r = _cli("evaluate-multi", multi_run, "--workers", "2")
    assert r.exit_code == 2 and "only with --dict" in r.stderr


def test_report_without_dict(runs, tmp_path):
    pytest.importorskip("matplotlib")
    import re

    r = _cli("report", runs["bad"], "-o", tmp_path / "r.html", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    _numeric_and_verdict(doc)
    page = (tmp_path / "r.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 2
    assert doc["verdict"] in page and f"{doc['reference']:.4f}" in page
    assert "http://" not in page and "https://" not in page


def test_on_a_device_the_same_numbers(pair):
    """The device path (the strict stand-in: no silent transfer to numpy) gives what the CPU
    gives."""
    src, tgt, train, _ = pair
    model = SupervisedAligner(method="procrustes", refine=0).fit(src, tgt, train)
    cpu = quality.evaluate_unsupervised(model, src, tgt, n=500)
    import strict_xp

    strict_xp.reset()
    dev = quality.evaluate_unsupervised(model, src, tgt, n=500, device="strict")
    assert strict_xp.COUNTS["h2d"] >= 4  # both sides, mapped and as read, on the device
    for key in NUMERIC:
        assert dev[key] == pytest.approx(cpu[key], abs=1e-6), key


def test_evaluate_multi_without_dict_on_a_device(multi_run):
    import strict_xp

    cpu = quality.evaluate_unsupervised_multi_run(multi_run, [("aa", "bb")], record=False)
    strict_xp.reset()
    dev = quality.evaluate_unsupervised_multi_run(multi_run, [("aa", "bb")], record=False,
                                                  device="strict")
    assert strict_xp.COUNTS["h2d"] >= 4  # both languages, mapped and as read, on the device
    for key in NUMERIC:
        assert dev["aa-bb"][key] == pytest.approx(cpu["aa-bb"][key], abs=1e-6), key


def test_a_fit_whose_dictionary_free_check_finds_no_alignment_has_failed(runs):
    """A run's verdict includes its fit's dictionary-free check: 'no alignment found' (here
    multi-step on a dictionary of 90% random pairs) fails the run (--strict exits 3, every
    command warns); a run the check rates good carries no such warning."""
    with open(f"{runs['ms-bad']}/report.json") as f:
        assert json.load(f)["quality"]["verdict"].startswith("no alignment")
    r = _cli("translate", runs["ms-bad"], "ka", "--json")
    doc = json.loads(r.stdout)
    assert any("dictionary-free check: no alignment found" in w for w in doc["warnings"]), doc
    r = _cli("translate", runs["ms-bad"], "ka", "--strict", "--json")
    assert r.exit_code == 3, r.output
    r = _cli("translate", runs["ms-bad"], "no-such-word", "--json")  # an error keeps them too
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and "error" in doc, r.output
    assert any("no alignment found" in w for w in doc["warnings"]), doc
    r = _cli("translate", runs["ms-good"], "ka", "--strict", "--json")
    assert r.exit_code == 0 and not any("dictionary-free" in w
                                        for w in json.loads(r.stdout)["warnings"]), r.output


def test_the_fit_itself_says_its_run_failed(runs, tmp_path):
    """The fit shows its own verdict on stderr, even with -q (the JSON holds it too), before
    --strict refuses the run."""
    p = runs["inputs"]
    args = ["fit", p["s.vec"], p["t.vec"], "--dict", p["bad.txt"], "--method", "multistep",
            "--refine", "0"]
    r = _cli(*args, "-o", tmp_path / "a", "-q")
    assert r.exit_code == 0 and "warning: " in r.stderr and "no alignment found" in r.stderr
    r = _cli(*args, "-o", tmp_path / "b", "-q", "--strict")
    assert r.exit_code == 3
    assert r.stderr.index("no alignment found") < r.stderr.index("refused under --strict")
    r = _cli(*args[:4], p["good.txt"], "-o", tmp_path / "c", "-q")
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr
