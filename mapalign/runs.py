"""The commands' pipelines: ``fit`` (load, fit, save), ``evaluate``, ``export``, ``translate``.

Storage of run directories lives in :mod:`mapalign.store`, reuse between commands in
:mod:`mapalign.cache`; the click layer (:mod:`mapalign.cli`) only parses and prints.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import platform
import sys
import time
import warnings
from typing import Dict, Optional, Tuple

import numpy as np

from . import __version__
from .backend import asnumpy, get_xp, resolve_device, to_device
from .cache import cached_vectors
from .evaluation import evaluate_bdi
from .export import atomic_set, check_output_dir, check_output_file, write_dictionary, \
    write_json, write_npy, write_vec, write_word2vec_binary
from .loading import Dictionary, Embeddings, check_input, check_words, load_dictionary, \
    load_embeddings, lookup_word
from .mapping import SupervisedAligner, induce_entries, load_run, model_info, model_report, \
    save_run
from .semi_supervised import SemiSupervisedAligner
from .retrieval import nearest
from .errors import option
from .loading import check_pairs, dictionary_name, vocabulary_name
from .schema import run_input
from .store import (check_inputs, checked_input, clear_cache, collect_warnings, file_info,
                    load_run_inputs, new_run, _rows_hint, update_report)


def versions() -> dict:
    from importlib import metadata

    out = {"mapalign": __version__, "python": sys.version.split()[0],
           "platform": platform.platform()}
    for pkg in ("numpy", "click", "fasttext", "cupy-cuda12x", "cupy-cuda11x", "cupy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def no_progress(label, length):
    """The progress factory of a caller that wants none: ``factory(label, length)`` is a
    context manager yielding a callable that takes increments, or None."""
    return contextlib.nullcontext(None)


def _new_report(argv, inputs: dict, settings: dict, device_used: str, watch, warned,
                **more) -> dict:
    """What the report of every fit holds, two languages or more."""
    return {"mapalign_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "command": list(argv) if argv else None, "inputs": inputs, "settings": settings,
            **more, "device_used": device_used, "timings_s": watch.seconds, "warnings": warned,
            "versions": versions(), "evaluations": []}


class Stopwatch:
    """Seconds per named stage, in the order they ran."""

    def __init__(self):
        self.seconds: Dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage):
        t0 = time.perf_counter()
        yield
        self.seconds[stage] = round(time.perf_counter() - t0, 4)


def fit_run(src_path, tgt_path, run_dir, dictionary=None, unsupervised=False, *,
            method="multistep", refine="auto", normalize="unit,center,unit", max_vocab=200000,
            fmt="auto", encoding_errors="strict", device="cpu", seed=0, force=False,
            unsupervised_options: Optional[dict] = None, progress_factory=None, echo=None,
            argv=None, allow_swapped=False, semi_supervised=False) -> dict:
    """Load both sides, fit, and write ``run_dir``. Returns the report.

    ``progress_factory(label, length)`` may return a context manager yielding a callable that
    takes increments (the CLI passes click's progress bar); ``echo`` receives warnings.
    """
    if (dictionary is None) == (not unsupervised):
        raise ValueError("give a seed dictionary, or ask for an unsupervised fit (not both)")
    if semi_supervised and dictionary is None:
        raise ValueError("a semi-supervised fit starts from a seed dictionary: give one")
    # cheap checks first: nothing expensive runs before the output, the device and the
    # dictionary are known to be usable
    with new_run(run_dir, force) as target:  # locked: a second fit there is refused
        for path in (src_path, tgt_path):
            check_input(path)  # a pipe or a device is refused before anything is read
        resolve_device(device)
        watch, warned = Stopwatch(), []
        pairs = None
        if dictionary is not None:
            with watch("load_dictionary"):
                pairs = load_dictionary(dictionary)
        progress_factory = progress_factory or no_progress
        sides = {}
        for side, path in (("source", src_path), ("target", tgt_path)):
            with watch(f"load_{side}"), collect_warnings(warned, echo), \
                    progress_factory(f"loading {side}", _rows_hint(path, max_vocab)) as bar:
                sides[side] = load_embeddings(path, max_vocab, fmt, encoding_errors, bar)
        src, tgt = sides["source"], sides["target"]
        inputs = {"source": dict(file_info(src_path), words=len(src), dim=src.dim),
                  "target": dict(file_info(tgt_path), words=len(tgt), dim=tgt.dim)}
        settings = dict(max_vocab=max_vocab, format=fmt, encoding_errors=encoding_errors,
                        normalize=normalize, device=device)
        if unsupervised:
            from .unsupervised import UnsupervisedAligner

            model = UnsupervisedAligner(normalize=normalize, device=device, seed=seed,
                                        refine=5 if refine == "auto" else refine,
                                        **(unsupervised_options or {}))
            settings.update(mode="unsupervised", **model.get_params())
            if not isinstance(model.adversarial, str):  # the schedule's values (the one used is
                settings["adversarial"] = model.adversarial.settings()  # in the report's result)
            with watch("fit"):
                model.fit(src, tgt, progress=echo)
        else:
            inputs["dictionary"] = dict(file_info(dictionary, pairs.digest), pairs=len(pairs))
            if semi_supervised:
                model = SemiSupervisedAligner(normalize=normalize, device=device, seed=seed)
                settings.update(mode="semi-supervised", **{
                    k: v for k, v in model.get_params().items() if k != "budget"})
            else:
                model = SupervisedAligner(method=method, refine=refine, normalize=normalize,
                                          device=device, seed=seed)
                settings.update(mode="supervised", **{
                    k: v for k, v in model.__dict__.items()
                    if k not in ("normalize", "device", "budget", "multistep", "rcsls")})
            with watch("fit"), collect_warnings(warned, echo):
                model.fit(src, tgt, pairs, progress=echo, allow_swapped=allow_swapped)
        with watch("quality"):  # every run carries its dictionary-free criterion
            from .quality import evaluate_unsupervised

            quality = evaluate_unsupervised(model, src, tgt, device=model.device_)
        report = _new_report(argv, inputs, settings, model.device_, watch, warned, seed=seed,
                             exports=[], quality=quality)
        report.update(model.report_())
        report["model"] = model_report(model)["model"]
        with watch("save"):
            target.check_unchanged()  # never replace a run that appeared meanwhile
            clear_cache(run_dir)  # the old fit's (the user's own files there stay)
            save_run(run_dir, model, report, overwrite=True)
        report["timings_s"] = watch.seconds
        write_json(target.report_path, report)
        return report


def evaluate_run(run_dir, dictionary, eval_vocab=200000, methods=("nn", "csls"), device=None,
                 progress_factory=None, record=True, src=None, tgt=None,
                 verify=False, return_hits=False, allow_swapped=False, ks=(1, 5, 10)) -> dict:
    """BDI precision of a run on a test dictionary; appended to the run's report. A reversed
    dictionary, or one of other languages, is an error (unless ``allow_swapped``), low
    coverage a warning in ``metrics["warnings"]`` (see
    :func:`~mapalign.loading.check_pairs`). ``dictionary``: a path, or a :class:`Dictionary`
    already read."""
    model, report = load_run(run_dir)
    check_inputs(report, src, tgt, verify)
    device = resolve_device(device or report.get("device_used", "cpu"))
    watch = Stopwatch()
    with watch("load"):
        pairs = dictionary if isinstance(dictionary, Dictionary) else \
            load_dictionary(dictionary)
        cache = cached_vectors(run_dir, report, model, lambda: load_run_inputs(
            report, verify, progress_factory=progress_factory, src=src, tgt=tgt,
            checked=True), verify)
        S, T = cache.vectors("source"), cache.vectors("target")
        src_v = Embeddings(cache.words("source"), S, path=report["inputs"]["source"]["path"])
        tgt_v = Embeddings(cache.words("target"), T, path=report["inputs"]["target"]["path"])
    with watch("evaluate"):
        # penalties of the first eval_vocab targets from the first eval_vocab sources, as
        # evaluate_bdi would compute them, kept for the next command
        r = cache.penalties(eval_vocab, 10) if "csls" in methods else None
        result = evaluate_bdi(None, src_v, tgt_v, pairs, ks=ks, methods=methods,
                              eval_vocab=eval_vocab, device=device, mapped=(S, T), r_target=r,
                              return_hits=return_hits, allow_swapped=allow_swapped)
    said = seed_overlap(report, pairs)
    if said:
        result["warnings"] = [said] + list(result.get("warnings") or [])
    entry = dict(dictionary=file_info(pairs.path, pairs.digest), metrics=result,
                 timings_s=watch.seconds,
                 created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    if record:
        update_report(run_dir, "evaluations", entry, report["mapping"]["sha256"])
    return entry


def seed_overlap(report: dict, pairs) -> Optional[str]:
    """A warning where the test ``pairs`` are (largely) the dictionary the run was fitted on:
    the same file by its checksum, or a fifth or more of the test source words among the seed
    source words (the seed file is read again where it is still where the fit read it,
    unchanged). Such a score measures the fit, not the translation of unseen words."""
    seed = (report.get("inputs") or {}).get("dictionary")
    if not isinstance(seed, dict) or not pairs:
        return None
    digest = getattr(pairs, "digest", None) or {}
    if digest.get("sha256") == seed.get("sha256"):
        return (f"{dictionary_name(pairs)} is the dictionary the run was fitted on: these "
                "scores measure the fit, not the translation of unseen words (optimistic)")
    try:
        if os.path.getsize(seed["path"]) != seed.get("bytes"):
            return None
        train = load_dictionary(seed["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # moved or changed since the fit: nothing to compare with
    if (train.digest or {}).get("sha256") != seed.get("sha256"):
        return None
    seen = {s for s, _ in train}
    words = {s for s, _ in pairs}
    shared = len(words & seen)
    if shared < 0.2 * len(words):
        return None
    return (f"{shared:,} of the {len(words):,} test source words ({100 * shared / len(words):.0f}%)"
            f" of {dictionary_name(pairs)} were seed words of the fit ({seed['path']}): the "
            "score is optimistic; test on words the fit did not see")


def compare_runs(run_a, run_b, dictionary, method="csls", k="p@1", eval_vocab=200000,
                 progress_factory=None, device=None, src=None, tgt=None, verify=False,
                 allow_swapped=False) -> dict:
    """P@k of two runs on the same test dictionary (``k``: ``"p@K"`` for any K >= 1), their
    difference with a 95% paired bootstrap interval, and the exact McNemar test (see
    :func:`mapalign.evaluation.compare`)."""
    from .evaluation import compare

    try:
        K = int(str(k).removeprefix("p@"))
        if K < 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"k must be 'p@K' with K >= 1, not {k!r}") from None
    k = f"p@{K}"
    dictionary = load_dictionary(dictionary)  # read once (it may be a pipe)
    entries = [evaluate_run(r, dictionary, eval_vocab, (method,), device,
                            progress_factory=progress_factory, record=False, src=src, tgt=tgt,
                            verify=verify, return_hits=True, allow_swapped=allow_swapped,
                            ks=(K,))
               for r in (run_a, run_b)]
    out = compare(entries[0]["metrics"], entries[1]["metrics"], method, k)
    out.update(run_a=os.path.abspath(run_a), run_b=os.path.abspath(run_b),
               dictionary=file_info(dictionary.path, dictionary.digest),
               warnings=sorted({w for e in entries for w in e["metrics"]["warnings"]}))
    return out


def apply_run(run_dir, vectors_path, out_path, side="source", out_format="text",
              in_format="auto", encoding_errors="strict", force=False,
              progress_factory=None, allow_swapped=False) -> dict:
    """Map every vector of ``vectors_path`` (any size: read and written a chunk at a time)
    with the run's normalisation and matrix of ``side``, into ``out_path`` (text ``.vec`` or
    word2vec binary), atomically.

    The first block's words are checked against the run's two vocabularies before anything is
    written (:func:`~mapalign.loading.check_words`): a file that fits the other side far
    better, or that the run does not know, is an error unless ``allow_swapped``."""
    from .export import streamed_vectors
    from .loading import stream_embeddings

    if side not in ("source", "target"):
        raise ValueError("side must be 'source' or 'target'")
    if out_format not in ("text", "word2vec-binary"):
        raise ValueError("format must be 'text' or 'word2vec-binary'")
    model, report = load_run(run_dir)
    check_output_file(out_path)
    vocabularies, notes = None, []
    if not allow_swapped:
        try:
            cache = cached_vectors(run_dir, report, model,
                                   lambda: load_run_inputs(report, progress_factory=progress_factory))
            vocabularies = {s: (set(cache.words(s)), vocabulary_name(
                s, cache.words(s), report["inputs"][s]["path"])) for s in ("source", "target")}
        except (OSError, ValueError) as e:
            notes.append(f"the language of {vectors_path} was not checked: {e}")
    transform = model.transform_source if side == "source" else model.transform_target
    expected_dim = report["inputs"].get(side, {}).get("dim")
    progress_factory = progress_factory or no_progress
    with streamed_vectors(out_path, out_format, overwrite=force) as out, \
            progress_factory(f"mapping {os.path.basename(vectors_path)}",
                             _rows_hint(vectors_path, None)) as bar:

        def sink(words, matrix):
            if expected_dim and matrix.shape[1] != expected_dim:
                raise ValueError(f"{vectors_path}: {matrix.shape[1]} dimensions, but the run's "
                                 f"{side} vectors have {expected_dim}")
            if vocabularies is not None and out.rows == 0:
                other = "target" if side == "source" else "source"
                notes.extend(check_words(words, vocabularies[side], vocabularies[other],
                                         vectors_path, side))
            out.write(words, transform(matrix))

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stats = stream_embeddings(vectors_path, sink, in_format, encoding_errors,
                                      progress=bar)
    return {"input": os.path.abspath(vectors_path), "output": os.path.abspath(out_path),
            "side": side, "format": out_format, "words": out.rows, "dim": out.dim,
            "duplicates_dropped": stats.get("duplicates", 0),
            "warnings": notes + [str(w.message) for w in caught]}


def export_run(run_dir, out_dir, vectors=True, mapping=True, dictionary=True, dict_vocab=15000,
               dict_mode="mutual", max_vocab=None, force=False, progress_factory=None,
               src=None, tgt=None, verify=False, vec_format="text", retrieval="csls",
               device=None) -> dict:
    """Write aligned ``src.vec``/``tgt.vec``, ``W_src.npy``/``W_tgt.npy`` and the induced
    ``dictionary.txt`` (``source target score``) into ``out_dir``, as one set: an interrupted
    export leaves ``out_dir`` as it was. The mapped vectors come from the run's cache; the
    dictionary is induced by ``retrieval`` (``nn`` or ``csls``) on ``device`` (default: where
    the run was fitted)."""
    check_output_dir(out_dir)  # before the checksums and the work
    if retrieval not in ("nn", "csls"):
        raise ValueError(f"retrieval must be 'nn' or 'csls', not {retrieval!r}")
    model, report = load_run(run_dir)
    check_inputs(report, src, tgt, verify)
    xp = get_xp(resolve_device(device or report.get("device_used", "cpu"))) if dictionary \
        else None
    ext = "vec" if vec_format == "text" else "bin"
    vec_names = [f"src.{ext}", f"tgt.{ext}"]
    names = (vec_names if vectors else []) + \
        (["W_src.npy", "W_tgt.npy"] if mapping else []) + \
        (["dictionary.txt"] if dictionary else [])
    if not names:
        raise ValueError("nothing to export")
    progress_factory = progress_factory or no_progress
    written = {}
    with atomic_set(out_dir, names, overwrite=force) as tmp:
        if mapping:
            write_npy(os.path.join(tmp, "W_src.npy"), model.W_src_)
            write_npy(os.path.join(tmp, "W_tgt.npy"), model.W_tgt_)
        if vectors or dictionary:
            cache = cached_vectors(run_dir, report, model, lambda: load_run_inputs(
                report, verify, progress_factory=progress_factory, src=src, tgt=tgt,
                checked=True), verify)
            S, T = cache.vectors("source"), cache.vectors("target")
            src_words, tgt_words = cache.words("source"), cache.words("target")
        if vectors:
            writer = write_vec if vec_format == "text" else write_word2vec_binary
            for name, words, M in zip(vec_names, (src_words, tgt_words), (S, T)):
                M = M[:max_vocab]
                with progress_factory(f"writing {name}", len(M)) as bar:
                    writer(os.path.join(tmp, name), words[:max_vocab], M, progress=bar)
            written.update(source_words=len(S[:max_vocab]), target_words=len(T[:max_vocab]))
        if dictionary:
            with progress_factory("inducing the dictionary", min(dict_vocab, len(S))) as bar:
                entries = induce_entries(to_device(np.asarray(S[:dict_vocab]), xp),
                                         to_device(np.asarray(T[:dict_vocab]), xp),
                                         src_words, tgt_words, dict_mode, retrieval,
                                         progress=bar)
            write_dictionary(os.path.join(tmp, "dictionary.txt"), entries)
            written["dictionary_pairs"] = len(entries)
    entry = dict(out_dir=os.path.abspath(out_dir), files=names,
                 dict_vocab=dict_vocab, dict_mode=dict_mode, max_vocab=max_vocab, **written)
    if dictionary:
        entry["dict_retrieval"] = retrieval
    update_report(run_dir, "exports", entry, report["mapping"]["sha256"])
    return entry


def translate_run(run_dir, words, k=5, retrieval="csls", eval_vocab=200000, src=None, tgt=None,
                  verify=False, csls_k=10, device=None):
    """``{word: {"as": looked_up, "translations": [(target, score), ...]}}``. A word missing
    from the source vocabulary is looked up lowercased (``as`` says so); one still missing
    (and without a subword model) maps to None.

    Served from the run's cache (mapped vocabularies, CSLS penalties): after the first call the
    input files are not read again, unless a word needs a fastText subword vector."""
    model, report = load_run(run_dir)
    check_inputs(report, src, tgt, verify)
    load = lambda: load_run_inputs(report, verify, src=src, tgt=tgt, checked=True)  # noqa: E731
    cache = cached_vectors(run_dir, report, model, load, verify)
    src_words = cache.words("source")
    index = {w: i for i, w in enumerate(src_words)}
    lookup = {w: lookup_word(w, index) for w in words}
    lookup = {w: found for w, found in lookup.items() if found is not None}
    S, T = cache.vectors("source"), cache.vectors("target")
    queries = {w: S[index[w]] for w in set(lookup.values())}
    missing = [w for w in words if w not in lookup]
    if missing and report["settings"].get("format") in ("auto", "fasttext-bin"):
        src_emb, _ = load()
        if src_emb.oov is not None:  # a fastText model builds vectors from subwords
            for w in missing:
                lookup[w] = w
                queries[w] = model.transform_source(src_emb.vector(w)[None, :])[0]
    known = sorted(queries)
    found = {}
    if known:
        xp = get_xp(device or report.get("device_used", "cpu"))
        Q = np.stack([np.asarray(queries[w], dtype=np.float32) for w in known])
        r = cache.penalties(eval_vocab, csls_k) if retrieval == "csls" else None
        idx, scores = nearest(to_device(Q, xp), to_device(np.asarray(T[:eval_vocab]), xp), k,
                              retrieval, csls_k,
                              r_target=None if r is None else to_device(r, xp))
        idx, scores = asnumpy(idx), asnumpy(scores)
        tgt_words = cache.words("target")
        found = {w: [(tgt_words[j], float(v)) for j, v in zip(idx[n], scores[n])]
                 for n, w in enumerate(known)}
    return {w: ({"as": lookup[w], "translations": found[lookup[w]]} if w in lookup else None)
            for w in words}


# ----------------------------------------------------------------- more than two languages
def fit_multi_run(spaces: Dict[str, str], dictionaries: Dict[Tuple[str, str], str], run_dir,
                  *, method="joint", hub="en", normalize="unit,center,unit", max_vocab=200000,
                  fmt="auto", encoding_errors="strict", device="cpu", unsupervised=False,
                  seed=0, unsupervised_options=None, scheduler=None, workers=None,
                  force=False, progress_factory=None, echo=None, argv=None,
                  allow_swapped=False) -> dict:
    """Load every language and dictionary, fit a :class:`~mapalign.multi.MultiAligner`, write
    the multilingual run directory. Each language is normalised in place as soon as the fit
    takes it: raw and normalised copies of all languages are never held together."""
    from .multi import MultiAligner, check_hub_dictionaries, save_multi
    from .scheduler import check_scheduler

    with new_run(run_dir, force, command="fit-multi") as target:  # a second fit: refused
        for path in spaces.values():
            check_input(path)  # a pipe or a device is refused before anything is read
        check_scheduler(scheduler, workers)
        resolve_device(device)
        for a, b in dictionaries:
            for lang in (a, b):
                if lang not in spaces:
                    raise ValueError(f"{_dict_option(a, b)}: no vectors given for {lang!r} "
                                     f"(languages: {', '.join(spaces)})")
        if hub not in spaces:
            raise ValueError(f"{option('hub', hub)}: no vectors given for it (languages: "
                             f"{', '.join(spaces)})")
        if not unsupervised:  # before any file is read
            check_hub_dictionaries(spaces, hub, dictionaries)
        watch, warned = Stopwatch(), []
        with watch("load_dictionaries"):
            pairs = {k: load_dictionary(p) for k, p in dictionaries.items()}
        progress_factory = progress_factory or no_progress
        loaded = {}
        for lang, path in spaces.items():
            with watch(f"load_{lang}"), collect_warnings(warned, echo), \
                    progress_factory(f"loading {lang}", _rows_hint(path, max_vocab)) as bar:
                loaded[lang] = load_embeddings(path, max_vocab, fmt, encoding_errors, bar)
        model = MultiAligner(method=method, hub=hub, normalize=normalize, device=device,
                             unsupervised=unsupervised, seed=seed,
                             unsupervised_options=unsupervised_options if unsupervised else None,
                             scheduler=None if scheduler in (None, "in-process") else scheduler,
                             workers=workers, copy=False)
        with watch("fit"), collect_warnings(warned, echo):
            model.fit(loaded, pairs, progress=echo, allow_swapped=allow_swapped)
        sizes = {lang: dict(words=len(e), dim=e.dim) for lang, e in loaded.items()}
        del loaded  # normalised in place by the fit
        with watch("quality"):  # each language to the hub: its dictionary-free criterion
            from .quality import N_WORDS, evaluate_unsupervised_multi, hub_pairs

            n = min(N_WORDS, max_vocab) if max_vocab else N_WORDS
            with warnings.catch_warnings():  # said at the first reading
                warnings.simplefilter("ignore")
                first = {lang: load_embeddings(path, n, fmt, encoding_errors)
                         for lang, path in spaces.items()}
            quality = evaluate_unsupervised_multi(model, first, hub_pairs(model), n)
            del first
        report = _new_report(
            argv, {lang: dict(file_info(p), **sizes[lang]) for lang, p in spaces.items()},
            dict(max_vocab=max_vocab, format=fmt, encoding_errors=encoding_errors,
                 **model.get_params()), model.device_, watch, warned,
            dictionaries={f"{a}-{b}": file_info(p, pairs[(a, b)].digest)
                          for (a, b), p in dictionaries.items()},
            model=model_info(model))
        report.update(model.report_())
        report["multi"]["quality"] = quality
        target.check_unchanged()  # never replace a run that appeared meanwhile
        save_multi(run_dir, model, report)
        return report


def _dict_option(a, b, path="PATH") -> str:
    """How a message names the dictionary of ``a`` and ``b``."""
    return option("dictionaries", f"{a}-{b}={path}", python=f"dictionaries[({a!r}, {b!r})]")


def _multi_vocab(report, lang):
    """A language's words and raw vectors, as the multilingual fit read them."""
    path = checked_input(run_input(report, lang), lang)
    s = report["settings"]
    return load_embeddings(path, s["max_vocab"], s["format"], s["encoding_errors"])


