#!/usr/bin/env python
"""Wall time and peak memory of mapalign's stages. Each measurement runs in a fresh
subprocess so that its peak RSS (ru_maxrss) is its own.

    python scripts/bench.py                      # everything, CPU (and GPU if CuPy sees one)
    python scripts/bench.py --only shared        # the real es-en data only
    python scripts/bench.py --only retrieval --n 50000

Results are printed as a Markdown table and written to bench-out/bench.json.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "data", "es-en")


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_shared(args):
    """Load, fit and evaluate on the real data, one configuration."""
    import mapalign as ma

    out, t = {}, time.perf_counter()
    src = ma.load_embeddings(os.path.join(SHARED, "es.vec"))
    tgt = ma.load_embeddings(os.path.join(SHARED, "en.vec"))
    train = ma.load_dictionary(os.path.join(SHARED, args.train))
    test = ma.load_dictionary(os.path.join(SHARED, args.test))
    out["load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    if args.config.startswith("unsupervised"):
        from mapalign.unsupervised import UnsupervisedAligner

        init = args.config.split(":")[1]
        # the paper's adversarial schedule (5 x 1,000,000 samples) takes hours on a CPU; the
        # benchmark times one short epoch there and the full schedule only on a GPU
        short = dict(adv_epochs=1, adv_epoch_size=3200) if init == "adversarial" and \
            args.device == "cpu" else {}
        model = UnsupervisedAligner(init=init, seed=args.seed, device=args.device,
                                    **short).fit(src, tgt)
        out["converged"] = model.converged_
        out["criterion"] = model.criterion_
    else:
        method, refine = args.config.split(":")
        model = ma.SupervisedAligner(method, refine=int(refine), device=args.device).fit(
            src, tgt, train)
    out["fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    res = ma.evaluate_bdi(model, src, tgt, test, device=args.device)
    out["evaluate_s"] = time.perf_counter() - t
    out.update({f"{m}_{k}": res[m][k] for m in ("nn", "csls") for k in ("p@1", "p@5", "p@10")})
    return out


def stage_retrieval(args):
    """Blocked CSLS top-10 of every one of n queries among n targets, dimension d."""
    import numpy as np

    from mapalign.backend import get_xp
    from mapalign.retrieval import mean_topk_similarity, nearest

    xp = get_xp(args.device)
    rng = np.random.default_rng(args.seed)
    S = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    T = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    S, T = xp.asarray(S), xp.asarray(T)
    base = _peak_mb()
    t = time.perf_counter()
    r_t = mean_topk_similarity(T, S, 10)
    t_rt = time.perf_counter() - t
    nearest(S, T, 10, "csls", r_target=r_t)
    if xp is not np:
        xp.cuda.Stream.null.synchronize()
    total = time.perf_counter() - t
    out = dict(n=args.n, dim=args.dim, r_target_s=t_rt, total_s=total,
               input_mb=2 * args.n * args.dim * 4 / 2 ** 20, rss_before_mb=base)
    if xp is not np:
        out["gpu_peak_mb"] = xp.get_default_memory_pool().total_bytes() / 2 ** 20
    return out


def run_stage(name, extra):
    cmd = [sys.executable, __file__, "--stage", name] + extra
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr else "failed"}
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--config", default="procrustes:0")
    ap.add_argument("--train", default="es-en.train.txt")
    ap.add_argument("--test", default="es-en.test.txt")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--dim", type=int, default=300)
    ap.add_argument("--only", choices=["shared", "unsupervised", "retrieval"])
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    if args.stage:
        out = {"shared": stage_shared, "retrieval": stage_retrieval}[args.stage](args)
        out["peak_rss_mb"] = _peak_mb()
        print(json.dumps(out))
        return

    from mapalign.backend import resolve_device

    devices = ["cpu"] + (["gpu"] if resolve_device("auto") == "gpu" else [])
    rows = []
    if args.only in (None, "shared"):
        for config in ("procrustes:0", "procrustes:5", "cca:0", "cca:5"):
            for device in devices:
                r = run_stage("shared", ["--config", config, "--device", device])
                rows.append(dict(stage=f"es-en {config}", device=device, **r))
    if args.only in (None, "unsupervised"):
        for init in ("adversarial", "similarity", "identical"):
            for device in devices:
                r = run_stage("shared", ["--config", f"unsupervised:{init}", "--device", device,
                                         "--seed", str(args.seed)])
                rows.append(dict(stage=f"es-en unsupervised {init}", device=device, **r))
    if args.only in (None, "retrieval"):
        for device in devices:
            r = run_stage("retrieval", ["--n", str(args.n), "--dim", str(args.dim),
                                        "--device", device])
            rows.append(dict(stage=f"CSLS {args.n}x{args.n}x{args.dim}", device=device, **r))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(rows, f, indent=2)
    print("| stage | device | wall s | fit s | evaluate s | CSLS P@1 | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['stage']} | {r['device']} | error: {r['error']} | | | | |")
            continue
        fit = r.get("fit_s", r.get("total_s"))
        print(f"| {r['stage']} | {r['device']} | {r['wall_s']:.1f} | {fit:.2f} | "
              f"{r.get('evaluate_s', float('nan')):.2f} | {r.get('csls_p@1', float('nan')):.2f} | "
              f"{r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
