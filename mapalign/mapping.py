"""What every fitted mapping shares (:class:`Mapping`) and the supervised aligner.

Conventions: embeddings are row matrices; a mapping is a pair ``(W_src, W_tgt)`` and the
shared space holds ``normalize(X) @ W_src`` and ``normalize(Z) @ W_tgt``. For Procrustes
``W_tgt`` is the identity, for CCA both sides are projected. The methods themselves live in
:mod:`mapalign.methods`, one module each.
"""
from __future__ import annotations

import dataclasses
import os
import time
import warnings
from typing import Optional, Sequence, Tuple

import numpy as np

from .backend import asnumpy, get_array_module, get_xp, resolve_device, to_device
from .loading import (Embeddings, as_rows, check_pairs, check_vectors, index_pairs,
                      lookup_word)
from .methods import METHODS, MULTISTEP, RCSLS, MultiStep, make_solver, method_settings
from .methods import cca, procrustes  # noqa: F401  (re-exported)
from .normalize import apply_normalization, normalize
from .params import Params
from .refinement import RefineOptions, refine
from .retrieval import DEFAULT_BUDGET, mutual_nearest, nearest
from .store import NotTwoLanguageRun, check_run_dir, read_run, write_run

class Mapping(Params):
    """What every aligner shares once fitted: normalisation, the two matrices, transforms.

    The aligners are scikit-learn estimators: ``__init__`` only stores parameters, ``fit``
    validates them and returns self, fitted attributes end in ``_``; ``get_params``,
    ``set_params`` and ``sklearn.base.clone`` work. A fitted mapping read back from a run
    directory without its aligner's parameters is a plain ``Mapping``.
    """

    normalize = "unit,center,unit"
    _fitted_attr = "W_src_"
    ARRAYS = ("W_src_", "W_tgt_", "src_means_", "tgt_means_")  # in the run's mapping.npz

    @classmethod
    def from_arrays(cls, W_src, W_tgt, normalize, src_means=(), tgt_means=()):
        self = cls.__new__(cls)
        self.normalize = normalize
        self.W_src_, self.W_tgt_ = np.asarray(W_src), np.asarray(W_tgt)
        self.src_means_ = [np.asarray(m) for m in src_means]
        self.tgt_means_ = [np.asarray(m) for m in tgt_means]
        return self

    def transform(self, X):
        """Map source vectors (rows, raw) into the shared space; numpy in, numpy out, cupy in,
        cupy out."""
        return self.transform_source(X)

    def save(self, path, overwrite: bool = False) -> str:
        """Write this fitted model as a run directory (``mapping.npz`` and a ``report.json``
        with its class, parameters and fitted attributes); :func:`mapalign.load` reads it
        back. A run already there, or a folder holding other files, is an error unless
        ``overwrite``."""
        check_run_dir(path, overwrite, "overwrite")
        save_run(path, self, model_report(self))
        return os.fspath(path)

    def _prepare(self, src: Embeddings, tgt: Embeddings):
        """Every fit's first step: the inputs checked (finite vectors), then normalised (the
        means are kept by :meth:`_store`, with the matrices: a fit that fails leaves a fitted
        model as it was)."""
        check_vectors(src, "source")
        check_vectors(tgt, "target")
        self.device_ = resolve_device(self.device)
        xp = get_xp(self.device_)
        X, src_means = normalize(to_device(src.vectors, xp), self.normalize)
        Z, tgt_means = normalize(to_device(tgt.vectors, xp), self.normalize)
        self._means = src_means, tgt_means
        return xp, X, Z

    def _seed_rows(self, pairs, src: Embeddings, tgt: Embeddings, allow_swapped: bool):
        """The rows of a seed dictionary's usable pairs (its counts in ``seed_info_``), after
        :func:`~mapalign.loading.check_pairs` (a reversed dictionary is an error unless
        ``allow_swapped``; low coverage warns)."""
        name = getattr(pairs, "path", None) or "the seed dictionary"
        for message in check_pairs(pairs, src, tgt, name, allow_swapped=allow_swapped):
            warnings.warn(message)
        s_rows, t_rows, self.seed_info_ = index_pairs(pairs, src, tgt)
        return s_rows, t_rows

    def report_(self) -> dict:
        """What the fit learnt about its inputs, for ``report.json``."""
        return {}

    def _store(self, W_src, W_tgt):
        # fitted state lives on the host, whatever device the fit ran on
        src_means, tgt_means = self.__dict__.pop("_means")
        self.src_means_ = [asnumpy(m) for m in src_means]
        self.tgt_means_ = [asnumpy(m) for m in tgt_means]
        self.W_src_ = asnumpy(W_src)
        self.W_tgt_ = asnumpy(W_tgt)

    def transform_source(self, X):
        """Map raw source vectors (rows) into the shared space; the result lives where ``X``
        does (numpy in, numpy out; cupy in, cupy out)."""
        xp = get_array_module(X)
        return self._transform(X, xp, [to_device(m, xp) for m in self.src_means_], self.W_src_,
                               "source vectors")

    def transform_target(self, Z):
        """Map raw target vectors (rows) into the shared space (see :meth:`transform_source`)."""
        xp = get_array_module(Z)
        return self._transform(Z, xp, [to_device(m, xp) for m in self.tgt_means_], self.W_tgt_,
                               "target vectors")

    def _transform(self, X, xp, means, W, what):
        # float64 products: a row maps to the same float32 values whatever block it is part of
        # (export of the whole vocabulary and streaming apply agree to the byte)
        X = apply_normalization(as_rows(X, what, W.shape[0], xp), self.normalize, means)
        return (X.astype(xp.float64) @ to_device(W, xp).astype(xp.float64)).astype(xp.float32)

    def mapped(self, src: Embeddings, tgt: Embeddings, n_src=None, n_tgt=None,
               device: str = "cpu"):
        """The first ``n_src`` source and ``n_tgt`` target words in the shared space, as
        arrays of ``device``."""
        xp = get_xp(device)
        return (self.transform_source(to_device(src.vectors[:n_src], xp)),
                self.transform_target(to_device(tgt.vectors[:n_tgt], xp)))

    def translate(self, src: Embeddings, tgt: Embeddings, words: Sequence[str], k: int = 5,
                  retrieval: str = "csls", eval_vocab: int = 200000, csls_k: int = 10,
                  device: str = "cpu", budget: int = DEFAULT_BUDGET):
        """The ``k`` best target words for each source word, as ``[(word, score), ...]`` (the
        ``translate`` command's defaults and names), searched on ``device``.

        Retrieval runs over the first ``eval_vocab`` target words; CSLS penalties use the
        first ``eval_vocab`` source words. A word outside the source vocabulary is tried
        lowercased (with a warning, as the command notes it), then through the embeddings'
        subword model when they have one (fastText ``.bin``); otherwise ``KeyError``.
        """
        looked_up = []
        for w in words:
            found = lookup_word(w, src.index)
            if found is None and src.oov is None:
                raise KeyError(f"{w!r} is not in the source vocabulary (nor lowercased)")
            if found is not None and found != w:
                warnings.warn(f"{w!r} is not in the source vocabulary; translating {found!r}")
            looked_up.append(found or w)
        S, T = self.mapped(src, tgt, eval_vocab, eval_vocab, device)
        Q = self.transform_source(to_device(np.stack([src.vector(w) for w in looked_up]),
                                            get_array_module(S)))
        idx, scores = nearest(Q, T, k, retrieval, csls_k, sources=S, budget=budget)
        return [[(tgt.words[j], float(v)) for j, v in zip(row_i, row_v)]
                for row_i, row_v in zip(idx, scores)]


