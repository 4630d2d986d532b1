"""``mapalign report``: one self-contained HTML page about a run (images embedded as data URIs,
nothing fetched from the network), with matplotlib figures:

* P@1 by source-frequency band, NN against CSLS;
* the refinement history (held-out P@1 by round for supervised runs; the criterion by round of
  every restart and null draw for unsupervised runs);
* the similarity of the top-1 translation, for right and wrong ones;
* hubness: how often each target word is somebody's top-1, under NN and under CSLS;
* the run's settings, timings and evaluation with 95% intervals.

matplotlib is an optional extra (``pip install -e '.[report]'`` from a checkout).
"""
from __future__ import annotations

import base64
import html
import io
import json
import os

import numpy as np

from .cache import cached_vectors
from .errors import MissingExtraError
from .evaluation import evaluate_bdi
from .export import atomic_file, check_output_file
from .loading import Embeddings, index_pairs, load_dictionary
from .retrieval import nearest
from .mapping import load_run
from .store import check_inputs, load_run_inputs

_HUB_QUERIES = 10000


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError("the report (matplotlib)", "report") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _whole_numbers(axis):
    """Ticks at whole numbers only, on an axis that counts (rounds, epochs, words)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    fig.clf()
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def build_report(run_dir, dictionary, out_path, eval_vocab=200000, force=False,
                 src=None, tgt=None, verify=False, bands=4, device=None,
                 allow_swapped=False, methods=("nn", "csls")) -> dict:
    """Write the HTML page; returns what it shows, as numbers. ``methods``: the retrievals
    shown (``nn``, ``csls`` or both); the top-1 similarities are of the last one."""
    check_output_file(out_path, create=True)  # before any work
    methods = tuple(m for m in ("nn", "csls") if m in methods)
    if not methods:
        raise ValueError("methods must hold 'nn', 'csls' or both")
    top1 = methods[-1]
    plt = _plt()
    model, report = load_run(run_dir)
    check_inputs(report, src, tgt, verify)
    cache = cached_vectors(run_dir, report, model,
                           lambda: load_run_inputs(report, verify, src=src, tgt=tgt,
                                                   checked=True), verify)
    S, T = cache.vectors("source"), cache.vectors("target")
    src_v = Embeddings(cache.words("source"), S, path=report["inputs"]["source"]["path"])
    tgt_v = Embeddings(cache.words("target"), T, path=report["inputs"]["target"]["path"])
    pairs = load_dictionary(dictionary)
    r = cache.penalties(eval_vocab, 10) if "csls" in methods else None
    metrics = evaluate_bdi(None, src_v, tgt_v, pairs, methods=methods, eval_vocab=eval_vocab,
                           mapped=(S, T), r_target=r, return_hits=True,
                           device=device or report.get("device_used", "cpu"),
                           allow_swapped=allow_swapped)
    n_t = min(eval_vocab, len(T))
    Tn = np.asarray(T[:n_t])
    rows = np.array([src_v.index[w] for w in metrics["query_words"]])
    figures, numbers = [], {"metrics": {m: {k: v for k, v in metrics[m].items()}
                                        for m in methods},
                            "dictionary": os.path.abspath(dictionary),
                            "warnings": metrics["warnings"]}

    # 1. P@1 by frequency band of the source word
    edges = np.unique(np.quantile(rows, np.linspace(0, 1, bands + 1)).astype(int))
    band_of = np.clip(np.searchsorted(edges, rows, side="right") - 1, 0, len(edges) - 2)
    labels = [f"ranks {edges[i]}-{edges[i + 1]}" for i in range(len(edges) - 1)]
    by_band = {m: [float(100 * np.mean(np.asarray(metrics["hits"][m]["p@1"])[band_of == b]))
                   if np.any(band_of == b) else 0.0 for b in range(len(labels))]
               for m in methods}
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    x = np.arange(len(labels))
    width = 0.8 / len(methods)
    for n, m in enumerate(methods):
        ax.bar(x + (n - (len(methods) - 1) / 2) * width, by_band[m], width, label=m.upper())
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("P@1 (%)")
    ax.set_title("P@1 by source-word frequency band (equal-count bands)")
    ax.set_ylim(0, 119)  # room above the bars for the legend
    ax.legend(loc="upper right", ncol=2)
    figures.append(("Precision by frequency", _png(fig)))
    numbers["p1_by_band"] = dict(labels=labels, **by_band)

    # 2. refinement / criterion history
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    unsup = report.get("unsupervised")
    if unsup:
        for entry in unsup.get("restarts", []):
            hist = [h for h in entry.get("refinement", []) if "criterion" in h]
            ax.plot([h["round"] for h in hist], [h["criterion"] for h in hist], "o-",
                    label=f"start seed {entry['seed']}")
        draws = unsup.get("null_draws", [])
        for d, entry in enumerate(draws):
            hist = [h for h in entry.get("refinement", []) if "criterion" in h]
            ax.plot([h["round"] for h in hist], [h["criterion"] for h in hist], "x:",
                    color="grey", label=f"null draw {d + 1}/{len(draws)}")
        ax.set_ylabel("criterion (mean cosine)")
        ax.set_title("Unsupervised criterion by refinement round")
    else:
        choice = report.get("refine_choice", {})
        scores = choice.get("heldout_p@1_by_round")
        if scores:
            ax.plot(range(len(scores)), scores, "o-", label="held-out seed words")
            ax.axvline(choice.get("rounds", 0), color="k", ls="--", label="chosen")
        ax.set_ylabel("P@1 on held-out seed words (%)")
        ax.set_title("Refinement rounds: the evidence for the choice")
    ax.set_xlabel("refinement round")
    _whole_numbers(ax.xaxis)
    ax.legend(fontsize=7)
    figures.append(("Refinement", _png(fig)))

    # 3. similarity of the top-1 translation, right and wrong
    Q = np.asarray(S[rows])
    gold = {}
    s_rows, t_rows, _ = index_pairs(pairs, src_v, tgt_v, tgt_limit=n_t)
    for i, j in zip(s_rows, t_rows):
        gold.setdefault(int(i), set()).add(int(j))
    top, _ = nearest(Q, Tn, 1, top1, 10, r_target=r)
    cos = np.sum(_unit(Q) * _unit(Tn[top[:, 0]]), axis=1)
    right = np.array([top[n, 0] in gold[int(q)] for n, q in enumerate(rows)])
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    bins = np.linspace(np.floor(cos.min() * 10) / 10, 1, 30)
    ax.hist(cos[right], bins, alpha=0.6, label=f"right ({right.sum()})")
    ax.hist(cos[~right], bins, alpha=0.6, label=f"wrong ({(~right).sum()})")
    ax.set_xlabel(f"cosine of the {top1.upper()} top-1 translation")
    ax.set_ylabel("source words")
    _whole_numbers(ax.yaxis)
    ax.set_title("How sure the right and the wrong translations are")
    ax.legend()
    figures.append(("Similarity", _png(fig)))
    numbers["top1_cosine"] = {"retrieval": top1,
                              "right_mean": float(cos[right].mean()) if right.any() else None,
                              "wrong_mean": float(cos[~right].mean()) if (~right).any()
                              else None}

    # 4. hubness
    n_q = min(_HUB_QUERIES, len(S))
    Sq = np.asarray(S[:n_q])
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    hub = {}
    for m in methods:
        idx, _ = nearest(Sq, Tn, 1, m, 10, r_target=r if m == "csls" else None)
        counts = np.bincount(idx[:, 0], minlength=n_t)
        hub[m] = {"max": int(counts.max()), "targets_never_retrieved": int(np.sum(counts == 0)),
                  "top": [(tgt_v.words[j], int(counts[j])) for j in np.argsort(-counts)[:5]]}
        ks = np.arange(1, counts.max() + 1)
        ax.plot(ks, [np.sum(counts >= k) for k in ks], label=f"{m.upper()} (max {counts.max()})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("retrieved as top-1 at least k times")
    ax.set_ylabel("target words")
    ax.set_title(f"Hubness over the {n_q} most frequent source words")
    ax.legend()
    figures.append(("Hubness", _png(fig)))
    numbers["hubness"] = hub

    page = _html(run_dir, report, metrics, figures, hub, dictionary)
    with atomic_file(out_path, "wb", overwrite=force) as f:
        f.write(page.encode("utf-8"))
    return numbers


def _unit(X):
    n = np.linalg.norm(X, axis=1, keepdims=True)
    n[n == 0] = 1
    return X / n


def _epochs_table(restart: dict) -> str:
    """One adversarial start's training, epoch by epoch (what it saw: no test-file score)."""
    rows = "".join(f"<tr><td>{e['epoch']}</td><td>{e['dis_loss']:.4f}</td>"
                   f"<td>{e['dis_accuracy']:.3f}</td><td>{e['criterion']:.4f}</td></tr>"
                   for e in restart["adversarial"])
    return (f"<p>Adversarial training, seed {restart.get('seed')}:</p><table><tr><th>epoch</th>"
            "<th>discriminator loss</th><th>discriminator accuracy</th><th>criterion</th></tr>"
            f"{rows}</table>")


