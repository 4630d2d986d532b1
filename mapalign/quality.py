"""How good a mapping is without a test dictionary.

Every measure looks at the ``n`` most frequent source words (10,000 by default) and their CSLS
translations among the ``n`` most frequent target words, in the run's shared space.

The criterion is **isometric agreement**: the run's translations of the frequent words are
taken as a dictionary, an orthogonal map is fitted on half of it (every other word by
frequency rank) between the two *original* spaces, normalised alike for every method
(``unit,center,unit`` over those ``n`` words), and each word of the other half scores the
cosine of its mapped vector with the vector of its translation; the two halves swap roles.
The criterion is the mean of those cosines. It scores the translations a run gives, never the
geometry of its space, so a method that stretches its space (multi-step re-weighting inflates
every cosine) gains nothing by it; and since each half is scored by a map it did not shape, a
dictionary of unrelated pairs scores near zero. It does lean towards runs whose own map is
like the one it refits (refitted with another method's map, each refit ranks its own method's
runs first), so ``compare`` warns when two runs come from different methods
(docs/results.md).
The unsupervised fit's own convergence test keeps its definition (the mean cosine in the
fit's space: ``space_cosine`` here).

The reference is what the same criterion gives for mappings that carry no information: random
orthogonal maps of the same normalised source space (``reference_draws`` of them, seeded).
``docs/results.md`` holds the evidence behind the choice of criterion (against the space
cosine, CSLS margins, z-scores and the round-trip rate) and behind the verdict's thresholds.
"""
from __future__ import annotations

import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from .backend import asnumpy, get_array_module, get_xp, to_device
from .evaluation import bootstrap_ci
from .normalize import normalize, unit_rows
from .retrieval import DEFAULT_BUDGET, mean_topk_similarity, nearest

MEASURE = "isometric agreement"
N_WORDS = 10000
REFERENCE_DRAWS = 3
# Verdict thresholds on the scaled criterion, 0 at the reference (random maps) and 1 at full
# agreement: the reference depends on the dimension (about 0.47 at 50-d, 0.22 at 300-d on the
# real pairs), a distance above it does not; see docs/results.md for the evidence
GOOD, USABLE = 0.35, 0.20


def _common_space(V, n, xp):
    """The first ``n`` rows of raw vectors, normalised the same way whatever the run did."""
    return normalize(to_device(np.asarray(V[:n], dtype=np.float32), xp), "unit,center,unit")[0]


def _translations(S, T, csls_k, budget):
    """CSLS best target of each row of ``S`` (and the two best scores), targets' penalties from
    ``S``; unit rows in."""
    r_t = mean_topk_similarity(T, S, csls_k, budget)
    idx, val = nearest(S, T, 2, "csls", csls_k, r_target=r_t, budget=budget)
    return idx[:, 0], val, r_t


def isometric_agreement(X, Z, fwd, folds: int = 2, method: str = "procrustes"):
    """Per word: the cosine of ``X[i] W`` with ``Z[fwd[i]]``, ``W`` the orthogonal map fitted on
    the pairs ``(i, fwd[i])`` of the other folds (word ``i`` in fold ``i % folds``; with one
    fold, on all pairs: in-sample). ``X``, ``Z``: unit rows of the common space (device
    arrays); ``fwd``: numpy indices. ``method``: the map refitted, ``"procrustes"`` for the
    criterion; another of :data:`mapalign.methods.METHODS` scores the held-out words by the
    cosine in that method's shared space (the benchmark's evidence that each refit favours
    the runs of its own method, see docs/results.md)."""
    from .methods import make_solver

    xp = get_array_module(X, Z)
    n = len(fwd)
    fold = np.arange(n) % folds
    Zf = Z[to_device(np.asarray(fwd), xp)]
    solve = make_solver(method, X, Z)
    out = np.empty(n, dtype=np.float64)
    for f in range(folds):
        test = np.nonzero(fold == f)[0]
        train = to_device(np.nonzero(fold != f)[0] if folds > 1 else np.arange(n), xp)
        # one BLAS thread: a d x d SVD gains nothing from more, and on a loaded machine their
        # contention made each 300 x 300 SVD take 1.3-1.9 s instead of 0.02-0.03 s
        with threadpool_limits(1, user_api="blas"):
            A, B = solve(X[train], Zf[train])
        t = to_device(test, xp)
        out[test] = asnumpy(xp.sum(unit_rows(X[t] @ A) * unit_rows(Zf[t] @ B), axis=1))
    return out