def heldout_split(s_rows, t_rows, fraction: float):
    """``(is_held, gold)``: which seed pairs belong to the least frequent ``fraction`` of the
    seed source words (at least one word), and those words' seed targets ``{row: {rows}}``.

    The least frequent words are held out because test dictionaries are built the same way
    (test words rarer than training words), and what a fit does for rarer words is the
    question (a random split of frequent words says little about it)."""
    words = np.unique(s_rows)  # sorted: rows are in frequency order
    held = words[len(words) - max(1, int(round(fraction * len(words)))):]
    is_held = np.isin(s_rows, held)
    gold = {}
    for i, j in zip(s_rows[is_held].tolist(), t_rows[is_held].tolist()):
        gold.setdefault(i, set()).add(j)
    return is_held, gold


def heldout_precision(X, Z, W_src, W_tgt, gold: dict, n_sources: int, csls_k: int = 10,
                      budget: int = DEFAULT_BUDGET) -> float:
    """CSLS P@1 (percent) of the source rows in ``gold`` against all of ``Z``, the penalties of
    the targets from the first ``n_sources`` mapped source rows."""
    xp = get_array_module(X)
    queries = sorted(gold)
    idx, _ = nearest(X[to_device(np.array(queries), xp)] @ W_src, Z @ W_tgt, 1, "csls", csls_k,
                     sources=X[:n_sources] @ W_src, budget=budget)
    return float(100 * np.mean([idx[n, 0] in gold[q] for n, q in enumerate(queries)]))


def _jsonable_params(params: dict) -> dict:
    return {k: ({"__dataclass__": type(v).__name__, **dataclasses.asdict(v)}
                if dataclasses.is_dataclass(v) else list(v) if isinstance(v, tuple) else v)
            for k, v in params.items()}