_STYLE = """<style>
body { font-family: sans-serif; max-width: 1300px; margin: 1.5em auto; padding: 0 1em;
color: #222; }
h1 { font-size: 1.4em; } table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ccc; padding: .3em .6em; text-align: right; vertical-align: top; }
.grid { display: grid; grid-template-columns: repeat(2, 1fr); gap: 1em; }
figure { margin: 0; } figcaption { font-weight: bold; margin-bottom: .3em; }
img { max-width: 100%; } pre { background: #f6f6f6; padding: .5em; font-size: .8em;
overflow-x: auto; max-height: 20em; font-size: .9em; }
</style>"""


def build_blind_report(run_dir, out_path, force=False, src=None, tgt=None, verify=False,
                       device=None) -> dict:
    """The page of a run without a test dictionary (:mod:`mapalign.quality`): the criterion
    of each frequent source word against the reference of random maps, the round trip and
    hubness. Returns what it shows, as numbers."""
    from .quality import GOOD, USABLE, evaluate_unsupervised_run, level

    check_output_file(out_path, create=True)  # before any work
    plt = _plt()
    q = evaluate_unsupervised_run(run_dir, record=False, src=src, tgt=tgt, verify=verify,
                                  device=device, return_words=True)
    report = load_run(run_dir)[1]
    ref, figures = q["reference"], []
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.hist(q["per_word"], bins=40, alpha=0.7, label=f"{q['words']} source words")
    ax.axvline(q["criterion"], color="C1", label=f"criterion (mean) {q['criterion']:.3f}")
    ax.axvline(ref, color="k", ls="--", label=f"random maps {ref:.3f}")
    for at, what in ((USABLE, "partial"), (GOOD, "good")):
        ax.axvline(level(ref, at), color="grey", ls=":", label=f"{what} from {level(ref, at):.2f}")
    ax.set_xlabel("cosine of the word's translation under a map fitted on the other words")
    ax.set_ylabel("source words")
    ax.set_title("Criterion against random maps")
    ax.legend(fontsize=7)
    figures.append(("Criterion", _png(fig)))
    counts = np.bincount(q["translations"], minlength=q["targets"])
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ks = np.arange(1, counts.max() + 1)
    ax.plot(ks, [np.sum(counts >= k) for k in ks], "o-", label=f"CSLS (max {counts.max()})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("retrieved as top-1 at least k times")
    ax.set_ylabel("target words")
    ax.set_title(f"Hubness over the {q['words']} most frequent source words")
    ax.legend()
    figures.append(("Hubness", _png(fig)))
    top = [(q["target_words"][j], int(counts[j])) for j in np.argsort(-counts)[:5]]
    numbers = {k: v for k, v in q.items()
               if k not in ("per_word", "translations", "source_words", "target_words")}
    numbers["most_retrieved"] = top
    esc = html.escape
    lo, hi = q["criterion_ci95"]
    h = q["hubness_detail"]
    rows = [("criterion (" + q["measure"] + ")", f"{q['criterion']:.4f}" + (
                f" <small>(95% CI {lo:.4f}&ndash;{hi:.4f})</small>" if lo is not None else "")),
            ("random orthogonal maps (reference)", f"{ref:.4f} <small>(draws " + ", ".join(
                f"{v:.4f}" for v in q["reference_detail"]["draws"]) + ")</small>"),
            ("above the reference", f"{q['above_reference']:+.4f}"),
            ("scaled (random maps 0, full agreement 1)", f"{q['scaled']:.2f}"),
            ("round trip", f"{q['round_trip']:.3f}"),
            ("queries taken by the 1% most retrieved targets", f"{q['hubness']:.3f} "
             f"<small>(skew {h['skew']:.2f}; {h['targets_retrieved']} of {h['targets']} "
             "targets retrieved)</small>"),
            ("most retrieved", esc(", ".join(f"{w} ({c})" for w, c in top)))]
    table = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    figs = "".join(f'<figure><figcaption>{esc(t)}</figcaption><img alt="{esc(t)}" '
                   f'src="{uri}"></figure>' for t, uri in figures)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mapalign report: {esc(str(run_dir))}</title>
{_STYLE}</head><body>
<h1>mapalign run {esc(os.path.abspath(str(run_dir)))}, without a test dictionary</h1>
<p>{esc(report.get('inputs', {}).get('source', {}).get('path', '?'))} &rarr;
{esc(report.get('inputs', {}).get('target', {}).get('path', '?'))}</p>
<p><b>Verdict:</b> {esc(q['verdict'])}</p>
<table>{table}</table>
<p>Over the {q['words']} most frequent source words and their CSLS translations among the
{q['targets']} most frequent target words. The thresholds of the verdict are provisional
(docs/results.md).</p>
<div class="grid">{figs}</div>
<h2>Settings</h2><pre>{esc(json.dumps(report.get('settings', {}), indent=1, default=str))}</pre>
</body></html>
"""
    with atomic_file(out_path, "wb", overwrite=force) as f:
        f.write(page.encode("utf-8"))
    return numbers


def _html(run_dir, report, metrics, figures, hub, dictionary="?") -> str:
    esc = html.escape
    rows = []
    for m in ("nn", "csls"):
        if m not in metrics:
            continue
        cells = "".join(f"<td>{metrics[m][k]:.2f}<br><small>{metrics[m]['ci95'][k][0]:.1f}"
                        f"&ndash;{metrics[m]['ci95'][k][1]:.1f}</small></td>"
                        for k in ("p@1", "p@5", "p@10"))
        rows.append(f"<tr><th>{m.upper()}</th>{cells}</tr>")
    settings = dict(report.get("settings", {}))
    if settings.get("init") != "adversarial":  # adversarial settings only where they acted
        settings.pop("adversarial", None)
    timings = report.get("timings_s", {})
    unsup = report.get("unsupervised")
    verdict = ""
    if unsup:
        test = unsup.get("convergence_test", {})
        level = test.get("null_level")
        level = "no null draw" if level is None else f"null level {level:.4f}"
        state = {True: "converged", False: "NOT converged"}.get(unsup["converged"], "not tested")
        verdict = (f"<p><b>Unsupervised:</b> mean translation cosine {unsup['criterion']:.4f}, "
                   f"{level}, margin {test.get('margin')}: <b>{state}</b></p>")
        verdict += "".join(_epochs_table(r) for r in unsup.get("restarts", [])
                           if r.get("adversarial"))
    hubs = "".join(f"<li>{m.upper()}: most retrieved "
                   + ", ".join(f"{esc(w)} ({c})" for w, c in h["top"])
                   + f"; {h['targets_never_retrieved']} targets never retrieved</li>"
                   for m, h in hub.items())
    figs = "".join(f'<figure><figcaption>{esc(t)}</figcaption><img alt="{esc(t)}" '
                   f'src="{uri}"></figure>' for t, uri in figures)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mapalign report: {esc(str(run_dir))}</title>
{_STYLE}</head><body>
<h1>mapalign run {esc(os.path.abspath(str(run_dir)))}</h1>
<p>{esc(report.get('inputs', {}).get('source', {}).get('path', '?'))} &rarr;
{esc(report.get('inputs', {}).get('target', {}).get('path', '?'))};
mode {esc(str(settings.get('mode', '?')))}, method {esc(str(settings.get('method',
settings.get('init', '?'))))}, seed {esc(str(report.get('seed')))}</p>
{verdict}
<h2>Bilingual dictionary induction</h2>
<p>Test dictionary {esc(os.path.abspath(str(dictionary)))}: {metrics['queries']} source words
({metrics['coverage']:.1f}% coverage); P@k in percent with
95% bootstrap intervals over source words.</p>
<table><tr><th></th><th>P@1</th><th>P@5</th><th>P@10</th></tr>{''.join(rows)}</table>
<ul>{hubs}</ul>
<div class="grid">{figs}</div>
<h2>Settings</h2><pre>{esc(json.dumps(settings, indent=1, default=str))}</pre>
<h2>Timings (s)</h2><pre>{esc(json.dumps(timings, indent=1))}</pre>
</body></html>
"""
