"""More than two languages in one space.

Every language ``L`` gets an orthogonal map ``W_L``; the shared space holds ``normalize(X_L) W_L``
and the hub language's map is the identity (the space is the hub's). Methods:

* ``hub`` — each language mapped to the hub alone (Procrustes on its dictionary with the hub,
  then MUSE-style refinement with the seed pairs kept), as one would by running ``fit`` once per
  language;
* ``gpa`` — generalised Procrustes analysis over every dictionary at once (Gower 1975;
  Kementchedjhieva et al., CoNLL 2018), with pairwise correspondences: the maps minimise
  ``sum over dictionaries (a, b), pairs (i, j) of ||X_a[i] W_a - X_b[j] W_b||^2`` by block
  coordinate descent, each language's map re-solved by Procrustes against the current images
  of all its partners, the hub held fixed; it starts from the hub maps, so indirect
  dictionaries (French-Finnish) pull the non-hub languages together too;
* ``joint`` (default) — multilingual pseudo-supervised refinement (after Chen & Cardie, EMNLP
  2018): in each round dictionaries are induced by mutual CSLS best matches between pairs of
  languages in the current space (``induce_pairs="all"``: every pair; the default
  ``"unsupervised"``: the pairs that have no seed dictionary), joined with the seed
  dictionaries, and the maps are re-solved jointly as in ``gpa``; the round with the best
  unsupervised criterion (the mean over directed pairs of the mean cosine of the frequent words
  with their CSLS translations) is kept.

Defaults by measurement on ../shared/data/multi (fr-fi test, CSLS P@1, trained on fr-en and
fi-en): refining the hub maps (``refine=5``) lowered the indirect pair from 47.59 to 46.08, and
inducing dictionaries for pairs that already have seed pairs lowered ``joint`` to 46.39, while
inducing only for the unsupervised pair raised it to 47.74.
"""
from __future__ import annotations

import itertools
import os
import time
import warnings
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .errors import option
from .backend import asnumpy, get_array_module, get_xp, resolve_device, to_device
from .loading import Embeddings, as_rows, check_pairs, check_vectors, index_pairs, \
    load_embeddings
from .methods.procrustes import polar, solve as procrustes_solve
from .normalize import apply_normalization, normalize
from .params import Params
from .refinement import RefineOptions, induce, refine
from .scheduler import check_scheduler, open_scheduler
from .retrieval import DEFAULT_BUDGET, nearest
from .schema import ReportError
from .store import MULTI, check_run_dir, read_run, write_run
from .unsupervised.criterion import mean_cosine_criterion

MULTI_METHODS = ("hub", "gpa", "joint")


def check_hub_dictionaries(languages, hub: str, pairs) -> None:
    """A supervised fit needs a dictionary between every language and the hub (either
    direction); ``pairs`` holds ``(a, b)`` keys."""
    for lang in languages:
        if lang != hub and (lang, hub) not in pairs and (hub, lang) not in pairs:
            give = option("dictionaries", f"{lang}-{hub}=PATH",
                          python=f"dictionaries[({lang!r}, {hub!r})]")
            raise ValueError(f"{lang}: no dictionary with the hub {hub!r} (give {give})")


# ------------------------------------------------------------------ independent tasks
# Module-level functions of one item and shared keyword arguments, so that a Dask worker can
# run them (see mapalign.scheduler). ``spaces`` maps each language to its normalised matrix.

def _supervised_hub_map(lang, *, spaces, hub, rows, rounds, vocab, csls_k):
    """Procrustes on the seed pairs with the hub, then MUSE-style refinement (seed pairs
    kept)."""
    rows = rows[lang]
    W, _, _ = refine(spaces[lang], spaces[hub], procrustes_solve,
                     RefineOptions(rounds=rounds, vocab=vocab, csls_k=csls_k),
                     rows=rows, seed_rows=rows)
    return W, {"seed_pairs": int(len(rows[0]))}


def _unsupervised_hub_map(lang, *, spaces, words, hub, seed, device, options, log=None):
    """The unsupervised aligner from ``lang`` to the hub (orthogonal: final Procrustes);
    ``log`` (in-process only) hears its progress."""
    from .unsupervised import UnsupervisedAligner

    X, Z = spaces[lang], spaces[hub]
    xp = get_array_module(X, Z)
    model = UnsupervisedAligner(**dict(options, normalize="none", final="procrustes",
                                       seed=seed, device=device))
    model.fit(Embeddings(words[lang], asnumpy(X)), Embeddings(words[hub], asnumpy(Z)),
              progress=(lambda m: log(f"{lang} -> {hub}: {m}")) if log else None)
    test = model.convergence_
    return to_device(model.W_src_, xp), {
        "criterion": model.criterion_, "converged": model.converged_,
        "null_level": test["null_level"], "margin": test["margin"],
        "best_seed": model.best_seed_, "seconds": model.fit_seconds_}


