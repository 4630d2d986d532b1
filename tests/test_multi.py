"""More than two languages: hub, generalised Procrustes, joint refinement."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from mapalign import evaluate_bdi, Embeddings, load_embeddings
from mapalign.cli import main
from mapalign.multi import MultiAligner
from mapalign.synthetic import make_family

from conftest import real_data, write_inputs


@pytest.fixture(scope="module")
def family():
    """Three languages with little noise; seed dictionaries only with the hub."""
    spaces, dicts, rotations = make_family(("aa", "bb", "hub"), n_words=1200, dim=24,
                                           noise=0.2, hub_noise=0.2, seed=3)
    seeds = {k: v[:300] for k, v in dicts.items() if "hub" in k}
    return spaces, dicts, seeds, rotations


@pytest.fixture(scope="module")
def noisy_hub():
    """Two cleaner languages and a very noisy hub, 60 seed pairs each with the hub."""
    spaces, dicts, rotations = make_family(("aa", "bb", "hub"), n_words=1200, dim=24,
                                           noise=0.5, hub_noise=2.0, seed=3)
    seeds = {k: v[:60] for k, v in dicts.items() if "hub" in k}
    return spaces, dicts, seeds, rotations


def _p1(model, spaces, pairs, a, b, hub_only=False):
    S = model.transform(a, spaces[a].vectors, hub_only)
    T = model.transform(b, spaces[b].vectors, hub_only)
    return evaluate_bdi(None, Embeddings(spaces[a].words, S), Embeddings(spaces[b].words, T),
                        pairs, mapped=(S, T))["csls"]["p@1"]


@pytest.mark.parametrize("method", ["hub", "gpa", "joint"])
def test_every_map_is_recovered(family, method):
    spaces, dicts, seeds, rotations = family
    model = MultiAligner(method=method, hub="hub").fit(spaces, seeds)
    assert set(model.maps_) == {"aa", "bb", "hub"}
    np.testing.assert_allclose(model.maps_["hub"], np.eye(24), atol=1e-6)
    for lang in ("aa", "bb"):
        W = model.maps_[lang]
        np.testing.assert_allclose(W.T @ W, np.eye(24), atol=1e-4)  # orthogonal
        # the known map into the hub's space: the language's rotation undone, the hub's applied
        assert np.abs(W - rotations[lang].T @ rotations["hub"]).max() < 0.1
    assert _p1(model, spaces, dicts[("aa", "bb")], "aa", "bb") > 95


def test_joint_beats_hub_only_on_the_indirect_pair(noisy_hub):
    spaces, dicts, seeds, rotations = noisy_hub
    model = MultiAligner(method="joint", hub="hub").fit(spaces, seeds)
    joint = _p1(model, spaces, dicts[("aa", "bb")], "aa", "bb")
    hub_only = _p1(model, spaces, dicts[("aa", "bb")], "aa", "bb", hub_only=True)
    assert joint > hub_only + 5, (joint, hub_only)
    # the map between the two clean languages is recovered through the joint step
    rel = model.maps_["aa"] @ model.maps_["bb"].T
    hub_rel = model.hub_maps_["aa"] @ model.hub_maps_["bb"].T
    true = rotations["aa"].T @ rotations["bb"]
    assert np.abs(rel - true).max() < 0.1 < np.abs(hub_rel - true).max()
    assert len(model.history_) == 4 and "aa-bb" in model.history_[1]["pairs"]


def test_bad_multi_input(family):
    spaces, _, seeds, _ = family
    with pytest.raises(ValueError, match="hub 'en' is not one of"):
        MultiAligner(hub="en").fit(spaces, seeds)
    with pytest.raises(ValueError, match="no dictionary with the hub"):
        MultiAligner(hub="hub").fit(spaces, {("aa", "hub"): seeds[("aa", "hub")]})
    with pytest.raises(ValueError, match="method must be one of"):
        MultiAligner(method="x", hub="hub").fit(spaces, seeds)


def test_cli_fit_evaluate_export_translate(noisy_hub, tmp_path):
    spaces, dicts, seeds, _ = noisy_hub
    args = _cli_family(tmp_path, spaces, {**seeds, ("aa", "bb"): dicts[("aa", "bb")]})
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a])  # noqa: E731
    out = tmp_path / "run"
    r = run("fit-multi", *args, "--dict", f"aa-hub={tmp_path / 'aa-hub.txt'}", "--dict",
            f"bb-hub={tmp_path / 'bb-hub.txt'}", "--hub", "hub", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    r = run("evaluate-multi", out, "--dict", f"aa-bb={tmp_path / 'aa-bb.txt'}", "--json")
    res = json.loads(r.stdout)["pairs"]["aa-bb"]
    assert res["indirect"] and res["run"]["csls"]["p@1"] > res["hub_only"]["csls"]["p@1"]
    r = run("translate", out, "aa5", "--from", "aa", "--to", "bb", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["words"]["aa5"]["translations"]
    assert run("translate", out, "aa5").exit_code == 2  # needs --from/--to
    assert run("export-multi", out, "-o", tmp_path / "e", "-q").exit_code == 0
    assert sorted(os.listdir(tmp_path / "e")) == ["W_aa.npy", "W_bb.npy", "W_hub.npy", "aa.vec",
                                                  "bb.vec", "hub.vec"]
    r = run("export-multi", out, "-o", tmp_path / "e2", "--no-mapping", "--max-vocab", "7",
            "--out-format", "word2vec-binary", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["files"] == ["aa.bin", "bb.bin", "hub.bin"]
    aa = load_embeddings(tmp_path / "e2" / "aa.bin")
    assert len(aa) == 7
    W = np.load(tmp_path / "e" / "W_aa.npy")
    assert W.shape == (aa.dim, aa.dim)
    r = run("fit-multi", *args, "--dict", f"aa-xx={tmp_path / 'aa-hub.txt'}", "--hub", "hub",
            "-o", tmp_path / "r2")
    assert r.exit_code == 1 and "no vectors given for 'xx'" in r.output


@pytest.mark.slow
@pytest.mark.parametrize("with_direct", [False, True])
def test_real_fr_fi_beats_both_references(with_direct):
    """Default fit-multi on ../shared/data/multi: French->Finnish CSLS P@1 above the direct
    bilingual Procrustes (46.84) and the hub-only figure (47.59), trained (a) on fr-en and
    fi-en only, (b) also on the direct fr-fi dictionary."""
    import mapalign as ma

    d = real_data("multi", "fr.vec")
    spaces = {lang: ma.load_embeddings(os.path.join(d, f"{lang}.vec"))
              for lang in ("fr", "fi", "en")}
    names = ["fr-en", "fi-en"] + (["fr-fi"] if with_direct else [])
    seeds = {tuple(n.split("-")): ma.load_dictionary(os.path.join(d, f"{n}.train.txt"))
             for n in names}
    model = MultiAligner().fit(spaces, seeds)
    test = ma.load_dictionary(os.path.join(d, "fr-fi.test.txt"))
    assert _p1(model, spaces, test, "fr", "fi") > 47.59


def test_copy_false_normalises_in_place(family):
    spaces, _, seeds, _ = family
    mine = {k: Embeddings(v.words, v.vectors.copy()) for k, v in spaces.items()}
    before = mine["aa"].vectors
    a = MultiAligner(hub="hub").fit(spaces, seeds)
    b = MultiAligner(hub="hub", copy=False).fit(mine, seeds)
    assert mine["aa"].vectors is before  # the same buffer, now normalised
    np.testing.assert_allclose(np.linalg.norm(before, axis=1), 1, atol=1e-5)
    assert not np.allclose(np.linalg.norm(spaces["aa"].vectors, axis=1), 1)  # copy=True
    for lang in a.maps_:
        np.testing.assert_array_equal(a.maps_[lang], b.maps_[lang])


def _cli_family(tmp_path, spaces, dictionaries):
    """``LANG.vec`` and ``A-B.txt`` files; returns the ``LANG=PATH`` arguments."""
    write_inputs(tmp_path, {f"{lang}.vec": emb for lang, emb in spaces.items()},
                 {f"{a}-{b}.txt": pairs for (a, b), pairs in dictionaries.items()})
    return [f"{lang}={tmp_path / f'{lang}.vec'}" for lang in spaces]


def test_workers_without_a_local_cluster_are_refused(noisy_hub):
    """``workers`` sizes a local cluster: given with no scheduler, or with an address, it
    would be ignored, so the fit refuses it before any work."""
    spaces, _, seeds, _ = noisy_hub
    with pytest.raises(ValueError, match="needs scheduler='local'"):
        MultiAligner(hub="hub", workers=2).fit(spaces, seeds)


@pytest.mark.slow
def test_dask_local_cluster_gives_identical_results(noisy_hub, tmp_path):
    """The same fit on a real dask.distributed LocalCluster (two worker processes) and in
    this process: bit-identical maps and history; evaluate-multi on a running cluster, by
    its address, prints the same matrix."""
    distributed = pytest.importorskip("distributed")
    spaces, dicts, seeds, _ = noisy_hub
    here = MultiAligner(hub="hub").fit(spaces, seeds)
    there = MultiAligner(hub="hub", scheduler="local", workers=2).fit(spaces, seeds)
    assert there.scheduler_["scheduler"] == "dask" and there.scheduler_["workers"] == 2
    assert here.scheduler_ == {"scheduler": "in-process"}
    for lang in here.maps_:
        np.testing.assert_array_equal(here.maps_[lang], there.maps_[lang])
        np.testing.assert_array_equal(here.hub_maps_[lang], there.hub_maps_[lang])
    assert here.history_ == there.history_

    args = _cli_family(tmp_path, spaces, {**seeds, ("aa", "bb"): dicts[("aa", "bb")]})
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a])  # noqa: E731
    r = run("fit-multi", *args, "--dict", f"aa-hub={tmp_path / 'aa-hub.txt'}", "--dict",
            f"bb-hub={tmp_path / 'bb-hub.txt'}", "--hub", "hub", "-o", tmp_path / "run", "-q")
    assert r.exit_code == 0, r.output
    evaluate = ["evaluate-multi", tmp_path / "run", "--json",
                "--dict", f"aa-bb={tmp_path / 'aa-bb.txt'}",
                "--dict", f"aa-hub={tmp_path / 'aa-hub.txt'}"]
    local = json.loads(run(*evaluate).stdout)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        r = run(*evaluate, "--scheduler", cluster.scheduler_address)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == local
    runs = json.loads((tmp_path / "run" / "report.json").read_text())["evaluations"]
    assert [e["scheduler"]["scheduler"] for e in runs] == ["in-process", "dask"]
    assert runs[1]["scheduler"]["workers"] == 2
    assert local["pairs"]["aa-bb"]["run"]["csls"]["p@1"] > \
        local["pairs"]["aa-bb"]["hub_only"]["csls"]["p@1"]


@pytest.mark.slow
def test_unsupervised_fit_multi(tmp_path):
    """fit-multi --unsupervised: no dictionary; every language that shares the latent space
    is recovered, and a language that does not (an independent random space) is flagged as
    not converged (--strict: exit 3)."""
    spaces, dicts, rotations = make_family(("aa", "bb", "hub"), n_words=1000, dim=24,
                                           noise=0.3, hub_noise=0.3, seed=5)
    rng = np.random.default_rng(1)
    spaces["zz"] = Embeddings([f"zz{i}" for i in range(1000)],
                              rng.standard_normal((1000, 24)).astype(np.float32))
    args = _cli_family(tmp_path, spaces, {("aa", "bb"): dicts[("aa", "bb")]})
    r = CliRunner().invoke(main, ["fit-multi", *args, "--unsupervised", "--hub", "hub",
                                  "--restarts", "1", "--null-draws", "1", "--strict",
                                  "-o", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 3, r.output
    assert "zz to hub DID NOT CONVERGE" in r.output and "aa" not in r.output.split("map of")[1]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    fits = report["multi"]["hub_fits"]
    assert [fits[k]["converged"] for k in ("aa", "bb", "zz")] == [True, True, False]
    assert report["settings"]["seed"] == 0 and report["multi"]["unsupervised"]
    model, _ = __import__("mapalign.multi", fromlist=["load_multi"]).load_multi(
        tmp_path / "run")
    for lang in ("aa", "bb"):
        assert np.abs(model.maps_[lang] - rotations[lang].T @ rotations["hub"]).max() < 0.1
    r = CliRunner().invoke(main, ["evaluate-multi", str(tmp_path / "run"), "--json",
                                  "--dict", f"aa-bb={tmp_path / 'aa-bb.txt'}"])
    assert json.loads(r.stdout)["pairs"]["aa-bb"]["run"]["csls"]["p@1"] > 95
    r = CliRunner().invoke(main, ["fit-multi", *args, "--unsupervised", "--dict",
                                  f"aa-bb={tmp_path / 'aa-bb.txt'}", "-o",
                                  str(tmp_path / "r2")])
    assert r.exit_code == 2 and "exactly one" in r.output


def test_multi_on_the_device(device):
    """The joint fit on every backend (strict stand-in: no implicit transfer) gives the numpy
    maps; the spaces and seed rows go up once, and the loops read one scalar per sweep or per
    criterion pair."""
    import strict_xp

    spaces, dicts, _ = make_family(("aa", "bb", "hub"), n_words=600, dim=16, noise=0.3,
                                   hub_noise=1.0, seed=3)
    seeds = {k: v[:60] for k, v in dicts.items() if "hub" in k}
    ref = MultiAligner(hub="hub").fit(spaces, seeds)
    strict_xp.reset()
    got = MultiAligner(hub="hub", device=device).fit(spaces, seeds)
    for lang in ref.maps_:
        np.testing.assert_allclose(got.maps_[lang], ref.maps_[lang], atol=1e-5)
    if device == "strict":
        assert strict_xp.COUNTS["h2d"] == 3 + 2 * 2
        rounds = len(got.history_)
        assert strict_xp.COUNTS["sync"] <= rounds * (got.sweeps + 6 + 1)