def measures(S, T, X, Z, csls_k: int = 10, budget: int = DEFAULT_BUDGET) -> dict:
    """Every per-word measure of a mapping, and its hubness. ``S``, ``T``: the frequent words
    in the run's shared space; ``X``, ``Z``: the same words in the common space. Returns numpy
    arrays per source word (``isometric``, ``space_cosine``, ``csls_margin``, ``z_score``,
    ``round_trip``), the translations ``fwd`` and ``hubness``."""
    xp = get_array_module(S, T)
    S, T = unit_rows(S), unit_rows(T)
    fwd, top2, _ = _translations(S, T, csls_k, budget)
    fwd_d = to_device(fwd, xp)
    best = S * T[fwd_d]
    cos = asnumpy(xp.sum(best, axis=1)).astype(np.float64)
    # z-score of the best cosine against the word's cosines with every target: mean and
    # variance from the targets' mean and second moment, no n x n matrix
    mu_t = T.mean(axis=0)
    mean = S @ mu_t
    var = xp.sum((S @ ((T.T @ T) / T.shape[0])) * S, axis=1) - mean ** 2
    z = (cos - asnumpy(mean)) / np.sqrt(np.maximum(asnumpy(var), 1e-12))
    # round trip: the translation's own CSLS best source word is the word itself
    used = np.unique(fwd)
    r_s = mean_topk_similarity(S, T, csls_k, budget)
    back, _ = nearest(T[to_device(used, xp)], S, 1, "csls", csls_k, r_target=r_s,
                      budget=budget)
    back_of = np.full(T.shape[0], -1, dtype=np.int64)
    back_of[used] = back[:, 0]
    round_trip = (back_of[fwd] == np.arange(len(fwd))).astype(np.float64)
    return {"isometric": isometric_agreement(X, Z, fwd), "space_cosine": cos,
            "csls_margin": (top2[:, 0] - top2[:, 1]).astype(np.float64), "z_score": z,
            "round_trip": round_trip, "fwd": fwd, "hubness": hubness(fwd, T.shape[0])}


def hubness(fwd, n_targets: int) -> dict:
    """How unevenly the queries' translations spread over the targets: the skewness of each
    target's retrieval count, and the share of the queries taken by the 1% most retrieved
    targets (1% when every target is retrieved equally often)."""
    counts = np.bincount(np.asarray(fwd), minlength=n_targets).astype(np.float64)
    top = max(1, int(np.ceil(0.01 * n_targets)))
    dev = counts - counts.mean()
    m2 = np.mean(dev ** 2)  # the sample skewness m3 / m2^1.5 (scipy.stats.skew's default)
    return {"skew": float(np.mean(dev ** 3) / m2 ** 1.5) if m2 > 0 else 0.0,
            "top1pct_share": float(np.sort(counts)[::-1][:top].sum() / max(len(fwd), 1)),
            "targets_retrieved": int(np.count_nonzero(counts)), "targets": int(n_targets)}


def random_orthogonal(d_src: int, d_tgt: int, rng) -> np.ndarray:
    """A random (semi-)orthogonal ``d_src x d_tgt`` matrix (Haar-distributed)."""
    q, r = np.linalg.qr(rng.standard_normal((max(d_src, d_tgt), min(d_src, d_tgt))))
    q = q * np.sign(np.diag(r))
    return (q if d_src >= d_tgt else q.T).astype(np.float32)