def _cross_covariance(item, *, spaces):
    """``X_a[i]^T X_b[j]`` (float64) for a dictionary ``(a, b, i, j)``: all that generalised
    Procrustes needs of it."""
    a, b, i, j = item
    xp = get_array_module(spaces[a])
    return spaces[a][i].T.astype(xp.float64) @ spaces[b][j].astype(xp.float64)


def _induce_pair(item, *, spaces, vocab, csls_k):
    """Mutual CSLS best matches between two languages in the current space."""
    a, b, W_a, W_b = item
    n_a, n_b = min(vocab, len(spaces[a])), min(vocab, len(spaces[b]))
    i, j, _ = induce(spaces[a][:n_a] @ W_a, spaces[b][:n_b] @ W_b,
                     RefineOptions(csls_k=csls_k, induction="mutual"))
    return i, j


def _pair_criterion(item, *, spaces, n, vocab, csls_k):
    a, b, W_a, W_b = item
    return mean_cosine_criterion(spaces[a][:min(n, len(spaces[a]))] @ W_a,
                                 spaces[b][:min(vocab, len(spaces[b]))] @ W_b, n, csls_k)


class MultiAligner(Params):
    """Several languages in one space, in scikit-learn's style.

    >>> model = MultiAligner(hub="en").fit({"fr": fr, "fi": fi, "en": en},
    ...                                    {("fr", "en"): fr_en, ("fi", "en"): fi_en})
    >>> model.maps_["fr"], model.transform("fr", vectors)

    ``unsupervised=True`` maps each language to the hub with the unsupervised aligner
    (``unsupervised_options`` are its parameters) and takes no dictionary; the joint step then
    induces dictionaries between every pair. Per-language maps, induced dictionaries and the
    criterion's pairs are independent tasks, run on ``scheduler`` (see
    :mod:`mapalign.scheduler`; ``workers`` sizes a local cluster); results do not depend on
    it. ``copy=False`` normalises the input vectors in place (less memory, the inputs are
    overwritten).

    ``save(path)`` writes a multilingual run (as ``mapalign fit-multi`` does) and
    :func:`mapalign.load` reads one back; ``translate`` finds the nearest words of any
    language in any other.
    """

    _fitted_attr = "maps_"
    ARRAYS = ("maps_", "hub_maps_", "means_")  # in the run's multi.npz

    def __init__(self, method: str = "joint", hub: str = "en", refine: int = 0,
                 rounds: int = 3, sweeps: int = 10, vocab: int = 15000, csls_k: int = 10,
                 criterion_vocab: int = 10000, normalize: str = "unit,center,unit",
                 device: str = "cpu", induce_pairs: str = "unsupervised",
                 unsupervised: bool = False, unsupervised_options: Optional[dict] = None,
                 seed: int = 0, scheduler: Optional[str] = None,
                 workers: Optional[int] = None, copy: bool = True):
        self.method = method
        self.hub = hub
        self.refine = refine
        self.rounds = rounds
        self.sweeps = sweeps
        self.vocab = vocab
        self.csls_k = csls_k
        self.criterion_vocab = criterion_vocab
        self.normalize = normalize
        self.device = device
        self.induce_pairs = induce_pairs
        self.unsupervised = unsupervised
        self.unsupervised_options = unsupervised_options
        self.seed = seed
        self.scheduler = scheduler
        self.workers = workers
        self.copy = copy

    def _validate(self, spaces, dictionaries):
        check_scheduler(self.scheduler, self.workers)
        if self.method not in MULTI_METHODS:
            raise ValueError(f"method must be one of {MULTI_METHODS}, not {self.method!r}")
        if self.induce_pairs not in ("unsupervised", "all"):
            raise ValueError("induce_pairs must be 'unsupervised' or 'all', "
                             f"not {self.induce_pairs!r}")
        if self.hub not in spaces:
            raise ValueError(f"the hub {self.hub!r} is not one of the languages "
                             f"{sorted(spaces)}")
        dims = {lang: e.dim for lang, e in spaces.items()}
        if len(set(dims.values())) > 1:
            raise ValueError(f"orthogonal multilingual maps need one dimension: {dims}")
        if self.unsupervised and dictionaries:
            raise ValueError("an unsupervised multilingual fit takes no seed dictionary")
        for a, b in dictionaries:
            if a not in spaces or b not in spaces:
                raise ValueError(f"dictionary {a}-{b}: both languages must be among "
                                 f"{sorted(spaces)}")
        if not self.unsupervised:
            check_hub_dictionaries(spaces, self.hub, dictionaries)

    def fit(self, spaces: Dict[str, Embeddings],
            dictionaries: Optional[Dict[Tuple[str, str], Sequence[Tuple[str, str]]]] = None,
            progress=None, allow_swapped: bool = False):
        """Fit on ``spaces`` (language -> embeddings) and ``dictionaries`` (``(a, b)`` ->
        pairs). A dictionary that fits its two languages far better swapped raises
        :class:`~mapalign.loading.SwappedError` unless ``allow_swapped``; low coverage warns;
        ``seed_info_`` counts each dictionary's used and dropped pairs."""
        t0 = time.perf_counter()
        log = progress or (lambda m: None)
        dictionaries = dictionaries or {}
        for lang, emb in spaces.items():
            check_vectors(emb, f"{lang}")
        self._validate(spaces, dictionaries)
        for (a, b), pairs in dictionaries.items():
            name = getattr(pairs, "path", None) or f"the {a}-{b} dictionary"
            for message in check_pairs(pairs, spaces[a], spaces[b], name,
                                       allow_swapped=allow_swapped,
                                       hint=f"did you mean {b}-{a} for this {a}-{b} "
                                            "dictionary?"):
                warnings.warn(message)
        self.device_ = resolve_device(self.device)
        xp = get_xp(self.device_)
        self.languages_ = list(spaces)
        X, self.means_ = {}, {}
        for lang, emb in spaces.items():
            X[lang], means = normalize(to_device(emb.vectors, xp), self.normalize,
                                       inplace=not self.copy)
            self.means_[lang] = [asnumpy(m) for m in means]
        seeds, self.seed_info_ = {}, {}
        for (a, b), pairs in dictionaries.items():
            s, t, info = index_pairs(pairs, spaces[a], spaces[b])
            seeds[(a, b)] = (to_device(s, xp), to_device(t, xp))
            self.seed_info_[f"{a}-{b}"] = info
        with open_scheduler(self.scheduler, self.workers) as sched:
            self.scheduler_ = sched.describe()
            shared = sched.share(X)
            W = self._hub_maps(sched, shared, spaces, seeds, xp, log)
            self.hub_maps_ = {k: asnumpy(v) for k, v in W.items()}
            self.history_ = []
            if self.method in ("gpa", "joint"):
                M_seed = self._covariances(sched, shared, seeds)
                W = self._gpa(M_seed, W, xp)
                self.history_.append({"round": 0, "criterion": self._criterion(sched, shared,
                                                                                 W)})
                log(f"generalised Procrustes: mean translation cosine "
                    f"{self.history_[-1]['criterion']:.4f}")
            if self.method == "joint":
                W = self._joint(sched, shared, M_seed, seeds, W, xp, log)
        self.maps_ = {k: asnumpy(v) for k, v in W.items()}
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _hub_maps(self, sched, shared, spaces, seeds, xp, log):
        others = [lang for lang in self.languages_ if lang != self.hub]
        if self.unsupervised:
            words = sched.share({lang: spaces[lang].words for lang in self.languages_})
            extra = {"log": log} if sched.name == "in-process" else {}  # not to workers
            out = sched.map(_unsupervised_hub_map, others, spaces=shared, words=words,
                            hub=self.hub, seed=self.seed, device=self.device_,
                            options=self.unsupervised_options or {}, **extra)
        else:
            rows = {lang: self._hub_rows(seeds, lang) for lang in others}
            out = sched.map(_supervised_hub_map, others, spaces=shared, hub=self.hub,
                            rows=rows, rounds=self.refine, vocab=self.vocab,
                            csls_k=self.csls_k)
        W = {self.hub: xp.eye(spaces[self.hub].dim, dtype=xp.float32)}
        self.hub_fits_ = {}
        for lang, (W_lang, info) in zip(others, out):
            W[lang] = to_device(W_lang, xp)
            self.hub_fits_[lang] = info
            log(f"hub map {lang} -> {self.hub}: " + ", ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items()))
        return W

    def _hub_rows(self, seeds, lang):
        if (lang, self.hub) in seeds:
            return seeds[(lang, self.hub)]
        s, t = seeds[(self.hub, lang)]
        return t, s

    def _covariances(self, sched, shared, dicts):
        items = [(a, b, i, j) for (a, b), (i, j) in dicts.items()]
        return dict(zip(dicts, sched.map(_cross_covariance, items, spaces=shared)))

    def _joint(self, sched, shared, M_seed, seeds, W, xp, log):
        """Rounds of dictionaries induced between pairs of languages, maps re-solved by
        generalised Procrustes on them and the seed dictionaries; the best round by the
        criterion is kept."""
        to_induce = [(a, b) for a, b in itertools.combinations(self.languages_, 2)
                     if self.induce_pairs == "all" or ((a, b) not in seeds and
                                                       (b, a) not in seeds)]
        if not to_induce:
            log("joint refinement: every pair has a seed dictionary, nothing to induce")
            return W
        best = (W, self.history_[-1]["criterion"])
        for r in range(1, self.rounds + 1):
            induced = sched.map(_induce_pair, [(a, b, W[a], W[b]) for a, b in to_induce],
                                spaces=shared, vocab=self.vocab, csls_k=self.csls_k)
            induced = {pair: (to_device(i, xp), to_device(j, xp))
                       for pair, (i, j) in zip(to_induce, induced)}
            M = dict(M_seed)
            for pair, m in self._covariances(sched, shared, induced).items():
                M[pair] = M[pair] + m if pair in M else m  # seed pairs kept
            W = self._gpa(M, W, xp)
            c = self._criterion(sched, shared, W)
            pairs = {f"{a}-{b}": int(len(i)) for (a, b), (i, _) in seeds.items()}
            for (a, b), (i, _) in induced.items():
                pairs[f"{a}-{b}"] = pairs.get(f"{a}-{b}", 0) + int(len(i))
            self.history_.append({"round": r, "criterion": c, "pairs": pairs})
            log(f"joint refinement round {r}: mean translation cosine {c:.4f}")
            if c > best[1]:
                best = (W, c)
        return best[0]

    def _gpa(self, M, W, xp):
        """Generalised Procrustes by block coordinate descent: each non-hub map re-solved
        against the current images of all its partners. With ``M[(a, b)] = X_a[i]^T X_b[j]``
        the Procrustes problem of language ``a`` is the polar factor of
        ``sum_b M[(a, b)] W_b`` (and ``M[(b, a)]^T W_b``), so only d x d matrices are used."""
        W = dict(W)
        W64 = {k: v.astype(xp.float64) for k, v in W.items()}
        for _ in range(self.sweeps):
            change = xp.zeros((), dtype=xp.float32)  # read once per sweep
            for lang in self.languages_:
                if lang == self.hub:
                    continue
                acc = None
                for (a, b), m in M.items():
                    if a == lang:
                        term = m @ W64[b]
                    elif b == lang:
                        term = m.T @ W64[a]
                    else:
                        continue
                    acc = term if acc is None else acc + term
                if acc is None:
                    continue
                new = polar(acc)
                change = xp.maximum(change, xp.abs(new - W[lang]).max())
                W[lang], W64[lang] = new, new.astype(xp.float64)
            if float(change) < 1e-4:
                break
        return W

    def _criterion(self, sched, shared, W):
        items = [(a, b, W[a], W[b]) for a, b in itertools.permutations(self.languages_, 2)]
        return float(np.mean(sched.map(_pair_criterion, items, spaces=shared,
                                       n=self.criterion_vocab, vocab=self.vocab,
                                       csls_k=self.csls_k)))

    def _check_language(self, lang):
        if lang not in self.maps_:
            raise ValueError(f"{lang!r} is not one of the model's languages "
                             f"{sorted(self.maps_)}")

    def transform(self, lang: str, vectors, hub_only: bool = False):
        """Raw vectors of ``lang`` in the shared space (``hub_only``: with the hub maps)."""
        maps = self.hub_maps_ if hub_only else self.maps_
        if lang not in maps:
            raise ValueError(f"{lang!r} is not one of the model's languages {sorted(maps)}")
        X = apply_normalization(as_rows(vectors, f"{lang} vectors", maps[lang].shape[0]),
                                self.normalize, self.means_[lang])
        return (X.astype(np.float64) @ maps[lang].astype(np.float64)).astype(np.float32)

    def translate(self, src_lang: str, tgt_lang: str, words: Sequence[str], k: int = 5,
                  retrieval: str = "csls", src: Optional[Embeddings] = None,
                  tgt: Optional[Embeddings] = None, eval_vocab: int = 200000,
                  csls_k: int = 10, device: str = "cpu", budget: int = DEFAULT_BUDGET):
        """The ``k`` best ``tgt_lang`` words for each ``src_lang`` word, as
        ``[(word, score), ...]`` (as :meth:`mapalign.Mapping.translate`). ``src``/``tgt`` are
        the two languages' embeddings; a model read by :func:`mapalign.load` reads its run's
        files when they are not given (checked to be the files it was fitted on). Retrieval
        runs over the first ``eval_vocab`` target words, CSLS penalties from the first
        ``eval_vocab`` source words. A word missing from the vocabulary is tried lowercased
        (with a warning); otherwise ``KeyError``."""
        from .loading import lookup_word

        self._check_language(src_lang)
        self._check_language(tgt_lang)
        src, tgt = (e if e is not None else self._run_vocabulary(lang)
                    for e, lang in ((src, src_lang), (tgt, tgt_lang)))
        looked_up = []
        for w in words:
            found = lookup_word(w, src.index)
            if found is None:
                raise KeyError(f"{w!r} is not in the {src_lang} vocabulary (nor lowercased)")
            if found != w:
                warnings.warn(f"{w!r} is not in the {src_lang} vocabulary; translating "
                              f"{found!r}")
            looked_up.append(found)
        xp = get_xp(device)
        S = to_device(self.transform(src_lang, src.vectors[:eval_vocab]), xp)
        T = to_device(self.transform(tgt_lang, tgt.vectors[:eval_vocab]), xp)
        Q = to_device(self.transform(src_lang, np.stack([src.vector(w) for w in looked_up])),
                      xp)
        idx, scores = nearest(Q, T, k, retrieval, csls_k, sources=S, budget=budget)
        idx, scores = asnumpy(idx), asnumpy(scores)
        return [[(tgt.words[j], float(v)) for j, v in zip(row_i, row_v)]
                for row_i, row_v in zip(idx, scores)]

    def _run_vocabulary(self, lang) -> Embeddings:
        run = getattr(self, "_run", None)
        if run is None:
            raise ValueError(f"give the {lang} embeddings (src=/tgt=): this model was not "
                             "read from a run that names its files")
        from .store import checked_input

        settings = run["settings"]
        return load_embeddings(checked_input(run["inputs"][lang], lang),
                               settings["max_vocab"], settings["format"],
                               settings["encoding_errors"])

    def save(self, path, overwrite: bool = False) -> str:
        """Write this fitted model as a multilingual run directory (``multi.npz`` and a
        ``report.json`` with its class, parameters and fitted attributes);
        :func:`mapalign.load` reads it back. A run already there, or a folder holding other
        files, is an error unless ``overwrite``."""
        import mapalign
        from .mapping import model_info

        check_run_dir(path, overwrite, "overwrite")
        report = {"mapalign_version": mapalign.__version__, "model": model_info(self),
                  "settings": {"normalize": self.normalize}, "inputs": {}}
        report.update(self.report_())
        save_multi(path, self, report)
        return os.fspath(path)

    def report_(self) -> dict:
        return {"multi": {"languages": self.languages_, "hub": self.hub,
                          "method": self.method, "unsupervised": self.unsupervised,
                          "seed_dictionaries": self.seed_info_, "hub_fits": self.hub_fits_,
                          "history": self.history_, "scheduler": self.scheduler_}}


def save_multi(run_dir, model: MultiAligner, report: dict):
    """Write each language's map, hub map and normalisation means with ``report`` as a
    multilingual run."""
    arrays = {}
    for lang in model.languages_:
        arrays[f"W__{lang}"] = model.maps_[lang]
        arrays[f"H__{lang}"] = model.hub_maps_[lang]
        arrays[f"M__{lang}"] = np.array(model.means_[lang], dtype=np.float32).reshape(
            -1, model.maps_[lang].shape[0])
    write_run(run_dir, arrays, report, multi=True)


def load_multi(run_dir) -> Tuple[MultiAligner, dict]:
    """``(model, report)`` of a multilingual run directory."""
    from .fitted import restore
    from .mapping import _params_from_json

    z, report = read_run(run_dir, multi=True)
    stored = sorted(k[3:] for k in z if k.startswith("W__"))
    for lang in report["multi"]["languages"]:
        if lang not in stored:
            raise ReportError(report.path, None, f"field 'multi.languages': {lang!r} is not a "
                              f"language of {MULTI} ({', '.join(stored)})")
    model = MultiAligner(**_params_from_json(report["model"]["params"]))
    restore(model, report["model"].get("fitted"))
    model.languages_ = report["multi"]["languages"]
    model.maps_ = {lang: z[f"W__{lang}"] for lang in model.languages_}
    model.hub_maps_ = {lang: z[f"H__{lang}"] for lang in model.languages_}
    model.means_ = {lang: list(z[f"M__{lang}"]) for lang in model.languages_}
    if all(lang in report["inputs"] for lang in model.languages_):
        model._run = {"inputs": report["inputs"], "settings": report["settings"]}
    return model, report