def _evaluate_pair(item, *, mapped, words, eval_vocab, allow_swapped=False,
                   methods=("nn", "csls"), device="cpu"):
    """One directed pair of a multilingual run, with its maps and with the hub maps alone (a
    task: see mapalign.scheduler)."""
    a, b, pairs = item
    res = {}
    for hub_only in (False, True):
        S, T = mapped[(a, hub_only)], mapped[(b, hub_only)]
        res["hub_only" if hub_only else "run"] = evaluate_bdi(
            None, Embeddings(words[a], S), Embeddings(words[b], T), pairs, methods=methods,
            eval_vocab=eval_vocab, mapped=(S, T), allow_swapped=allow_swapped, device=device)
    return res


def evaluate_multi_run(run_dir, dictionaries: Dict[Tuple[str, str], str], eval_vocab=200000,
                       record=True, scheduler=None, workers=None,
                       allow_swapped=False, methods=("nn", "csls"), device=None) -> dict:
    """P@1/5/10 (by each of ``methods``, NN and CSLS by default) of every directed pair with
    a test dictionary, with the hub-only figure beside each pair; each language is mapped
    once, and the pairs are independent tasks on ``scheduler``, computing on ``device``
    (default: where the run was fitted)."""
    from .multi import load_multi
    from .scheduler import check_scheduler, open_scheduler

    check_scheduler(scheduler, workers)
    model, report = load_multi(run_dir)
    device = resolve_device(device or report.get("device_used", "cpu"))
    for a, b in dictionaries:
        for lang in (a, b):
            if lang not in model.languages_:
                raise ValueError(f"{_dict_option(a, b)}: {lang!r} is not in the run "
                                 f"({', '.join(model.languages_)})")
    mapped, words = {}, {}
    for lang in sorted({x for pair in dictionaries for x in pair}):
        e = _multi_vocab(report, lang)  # one language's raw vectors at a time
        for hub_only in (False, True):  # each language mapped once, for every pair
            mapped[(lang, hub_only)] = model.transform(lang, e.vectors, hub_only)
        words[lang] = e.words
        del e
    items = [(a, b, load_dictionary(path)) for (a, b), path in dictionaries.items()]
    for a, b, pairs in items:  # every dictionary checked before any is evaluated
        inputs = report["inputs"]
        check_pairs(pairs, Embeddings(words[a], mapped[(a, False)], inputs[a]["path"]),
                    Embeddings(words[b], mapped[(b, False)], inputs[b]["path"]),
                    dictionary_name(pairs), allow_swapped=allow_swapped,
                    hint=f"did you mean {b}-{a} for this {a}-{b} dictionary?")
    with open_scheduler(scheduler, workers) as sched:
        where = sched.describe()
        results = sched.map(_evaluate_pair, items, mapped=sched.share(mapped),
                            words=sched.share(words), eval_vocab=eval_vocab,
                            allow_swapped=allow_swapped, methods=tuple(methods),
                            device=device)
    out = {}
    for ((a, b), path), res in zip(dictionaries.items(), results):
        if not res["run"].get("queries"):
            raise ValueError(f"{path}: no usable pair between {a} and {b}")
        res["indirect"] = model.hub not in (a, b)
        out[f"{a}-{b}"] = res
    if record:
        read = {f"{a}-{b}": file_info(d.path, d.digest) for a, b, d in items}
        update_report(run_dir, "evaluations", {"dictionaries": read, "metrics": out,
                                               "scheduler": where}, report["mapping"]["sha256"])
    return out