def _params_from_json(params: dict) -> dict:
    from . import methods
    from .unsupervised import adversarial

    out = {}
    for k, v in params.items():
        if isinstance(v, dict) and "__dataclass__" in v:
            v = dict(v)
            name = v.pop("__dataclass__")
            v = (getattr(methods, name, None) or getattr(adversarial, name))(**v)
        out[k] = v
    return out


def model_report(model: Mapping) -> dict:
    """What a saved model's ``report.json`` holds about the model itself."""
    import mapalign

    return {"mapalign_version": mapalign.__version__, "model": model_info(model),
            "settings": {"normalize": model.normalize}, "inputs": {}}


def model_info(model) -> dict:
    """A fitted model as its report names it: class, parameters and fitted attributes
    (every one but the arrays: see :mod:`mapalign.fitted`)."""
    from .fitted import fitted_attributes

    cls = type(model)
    return {"class": f"{cls.__module__}.{cls.__qualname__}",
            "params": _jsonable_params(model.get_params(deep=False)),
            "fitted": fitted_attributes(model)}


def save_run(run_dir, model: Mapping, report: dict, overwrite: bool = True):
    """Write ``model``'s matrices and normalisation means with ``report`` as a run."""
    means = {side: np.array(getattr(model, f"{side}_means_"), dtype=np.float32)
             .reshape(-1, getattr(model, f"W_{side}_").shape[0]) for side in ("src", "tgt")}
    write_run(run_dir, dict(W_src=model.W_src_, W_tgt=model.W_tgt_, src_means=means["src"],
                            tgt_means=means["tgt"]), report, overwrite=overwrite,
              shape_src=list(model.W_src_.shape), shape_tgt=list(model.W_tgt_.shape))


def load_run(run_dir) -> Tuple[Mapping, dict]:
    """``(mapping, report)`` of a two-language run directory."""
    z, report = read_run(run_dir)
    return Mapping.from_arrays(z["W_src"], z["W_tgt"], report["settings"]["normalize"],
                               list(z["src_means"]), list(z["tgt_means"])), report


def load(path):
    """A model saved with ``save`` (or a run directory written by ``mapalign fit`` or
    ``fit-multi``): the aligner's class with its parameters, fitted matrices and every other
    fitted attribute where the report names them (a multilingual run: a
    :class:`~mapalign.multi.MultiAligner`), otherwise a plain :class:`Mapping`."""
    import importlib

    from .fitted import restore

    try:
        mapping, report = load_run(path)
    except NotTwoLanguageRun:
        from .multi import load_multi

        return load_multi(path)[0]
    info = report.get("model") or {}
    params = info.get("params")
    if not isinstance(params, dict):
        return mapping
    module, _, name = info.get("class", "").rpartition(".")
    if not module.startswith("mapalign"):
        return mapping
    cls = getattr(importlib.import_module(module), name)
    model = cls(**_params_from_json(params))
    restore(model, info.get("fitted"))
    for attr in Mapping.ARRAYS:
        setattr(model, attr, getattr(mapping, attr))
    return model


def induce_entries(S, T, src_words, tgt_words, mode="mutual", method="csls", csls_k=10,
                   budget=DEFAULT_BUDGET, progress=None):
    """``[(source, target, score)]`` between mapped vocabularies: mutual best matches, or
    every source word's best (``forward``)."""
    if isinstance(S, np.memmap):
        S, T = np.asarray(S), np.asarray(T)
    if mode == "mutual":
        i, j, v = mutual_nearest(S, T, method, csls_k, budget, progress=progress)
    elif mode == "forward":
        j, v = nearest(S, T, 1, method, csls_k, budget=budget, progress=progress)
        i, j, v = np.arange(len(j)), j[:, 0], v[:, 0]
    else:
        raise ValueError(f"mode must be 'mutual' or 'forward', not {mode!r}")
    return [(src_words[a], tgt_words[b], float(c)) for a, b, c in zip(i, j, v)]