def reference(X, Z, draws: int = REFERENCE_DRAWS, seed: int = 0, csls_k: int = 10,
              budget: int = DEFAULT_BUDGET) -> dict:
    """The criterion of mappings that carry no information: ``draws`` random orthogonal maps
    of the common source space ``X`` against ``Z``, seeded."""
    xp = get_array_module(X, Z)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        Q = to_device(random_orthogonal(X.shape[1], Z.shape[1], rng), xp)
        fwd, _, _ = _translations(unit_rows(X @ Q), Z, csls_k, budget)
        values.append(float(np.mean(isometric_agreement(X, Z, fwd))))
    return {"mean": float(np.mean(values)), "max": float(np.max(values)), "draws": values,
            "maps": "random orthogonal", "seed": seed}


def scaled(criterion: float, ref: float) -> float:
    """The criterion on a scale where random maps (the reference) are 0 and full agreement 1."""
    return (criterion - ref) / max(1.0 - ref, 1e-12)


def level(ref: float, value: float) -> float:
    """The criterion whose :func:`scaled` value is ``value`` for this reference."""
    return ref + value * (1.0 - ref)


def verdict(criterion: float, ci95, ref: float) -> str:
    """One line in words, from the scaled criterion (thresholds from the evidence in
    docs/results.md)."""
    if ci95[0] is None or ci95[0] <= ref + 0.02:
        return (f"no alignment found: the criterion ({criterion:.3f}) is not above what random "
                f"maps reach ({ref:.3f})")
    at = scaled(criterion, ref)
    where = f"{at:.2f} of the way from random maps (0) to full agreement (1)"
    if at >= GOOD:
        return f"good: {where}; most frequent words find consistent translations"
    if at >= USABLE:
        return (f"partial: {where}; expect many wrong translations (check a sample, or "
                "compare with another run)")
    return f"poor: only {where}; most translations are wrong"


def assess(S, T, X, Z, *, csls_k: int = 10, reference_draws: int = REFERENCE_DRAWS,
           n_boot: int = 2000, seed: int = 0, budget: int = DEFAULT_BUDGET,
           return_words: bool = False, ref: dict = None) -> dict:
    """The dictionary-free evaluation of mapped words ``S``/``T`` (the run's space) whose common
    -space versions are ``X``/``Z``: criterion with a bootstrap interval over the words,
    reference level, round trip, hubness, verdict (see :func:`evaluate_unsupervised`).
    ``ref``: the reference of these ``X``/``Z`` already computed (:func:`reference`)."""
    m = measures(S, T, X, Z, csls_k, budget)
    per_word = m["isometric"]
    crit = float(per_word.mean())
    ci = [None if v is None else v / 100 for v in bootstrap_ci(per_word, n_boot, seed)]
    if ref is None:
        ref = reference(X, Z, reference_draws, seed, csls_k, budget)
    out = {"measure": MEASURE, "criterion": crit, "criterion_ci95": ci,
           "reference": ref["mean"], "reference_detail": ref,
           "above_reference": crit - ref["mean"], "scaled": scaled(crit, ref["mean"]),
           "round_trip": float(m["round_trip"].mean()),
           "hubness": m["hubness"]["top1pct_share"], "hubness_detail": m["hubness"],
           "space_cosine": float(m["space_cosine"].mean()),
           "verdict": verdict(crit, ci, ref["mean"]),
           "words": int(len(per_word)), "targets": int(T.shape[0]), "csls_k": csls_k,
           "bootstrap": {"resamples": n_boot, "seed": seed, "level": 0.95,
                         "unit": "source words"}}
    if return_words:
        out["per_word"] = per_word.tolist()
        out["translations"] = m["fwd"].tolist()
    return out