def export_multi_run(run_dir, out_dir, force=False, progress_factory=None, *, vectors=True,
                     mapping=True, max_vocab=None, vec_format="text") -> dict:
    """Per language: aligned ``LANG.vec`` (or ``.bin``, the first ``max_vocab`` words) and
    ``W_LANG.npy``, its matrix into the shared space (applied after the run's normalisation).
    Written as one set: an interrupted export leaves ``out_dir`` as it was."""
    from .multi import load_multi

    model, report = load_multi(run_dir)
    ext = "vec" if vec_format == "text" else "bin"
    langs = model.languages_
    names = ([f"{lang}.{ext}" for lang in langs] if vectors else []) + \
        ([f"W_{lang}.npy" for lang in langs] if mapping else [])
    if not names:
        raise ValueError("nothing to export")
    progress_factory = progress_factory or no_progress
    writer = write_vec if vec_format == "text" else write_word2vec_binary
    with atomic_set(out_dir, names, overwrite=force) as tmp:
        for lang in langs:
            if mapping:
                write_npy(os.path.join(tmp, f"W_{lang}.npy"), model.maps_[lang])
            if vectors:
                e = _multi_vocab(report, lang)
                words, X = e.words[:max_vocab], e.vectors[:max_vocab]
                with progress_factory(f"writing {lang}.{ext}", len(words)) as bar:
                    writer(os.path.join(tmp, f"{lang}.{ext}"), words, model.transform(lang, X),
                           progress=bar)
                del e
    return {"out_dir": os.path.abspath(out_dir), "files": names, "max_vocab": max_vocab,
            "format": vec_format}