class SupervisedAligner(Mapping):
    """Learn a mapping from a seed dictionary, in scikit-learn's style.

    >>> model = SupervisedAligner(method="multistep").fit(src, tgt, pairs)
    >>> model.W_src_, model.seed_info_, model.refine_choice_

    ``fit`` solves ``method`` on the in-vocabulary seed pairs, then refines: re-solves on the
    dictionary induced by mutual CSLS best matches among the ``refine_vocab`` most frequent
    words of each side, seed pairs kept (Conneau et al., 2018), stopping early once the
    dictionary repeats. ``refine="auto"`` (the default) decides how many rounds (0 to
    ``max_refine``) without any test data: the seed source words are split (``holdout``
    fraction held out, seeded), the rounds are run on the rest and the round with the best
    CSLS P@1 on the held-out words wins (ties: fewer rounds); the final fit uses all seed
    pairs and that many rounds. An integer ``refine`` fixes the rounds.
    """

    def __init__(self, method: str = "multistep", refine="auto", max_refine: int = 5,
                 holdout: float = 0.2, normalize: str = "unit,center,unit",
                 refine_vocab: int = 15000, induction: str = "mutual", csls_k: int = 10,
                 device: str = "cpu", seed: int = 0, multistep: Optional[MultiStep] = None,
                 rcsls: Optional[RCSLS] = None, budget: int = DEFAULT_BUDGET):
        self.method = method
        self.refine = refine
        self.max_refine = max_refine
        self.holdout = holdout
        self.normalize = normalize
        self.refine_vocab = refine_vocab
        self.induction = induction
        self.csls_k = csls_k
        self.device = device
        self.seed = seed
        self.multistep = multistep
        self.rcsls = rcsls
        self.budget = budget

    def _validate(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        if self.refine != "auto" and (not isinstance(self.refine, (int, np.integer))
                                      or self.refine < 0):
            raise ValueError(f"refine must be 'auto' or an integer >= 0, not {self.refine!r}")
        if not 0 < self.holdout < 1:
            raise ValueError("holdout must be in (0, 1)")

    def fit(self, src: Embeddings, tgt: Embeddings, pairs: Sequence[Tuple[str, str]],
            progress=None, allow_swapped: bool = False):
        """Fit on ``pairs``; ``progress`` (a callable taking a message) hears each round.

        A dictionary of which fewer than half the pairs fit the vocabularies is checked the
        other way round: :class:`~mapalign.loading.SwappedError` when it fits far better
        swapped (unless ``allow_swapped``), a warning otherwise."""
        t0 = time.perf_counter()
        self._validate()
        xp, X, Z = self._prepare(src, tgt)
        s_rows, t_rows = self._seed_rows(pairs, src, tgt, allow_swapped)
        solve = make_solver(self.method, X, Z, self.multistep or MULTISTEP,
                            self.rcsls or RCSLS())
        if self.refine == "auto":
            rounds, self.refine_choice_ = self._choose_rounds(X, Z, solve, s_rows, t_rows,
                                                              progress)
        else:
            rounds, self.refine_choice_ = int(self.refine), {"rounds": int(self.refine),
                                                             "chosen_by": "setting"}
        W_src, W_tgt, self.history_ = self._refine(X, Z, solve, s_rows, t_rows, rounds,
                                                   log=progress)
        self._store(W_src, W_tgt)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _refine(self, X, Z, solve, s_rows, t_rows, rounds, criterion=None, log=None,
                criterion_name="criterion"):
        xp = get_array_module(X)
        rows = (to_device(s_rows, xp), to_device(t_rows, xp))
        opts = RefineOptions(rounds=rounds, vocab=self.refine_vocab, csls_k=self.csls_k,
                             induction=self.induction, budget=self.budget)
        return refine(X, Z, solve, opts, rows=rows, seed_rows=rows, criterion=criterion,
                      criterion_name=criterion_name, log=log)

    def _choose_rounds(self, X, Z, solve, s_rows, t_rows, log=None):
        """Rounds of refinement by P@1 on held-out seed source words."""
        is_held, gold = heldout_split(s_rows, t_rows, self.holdout)

        def heldout_p1(W_src, W_tgt):
            return heldout_precision(X, Z, W_src, W_tgt, gold, min(self.refine_vocab, len(X)),
                                     self.csls_k, self.budget)

        _, _, hist = self._refine(X, Z, solve, s_rows[~is_held], t_rows[~is_held],
                                  self.max_refine, criterion=heldout_p1,
                                  criterion_name="held-out P@1",
                                  log=(lambda m: log("choosing rounds: " + m)) if log else None)
        scores = [(h["criterion"], -h["round"]) for h in hist if "criterion" in h]
        best = max(scores)
        rounds = -best[1]
        if log:
            log(f"choosing rounds: {rounds} (held-out P@1 {best[0]:.2f} on "
                f"{len(gold)} least frequent seed words; ties go to fewer rounds)")
        return rounds, {"rounds": rounds, "chosen_by": "held-out least frequent seed words",
                        "heldout_words": len(gold),
                        "heldout_p@1_by_round": [h["criterion"] for h in hist
                                                  if "criterion" in h]}

    def report_(self) -> dict:
        return {"seed_dictionary": self.seed_info_, "refinement": self.history_,
                "refine_choice": self.refine_choice_,
                "method_settings": method_settings(self.method, self.multistep or MULTISTEP,
                                                   self.rcsls or RCSLS())}