def evaluate_unsupervised(model, src, tgt, n: int = N_WORDS, csls_k: int = 10,
                          reference_draws: int = REFERENCE_DRAWS, n_boot: int = 2000,
                          seed: int = 0, device: str = "cpu", budget: int = DEFAULT_BUDGET,
                          return_words: bool = False, mapped=None, ref: dict = None) -> dict:
    """How good a fitted two-language mapping is, without a dictionary.

    Over the ``n`` most frequent source words and their CSLS translations among the ``n``
    most frequent target words: ``criterion`` (isometric agreement, see the module's text)
    with a 95% bootstrap interval over the words (``criterion_ci95``, seeded), ``reference``
    (the criterion of random orthogonal maps for this pair), ``round_trip`` (share of words
    whose translation translates back to them), ``hubness`` (the share of the queries taken
    by the 1% most retrieved targets; ``hubness_detail`` adds the skew of the targets'
    retrieval counts), ``space_cosine`` (the unsupervised fit's criterion: mean cosine in the
    run's space) and a ``verdict``. ``mapped``: the first ``n`` words of each side already
    mapped (a run's cache: the same values, row for row); ``ref``: the reference of this pair
    already computed (it depends on the inputs alone, not on the mapping)."""
    xp = get_xp(device)
    if mapped is None:
        S, T = model.mapped(src, tgt, n, n, device)
    else:
        S, T = (to_device(np.asarray(M[:n]), xp) for M in mapped)
    X, Z = _common_space(src.vectors, n, xp), _common_space(tgt.vectors, n, xp)
    return assess(S, T, X, Z, csls_k=csls_k, reference_draws=reference_draws, n_boot=n_boot,
                  seed=seed, budget=budget, return_words=return_words, ref=ref)


def compare_unsupervised(a: dict, b: dict, words_a, words_b, n_boot: int = 2000,
                         seed: int = 0) -> dict:
    """Paired comparison of two dictionary-free evaluations (``return_words=True``) of runs
    whose frequent source words are ``words_a``/``words_b``: the difference in criterion over
    the words both can query, its paired 95% bootstrap interval, and which run it prefers
    (none when the interval holds 0)."""
    pos_b = {w: i for i, w in enumerate(words_b[:len(b["per_word"])])}
    shared = [(i, pos_b[w]) for i, w in enumerate(words_a[:len(a["per_word"])]) if w in pos_b]
    if not shared:
        raise ValueError("the two runs share no frequent source word")
    ia, ib = np.array(shared).T
    va = np.asarray(a["per_word"])[ia]
    vb = np.asarray(b["per_word"])[ib]
    diff = va - vb
    ci = [v / 100 for v in bootstrap_ci(diff, n_boot, seed)]
    prefers = "a" if ci[0] > 0 else "b" if ci[1] < 0 else None
    return {"measure": MEASURE, "words": int(len(diff)), "a": float(va.mean()),
            "b": float(vb.mean()), "difference": float(diff.mean()), "difference_ci95": ci,
            "prefers": prefers, "reference_a": a["reference"], "reference_b": b["reference"],
            "bootstrap": {"resamples": n_boot, "seed": seed, "level": 0.95,
                          "unit": "source words"}}


# ------------------------------------------------------------------------- run directories
def _first_words(info: dict, settings: dict, what: str, n: int, moved=None, checked=False):
    """The first ``n`` words of a run's input as the fit read them (only those rows are read:
    the criterion needs no more)."""
    import os

    from .loading import load_embeddings
    from .store import _hint, checked_input

    if checked and moved is not None:
        path = os.fspath(moved)
    else:
        hint = _hint(what) if what in ("source", "target") else ""
        path = checked_input(info, what, moved, False, hint)
    limit = settings.get("max_vocab")
    with warnings.catch_warnings():  # what the fit said of these words: in its report
        warnings.simplefilter("ignore")
        return load_embeddings(path, min(n, limit) if limit else n, settings["format"],
                               settings["encoding_errors"])


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _recorded_reference(report: dict, q, words: int, targets: int, seed: int,
                        csls_k: int = 10, draws: int = REFERENCE_DRAWS):
    """The reference a fit recorded (``q``: its quality entry in ``report``), where it is the
    one these settings would compute: the same version, measure, words, seed and draws (it
    depends on the inputs' first words alone, which are checked to be the run's); else
    None."""
    from . import __version__

    ref = q.get("reference_detail") if isinstance(q, dict) else None
    if not isinstance(ref, dict) or report.get("mapalign_version") != __version__:
        return None
    same = (q.get("measure"), q.get("words"), q.get("targets"), q.get("csls_k"),
            ref.get("seed"), len(ref.get("draws") or ()), ref.get("maps")) == \
        (MEASURE, words, targets, csls_k, seed, draws, "random orthogonal")
    return ref if same else None