def translate_multi_run(run_dir, words, src_lang, tgt_lang, k=5, retrieval="csls",
                        eval_vocab=200000, csls_k=10, device=None):
    from .multi import load_multi

    model, report = load_multi(run_dir)
    for lang in (src_lang, tgt_lang):
        if lang not in model.languages_:
            raise ValueError(f"{lang!r} is not in the run ({', '.join(model.languages_)})")
    se, te = _multi_vocab(report, src_lang), _multi_vocab(report, tgt_lang)
    xp = get_xp(device or report.get("device_used", "cpu"))
    S = to_device(model.transform(src_lang, se.vectors[:eval_vocab]), xp)
    T = to_device(model.transform(tgt_lang, te.vectors[:eval_vocab]), xp)
    lookup = {w: lookup_word(w, se) for w in words}
    known = sorted({v for v in lookup.values() if v is not None})
    found = {}
    if known:
        Q = to_device(model.transform(src_lang, np.stack([se.vector(w) for w in known])), xp)
        idx, scores = nearest(Q, T, k, retrieval, csls_k, sources=S)
        idx, scores = asnumpy(idx), asnumpy(scores)
        found = {w: [(te.words[j], float(v)) for j, v in zip(idx[n], scores[n])]
                 for n, w in enumerate(known)}
    return {w: ({"as": v, "translations": found[v]} if v is not None else None)
            for w, v in lookup.items()}