def evaluate_unsupervised_run(run_dir, n: int = N_WORDS, record: bool = True, src=None,
                              tgt=None, verify: bool = False, device=None,
                              return_words: bool = False, seed: int = 0,
                              reuse_reference: bool = True) -> dict:
    """:func:`evaluate_unsupervised` of a two-language run directory; appended to the run's
    report (``evaluations``, with no dictionary) when ``record``.

    Only the inputs' first ``n`` words are read again (checked to be the run's;
    ``src``/``tgt`` name them where they have moved); their mapped vectors come from the run's
    cache where it holds them (the same values), and the reference from what the fit recorded
    where it is the one these settings compute (``reuse_reference``; it does not depend on the
    mapping): ``reference_recorded`` says which."""
    from .backend import resolve_device
    from .cache import RunCache
    from .mapping import load_run
    from .store import check_inputs, update_report

    model, report = load_run(run_dir)
    check_inputs(report, src, tgt, verify)
    s = report["settings"]
    words = [_first_words(report["inputs"][side], s, side, n, moved, checked=True)
             for side, moved in (("source", src), ("target", tgt))]
    cache, mapped = RunCache(run_dir, report, verify), None
    if cache.has_vectors() and all(cache.words(side)[:len(e)] == list(e.words)
                                   for side, e in zip(("source", "target"), words)):
        mapped = tuple(cache.vectors(side)[:len(e)]
                       for side, e in zip(("source", "target"), words))
    ref = _recorded_reference(report, report.get("quality"), min(n, len(words[0])),
                              min(n, len(words[1])), seed) if reuse_reference else None
    result = evaluate_unsupervised(
        model, words[0], words[1], n=n, seed=seed, return_words=return_words, mapped=mapped,
        device=resolve_device(device or report.get("device_used", "cpu")), ref=ref)
    result["reference_recorded"] = ref is not None
    result["method"] = run_method(report)
    if record:
        update_report(run_dir, "evaluations", {
            "dictionary": None, "created": _now(),
            "quality": {k: v for k, v in result.items()
                        if k not in ("per_word", "translations")}},
            report["mapping"]["sha256"])
    if return_words:
        result["source_words"] = words[0].words[:result["words"]]
        result["target_words"] = words[1].words[:result["targets"]]
    return result


def run_method(report: dict):
    """The method whose map gives a run's translations (from its report): the supervised
    method, or the final map of a semi-supervised or unsupervised fit; None where the report
    does not say."""
    params = (report.get("model") or {}).get("params") or {}
    return params.get("method") or params.get("final")


# Across methods the criterion's preference can be wrong (docs/results.md): it refits an
# orthogonal map and leans towards runs whose own map is near one. On the four real pairs its
# preferences for a Procrustes run over another method's disagreed with the test for 23 of 255
# pairs of runs whose test P@1 differ significantly; on the generated demo pair it prefers a
# multi-step run over a CCA run whose test P@1 is 19 points higher.
ACROSS_METHODS = ("the two runs come from different methods ({a}, {b}): the criterion refits "
                  "an orthogonal map and leans towards runs whose map is near one (Procrustes "
                  "most, CCA least), so its preference between methods can be wrong even when "
                  "the interval is clear of 0; compare methods with {dictionary}")


def compare_unsupervised_runs(run_a, run_b, n: int = N_WORDS, n_boot: int = 2000,
                              seed: int = 0, src=None, tgt=None, verify=False,
                              device=None) -> dict:
    """Two runs compared without a dictionary: the difference of their criteria over the
    frequent source words both can query, with a paired bootstrap interval, and the run it
    prefers (see :func:`compare_unsupervised`)."""
    import os

    ev = [evaluate_unsupervised_run(r, n, record=False, src=src, tgt=tgt, verify=verify,
                                    return_words=True, seed=seed, device=device)
          for r in (run_a, run_b)]
    out = compare_unsupervised(ev[0], ev[1], ev[0]["source_words"], ev[1]["source_words"],
                               n_boot, seed)
    runs = {"a": os.path.abspath(run_a), "b": os.path.abspath(run_b)}
    out.update(run_a=runs["a"], run_b=runs["b"], preferred_run=runs.get(out["prefers"]),
               verdict_a=ev[0]["verdict"], verdict_b=ev[1]["verdict"],
               methods={"a": ev[0]["method"], "b": ev[1]["method"]},
               same_method=ev[0]["method"] == ev[1]["method"])
    if not out["same_method"] and None not in out["methods"].values():
        from .errors import option
        from .lock import MapalignWarning

        warnings.warn(ACROSS_METHODS.format(
            a=ev[0]["method"], b=ev[1]["method"],
            dictionary=option("dictionary", "TEST", python="a test dictionary")),
            MapalignWarning, stacklevel=2)
    return out


def evaluate_unsupervised_multi(model, spaces: dict, pairs=None, n: int = N_WORDS,
                                seed: int = 0, refs: dict = None, device: str = "cpu",
                                **kw) -> dict:
    """:func:`assess` of each directed pair (``pairs``: ``[(a, b), ...]``, default every
    ordered pair) of a fitted :class:`~mapalign.multi.MultiAligner`; ``spaces``: each
    language's :class:`~mapalign.loading.Embeddings` as read (raw vectors: its first ``n``
    words are used); ``refs``: references already computed, by ``"a-b"``."""
    import itertools

    langs = sorted({x for p in pairs for x in p}) if pairs else list(spaces)
    pairs = pairs or list(itertools.permutations(langs, 2))
    xp = get_xp(device)
    mapped = {lang: to_device(model.transform(lang, spaces[lang].vectors[:n]), xp)
              for lang in langs}
    common = {lang: _common_space(spaces[lang].vectors, n, xp) for lang in langs}
    refs = refs or {}
    return {f"{a}-{b}": assess(mapped[a], mapped[b], common[a], common[b], seed=seed,
                               ref=refs.get(f"{a}-{b}"), **kw)
            for a, b in pairs}


def hub_pairs(model) -> list:
    """The pairs a multilingual fit records the criterion of: each language to the hub."""
    return [(lang, model.hub) for lang in model.languages_ if lang != model.hub]


def evaluate_unsupervised_multi_run(run_dir, pairs=None, n: int = N_WORDS,
                                    record: bool = True, seed: int = 0,
                                    reuse_reference: bool = True, device=None) -> dict:
    """:func:`evaluate_unsupervised_multi` of a multilingual run directory (each language's
    first ``n`` words read again, checked to be the run's); every directed pair unless
    ``pairs`` names some. The references the fit recorded (each language to the hub) are
    reused where they are the ones these settings compute (see
    :func:`evaluate_unsupervised_run`)."""
    from .multi import load_multi
    from .store import update_report

    model, report = load_multi(run_dir)
    langs = sorted({x for p in pairs for x in p}) if pairs else list(model.languages_)
    for lang in langs:
        if lang not in model.languages_:
            raise ValueError(f"{lang!r} is not in the run ({', '.join(model.languages_)})")
    spaces = {lang: _first_words(report["inputs"][lang], report["settings"], lang, n)
              for lang in langs}
    recorded = (report.get("multi") or {}).get("quality") or {}
    refs = {}
    if reuse_reference and isinstance(recorded, dict):
        for key, q in recorded.items():
            a, _, b = key.partition("-")
            if a in spaces and b in spaces:
                refs[key] = _recorded_reference(report, q, min(n, len(spaces[a])),
                                                min(n, len(spaces[b])), seed)
    from .backend import resolve_device

    out = evaluate_unsupervised_multi(model, spaces, pairs, n, seed,
                                      {k: v for k, v in refs.items() if v},
                                      resolve_device(device or report.get("device_used",
                                                                          "cpu")))
    for key, res in out.items():
        res["reference_recorded"] = refs.get(key) is not None
    if record:
        update_report(run_dir, "evaluations", {"dictionaries": None, "quality": out,
                                               "created": _now()},
                      report["mapping"]["sha256"])
    return out
