#!/usr/bin/env python
"""Wall time and peak memory of mapalign's stages. Each measurement runs in a fresh
subprocess so that its peak RSS (ru_maxrss) is its own.

    python scripts/bench.py                      # everything, CPU (and GPU if CuPy sees one)
    python scripts/bench.py --only supervised    # every method on es-en and zh-en
    python scripts/bench.py --only unsupervised --seeds 0,1,2,3,4   # inits x pairs x seeds
    python scripts/bench.py --only unsupervised --pairs fr-en --inits adversarial,similarity
    python scripts/bench.py --only semi          # --semi-supervised from 100 and 25 pairs
    python scripts/bench.py --only unsupervised-large   # defaults on a generated 200k x 300 pair
    python scripts/bench.py --only retrieval --n 50000
    python scripts/bench.py --only e2e           # fit/translate/evaluate/export, 200k x 300
    python scripts/bench.py --only passes        # one CSLS pass against a bare matmul
    python scripts/bench.py --only write         # .vec writing against raw disk writes
    python scripts/bench.py --only family        # fit-multi, 8 languages x 50k x 300,
                                                 # in-process and on a 2-worker LocalCluster
    python scripts/bench.py --only hostile       # peak memory of hostile inputs (64 MB line,
                                                 # zeros through a pipe) beside normal runs
    python scripts/bench.py --only blind --pairs es-en,zh-en,fr-en,fi-en   # dictionary-free
                                                 # measures against test P@1, graded runs,
                                                 # and the test dictionary's noise ceiling
    python scripts/bench.py --only blind-cost    # evaluate without --dict against with it,
                                                 # same generated 200k x 300 run
    python scripts/bench.py --only cache         # a repeated translate at 200k x 300: the
                                                 # cache checked by size+time vs whole sha256

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
DATA = os.environ.get("MAPALIGN_DATA") or os.path.join(HERE, "..", "..", "shared", "data")
PAIRS = ("es-en", "zh-en")


def _peak_mb():
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux starts a child's
    ru_maxrss at its parent's, so a stage run after a big parent would report the parent's."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def reference_matmul_s(repeats=3):
    """R: the median time of one float32 4096^3 matmul, timed in the same process, so that a
    time on a loaded machine can be quoted as a ratio."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def stage_shared(args):
    """Load, fit and evaluate on one real pair, one configuration."""
    import mapalign as ma

    folder = os.path.join(DATA, args.pair)
    if not os.path.isdir(folder):  # fr-en, fi-en, fr-fi live in multi/
        folder = os.path.join(DATA, "multi")
    s, t_lang = args.pair.split("-")
    out = {"R_s": reference_matmul_s()}
    t = time.perf_counter()
    src = ma.load_embeddings(os.path.join(folder, f"{s}.vec"))
    tgt = ma.load_embeddings(os.path.join(folder, f"{t_lang}.vec"))
    train = ma.load_dictionary(os.path.join(folder, f"{args.pair}.train.txt"))
    test = ma.load_dictionary(os.path.join(folder, f"{args.pair}.test.txt"))
    out["load_s"] = time.perf_counter() - t
    from mapalign import retrieval

    retrieval.product_seconds = []  # the similarity products' seconds, summed below
    t, c = time.perf_counter(), _cpu_s()
    if args.config.startswith("semi"):  # semi:N:DRAW, N random train pairs of draw DRAW
        import numpy as np

        _, n, draw = args.config.split(":")
        few = [train[i] for i in np.random.default_rng(int(draw)).choice(len(train), int(n),
                                                                         replace=False)]
        model = ma.SemiSupervisedAligner(device=args.device).fit(src, tgt, few)
        out["heldout_p1"] = model.heldout_check_ and model.heldout_check_["p@1"]
        out["rounds"] = len(model.history_)
    elif args.config.startswith("unsupervised"):
        from mapalign.unsupervised import UnsupervisedAligner

        init = args.config.split(":")[1]
        extra = {}  # the defaults (adversarial schedule "auto": cpu on a CPU, paper on a GPU)
        model = UnsupervisedAligner(init=init, seed=args.seed, device=args.device,
                                    **extra).fit(src, tgt)
        out["converged"] = model.converged_
        out["criterion"] = model.criterion_
        out["null_level"] = model.convergence_["null_level"]
        if init == "adversarial":
            out["adversarial"] = [r.get("adversarial") for r in model.restarts_]
    else:
        method, refine = args.config.split(":")
        model = ma.SupervisedAligner(method, refine=refine if refine == "auto" else int(refine),
                                     device=args.device).fit(src, tgt, train)
        out["rounds"] = model.refine_choice_["rounds"]
    out["fit_s"] = time.perf_counter() - t
    out["fit_cpu_s"] = _cpu_s() - c
    out["fit_R"] = out["fit_s"] / out["R_s"]
    _product_share(out, retrieval)
    t = time.perf_counter()
    res = ma.evaluate_bdi(model, src, tgt, test, device=args.device)
    out["evaluate_s"] = time.perf_counter() - t
    out.update({f"{m}_{k}": res[m][k] for m in ("nn", "csls") for k in ("p@1", "p@5", "p@10")})
    return out


def _product_share(out, retrieval):
    """The seconds of the fit's similarity products (each timed on its own thread, so with
    procedures side by side a sum of thread time) and their share of the fit's CPU time."""
    out["products_s"] = sum(retrieval.product_seconds)
    out["products_share"] = out["products_s"] / max(out["fit_cpu_s"], 1e-9)
    retrieval.product_seconds = None


def stage_unsupervised_large(args):
    """``UnsupervisedAligner`` with its defaults on a generated pair of args.n words x
    args.dim (the e2e stage's pair), as ``fit --unsupervised`` runs it after loading."""
    import mapalign as ma
    from mapalign.synthetic import make_pair
    from mapalign.unsupervised import UnsupervisedAligner

    src, tgt, _, test = make_pair(n_words=args.n, dim=args.dim, noise=0.3, seed=1,
                                  extra_target=0.0, clusters=200)
    from mapalign import retrieval

    out = {"R_s": reference_matmul_s()}
    retrieval.product_seconds = []
    t, c = time.perf_counter(), _cpu_s()
    model = UnsupervisedAligner(seed=args.seed).fit(src, tgt)
    out["fit_s"] = time.perf_counter() - t
    out["fit_cpu_s"] = _cpu_s() - c
    _product_share(out, retrieval)
    out["R_after_s"] = reference_matmul_s()
    out["fit_R"] = out["fit_s"] / ((out["R_s"] + out["R_after_s"]) / 2)
    out.update(converged=model.converged_, criterion=model.criterion_,
               null_level=model.convergence_["null_level"],
               restarts=len(model.restarts_))
    res = ma.evaluate_bdi(model, src, tgt, test[:1500])
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


def stage_passes(args):
    """Each kind of CSLS pass against a bare blocked matrix multiply of the same shape, in the
    same process: the targets' penalties; the queries' top-10 (their own penalties computed
    in the same pass); one refinement step (both sides' penalties and best matches both ways:
    three passes, the first rows of T @ S.T that fit the budget kept and read back, against
    three matmuls)."""
    import numpy as np

    from mapalign.backend import get_xp
    from mapalign.retrieval import (_blocks, block_rows, csls_best_both, mean_topk_similarity,
                                    nearest)

    xp = get_xp(args.device)
    rng = np.random.default_rng(args.seed)
    S = xp.asarray(rng.standard_normal((args.n, args.dim), dtype=np.float32))
    T = xp.asarray(rng.standard_normal((args.n, args.dim), dtype=np.float32))

    def sync():
        if xp is not np:
            xp.cuda.Stream.null.synchronize()

    t = time.perf_counter()
    for a, b in _blocks(len(S), block_rows(len(T))):
        (S[a:b] @ T.T).max()  # the product must be made; max reads it once
    sync()
    matmul = time.perf_counter() - t
    t = time.perf_counter()
    r_t = mean_topk_similarity(T, S, 10)
    sync()
    penalties = time.perf_counter() - t
    t = time.perf_counter()
    nearest(S, T, 10, "csls", r_target=r_t)
    sync()
    queries = time.perf_counter() - t
    t = time.perf_counter()
    csls_best_both(S, T, 10)
    sync()
    refine = time.perf_counter() - t
    return dict(n=args.n, dim=args.dim, matmul_s=matmul, penalty_pass_s=penalties,
                query_pass_s=queries, penalty_ratio=penalties / matmul,
                query_ratio=queries / matmul, refine_step_s=refine,
                refine_ratio=refine / (3 * matmul))


def stage_write(args):
    """Writing args.n x args.dim values as a .vec file (fsync included) against writing the
    same number of bytes raw: whether the disk or the formatting limits export."""
    import tempfile

    import numpy as np

    from mapalign.export import write_vec

    rng = np.random.default_rng(args.seed)
    V = (rng.standard_normal((args.n, args.dim)) * 0.06).astype(np.float32)
    words = [f"word{i}" for i in range(args.n)]
    folder = tempfile.mkdtemp(prefix="mapalign-write-")
    path = os.path.join(folder, "x.vec")
    t = time.perf_counter()
    write_vec(path, words, V)
    vec_s = time.perf_counter() - t
    size = os.path.getsize(path)
    os.unlink(path)
    block = rng.integers(0, 256, 8 << 20, dtype=np.uint8).tobytes()
    t = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    raw_s = time.perf_counter() - t
    os.unlink(path)
    os.rmdir(folder)
    return dict(n=args.n, dim=args.dim, mb=size / 1e6, vec_s=vec_s, raw_s=raw_s,
                vec_mb_s=size / 1e6 / vec_s, raw_mb_s=size / 1e6 / raw_s)


def stage_multi(args):
    """fr-fi on ../shared/data/multi: every multilingual method, trained (a) on fr-en and fi-en,
    (b) also on fr-fi; beside it, direct bilingual Procrustes trained on fr-fi."""
    import mapalign as ma
    from mapalign.multi import MultiAligner

    d = os.path.join(DATA, "multi")
    spaces = {lang: ma.load_embeddings(os.path.join(d, f"{lang}.vec"))
              for lang in ("fr", "fi", "en")}
    dicts = {n: ma.load_dictionary(os.path.join(d, f"{n}.train.txt"))
             for n in ("fr-en", "fi-en", "fr-fi")}
    test = ma.load_dictionary(os.path.join(d, "fr-fi.test.txt"))
    out = {}
    t = time.perf_counter()
    direct = ma.SupervisedAligner("procrustes", refine=0).fit(spaces["fr"], spaces["fi"],
                                                              dicts["fr-fi"])
    r = ma.evaluate_bdi(direct, spaces["fr"], spaces["fi"], test)
    out["direct procrustes (fr-fi train)"] = dict(nn=r["nn"]["p@1"], csls=r["csls"]["p@1"],
                                                  fit_s=time.perf_counter() - t)
    for setting, names in (("a", ("fr-en", "fi-en")), ("b", ("fr-en", "fi-en", "fr-fi"))):
        seeds = {tuple(n.split("-")): dicts[n] for n in names}
        for method in ("hub", "gpa", "joint"):
            t = time.perf_counter()
            m = MultiAligner(method=method).fit(spaces, seeds)
            fit_s = time.perf_counter() - t
            for hub_only in ((True,) if method == "hub" else (False,)):
                S = m.transform("fr", spaces["fr"].vectors, hub_only)
                T = m.transform("fi", spaces["fi"].vectors, hub_only)
                r = ma.evaluate_bdi(None, ma.Embeddings(spaces["fr"].words, S),
                                    ma.Embeddings(spaces["fi"].words, T), test, mapped=(S, T))
                out[f"({setting}) {method}"] = dict(nn=r["nn"]["p@1"], csls=r["csls"]["p@1"],
                                                   fit_s=fit_s)
    return {"multi": out}


def stage_family(args):
    """A generated family of ``args.langs`` languages x ``args.n`` words x ``args.dim``, seed
    dictionaries with the hub only, the default fit-multi (joint) in this process or on a
    local Dask cluster of ``args.workers`` processes (``args.scheduler``). Peak memory is this
    process's and, on Dask, each worker's."""
    from mapalign.multi import MultiAligner
    from mapalign.scheduler import open_scheduler
    from mapalign.synthetic import make_family

    langs = tuple(f"l{i}" for i in range(args.langs - 1)) + ("hub",)
    t = time.perf_counter()
    spaces, dicts, _ = make_family(langs, n_words=args.n, dim=args.dim, noise=0.3,
                                   hub_noise=0.3, clusters=200, seed=args.seed)
    seeds = {k: v[:5000] for k, v in dicts.items() if "hub" in k}
    gen_s = time.perf_counter() - t
    out = dict(languages=args.langs, n=args.n, dim=args.dim, generate_s=gen_s,
               scheduler=args.scheduler)
    local = args.scheduler == "local"
    # the cluster is opened here, not by the fit, so that its workers' peaks can be read
    with open_scheduler(args.scheduler, args.workers if local else None) as sched:
        address = sched.client.scheduler.address if local else None
        t, c = time.perf_counter(), _cpu_s()
        model = MultiAligner(hub="hub", scheduler=address, copy=False).fit(spaces, seeds)
        out.update(fit_s=time.perf_counter() - t, fit_cpu_s=_cpu_s() - c,
                   rounds=len(model.history_) - 1,
                   criterion=max(h["criterion"] for h in model.history_))
        if local:
            out["workers"] = args.workers
            out["worker_peak_rss_mb"] = sorted(sched.client.run(_peak_mb).values())
    return out


def stage_cli(args):
    """One mapalign command, in this process, so that the peak RSS is the command's own."""
    from mapalign.cli import main as cli

    t = time.perf_counter()
    try:
        cli.main(args.cli, standalone_mode=False)
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    return {"command": " ".join(args.cli[:1]), "seconds": time.perf_counter() - t}


def stage_cli_any(args):
    """One mapalign command that may fail: its exit status and first error line."""
    import contextlib
    import io

    from mapalign.cli import main as cli

    t = time.perf_counter()
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err):
        try:
            cli.main(args.cli, standalone_mode=True)
        except SystemExit as e:
            code = e.code or 0
    return {"command": " ".join(args.cli[:1]), "seconds": time.perf_counter() - t,
            "exit": code, "message": (err.getvalue().strip().splitlines() or [""])[0]}


def hostile(args, rows):
    """Peak memory (VmHWM of the command's own process) of hostile inputs beside a normal run
    of the same command, on a small generated pair (2,000 x 50)."""
    import tempfile
    import threading

    from mapalign.synthetic import make_pair, vec_bytes

    folder = tempfile.mkdtemp(prefix="mapalign-hostile-", dir=args.out)
    p = lambda name: os.path.join(folder, name)  # noqa: E731
    src, tgt, train, _ = make_pair(n_words=2000, dim=50, noise=0.3, seed=1)
    for name, emb in (("s.vec", src), ("t.vec", tgt)):
        with open(p(name), "wb") as f:
            f.write(vec_bytes(emb))
    with open(p("train"), "w") as f:
        f.writelines(f"{a} {b}\n" for a, b in train)
    with open(p("long"), "wb") as f:  # 64 MB without a newline
        f.write(b"a" * (64 << 20))
    with open(p("word.vec"), "wb") as f:  # a 5 MB word token
        f.write(b"w" * (5 << 20) + b" " + b" ".join([b"0.1"] * 50) + b"\n")
    subprocess.run([sys.executable, __file__, "--stage", "cli", "--cli", "fit", p("s.vec"),
                    p("t.vec"), "--dict", p("train"), "-o", p("run"), "-q"], check=True)

    def zeros_fifo(name):  # /dev/zero through a pipe: written until the reader stops
        os.mkfifo(p(name))

        def write():
            try:
                with open(p(name), "wb") as f:
                    while True:
                        f.write(bytes(1 << 16))
            except BrokenPipeError:
                pass
        threading.Thread(target=write, daemon=True).start()
        return p(name)

    os.mkfifo(p("no-writer"))
    fit = ["fit", "--dict", p("train"), "-q", "--force", "-o", p("r")]
    cases = [
        ("fit", "normal", fit + [p("s.vec"), p("t.vec")]),
        ("fit", "64 MB line as vectors", fit + [p("long"), p("t.vec")]),
        ("fit", "5 MB word in vectors", fit + [p("word.vec"), p("t.vec")]),
        ("fit", "/dev/zero as vectors", fit + ["/dev/zero", p("t.vec")]),
        ("fit", "FIFO without a writer as vectors", fit + [p("no-writer"), p("t.vec")]),
        ("fit", "64 MB line as --dict", ["fit", p("s.vec"), p("t.vec"), "--dict", p("long"),
                                        "-q", "--force", "-o", p("r")]),
        ("fit", "zeros through a pipe as --dict", None),
        ("apply", "normal", ["apply", p("run"), p("s.vec"), "-o", p("a.vec"), "-q", "--force"]),
        ("apply", "64 MB line", ["apply", p("run"), p("long"), "-o", p("a.vec"), "-q",
                                 "--force"]),
        ("apply", "zeros through a pipe", None),
    ]
    for command, label, cli in cases:
        if cli is None and command == "fit":
            cli = ["fit", p("s.vec"), p("t.vec"), "--dict", zeros_fifo("z1"), "-q", "--force",
                   "-o", p("r")]
        elif cli is None:
            cli = ["apply", p("run"), zeros_fifo("z2"), "-o", p("a.vec"), "-q", "--force"]
        r = run_stage("cli_any", ["--cli"] + cli)
        rows.append(dict(stage=f"hostile: {command}, {label}", device="cpu", **r))
        _progress(rows[-1])


def stage_cache_check(args):
    """The run cache's check alone, in this process: by size and time (the fast path of a
    repeated command) and by whole checksum (a changed time, or --verify), medians of 5; and
    sha256 against blake2b over the same bytes."""
    import hashlib

    import numpy as np

    from mapalign.cache import RunCache
    from mapalign.store import read_run

    run_dir = args.cli[0]
    report = read_run(run_dir)[1]
    out = {"R_s": reference_matmul_s()}
    for label, verify in (("fast", False), ("full", True)):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            assert RunCache(run_dir, report, verify).has_vectors()
            times.append(time.perf_counter() - t)
        out[f"check_{label}_s"] = float(np.median(times))
    folder = os.path.join(run_dir, "cache")
    out["cache_mb"] = sum(os.path.getsize(os.path.join(folder, n))
                          for n in os.listdir(folder)) / 1e6
    with open(os.path.join(folder, "source.npy"), "rb") as f:
        data = f.read()
    for name in ("sha256", "blake2b"):
        t = time.perf_counter()
        hashlib.new(name, data).hexdigest()
        out[f"{name}_mb_s"] = len(data) / 1e6 / (time.perf_counter() - t)
    return out


def _generated_files(args, prefix):
    """A generated pair of args.n words x args.dim written into a new folder under args.out:
    ``s.vec``, ``t.vec``, ``train`` (5,000 pairs) and ``test`` (1,500). Returns the function
    naming a file of the folder, and the test pairs."""
    import tempfile

    from mapalign.export import write_vec
    from mapalign.synthetic import make_pair

    folder = tempfile.mkdtemp(prefix=prefix, dir=args.out)
    src, tgt, train, test = make_pair(n_words=args.n, dim=args.dim, noise=0.3, seed=1,
                                      extra_target=0.0, clusters=200)
    p = lambda name: os.path.join(folder, name)  # noqa: E731
    write_vec(p("s.vec"), src.words, src.vectors)
    write_vec(p("t.vec"), tgt.words, tgt.vectors)
    for name, pairs in (("train", train[:5000]), ("test", test[:1500])):
        with open(p(name), "w") as f:
            f.writelines(f"{a} {b}\n" for a, b in pairs)
    return p, test


def cache(args, rows):
    """A repeated command at args.n x args.dim: translate (NN) a second time, its cache checked
    by size and time; with the cache files' times changed (each read whole: sha256); with
    --verify (the inputs' and the cache's whole checksums). Medians of 5 commands, each in its
    own process, timed inside it, with R measured in the same run."""
    import statistics

    p, test = _generated_files(args, "mapalign-cache-")
    word = test[0][0]
    run = p("run")
    subprocess.run([sys.executable, __file__, "--stage", "cli", "--cli", "fit", p("s.vec"),
                    p("t.vec"), "--dict", p("train"), "-o", run, "-q", "--method", "procrustes",
                    "--refine", "0"], check=True)
    translate = ["translate", run, word, "-q", "--retrieval", "nn"]
    first = run_stage("cli", ["--cli"] + translate)
    rows.append(dict(stage=f"cache {args.n}x{args.dim}: translate (1st: builds the cache)",
                     device="cpu", **first))
    _progress(rows[-1])
    R = [reference_matmul_s()]

    def touch():
        for name in os.listdir(os.path.join(run, "cache")):
            if name != "index.json":
                os.utime(os.path.join(run, "cache", name))

    for label, before, extra in (("repeated (size+time)", None, []),
                                 ("cache times changed (whole sha256)", touch, []),
                                 ("--verify (inputs' and cache's sha256)", None, ["--verify"])):
        times = []
        for _ in range(5):
            if before:
                before()
            r = run_stage("cli", ["--cli"] + translate + extra)
            times.append(r["seconds"])
        R.append(reference_matmul_s())
        rows.append(dict(stage=f"cache {args.n}x{args.dim}: translate {label}, median of 5",
                         device="cpu", command="translate", seconds=statistics.median(times),
                         seconds_all=times, wall_s=r["wall_s"], peak_rss_mb=r["peak_rss_mb"]))
        _progress(rows[-1])
    check = run_stage("cache_check", ["--cli", run])
    rows.append(dict(stage=f"cache {args.n}x{args.dim}: the check alone", device="cpu",
                     **check))
    _progress(rows[-1])
    for r in rows[-4:-1]:
        r["R_s"] = statistics.median(R)
        r["in_R"] = r["seconds"] / r["R_s"]


def e2e(args, rows):
    """The commands a user runs, on a generated pair of args.n words x args.dim."""
    p, test = _generated_files(args, "mapalign-e2e-")
    paths = {n: p(n) for n in ("s.vec", "t.vec", "train", "test", "run", "out")}
    word = test[0][0]
    commands = [
        ("fit", ["fit", paths["s.vec"], paths["t.vec"], "--dict", paths["train"], "-o",
                 paths["run"], "-q"]),
        ("translate (1st: builds the run's cache)", ["translate", paths["run"], word, "-q"]),
        ("translate (2nd)", ["translate", paths["run"], word, "-q"]),
        ("evaluate", ["evaluate", paths["run"], "--dict", paths["test"], "-q"]),
        ("export", ["export", paths["run"], "-o", paths["out"], "-q"]),
        ("apply (streams the source file)", ["apply", paths["run"], paths["s.vec"], "-o",
                                             p("applied.vec"), "-q"]),
    ]
    for label, cmd in commands:
        r = run_stage("cli", ["--cli"] + cmd)
        rows.append(dict(stage=f"e2e {args.n}x{args.dim}: {label}", device="cpu", **r))
        _progress(rows[-1])


def blind_cost(args, rows):
    """``evaluate RUN`` without a dictionary against ``evaluate RUN --dict TEST`` on the same
    run of a generated args.n x args.dim pair (the e2e stage's), each command in its own
    process, timed inside it: the first of each before the run's cache exists, then again
    with it; R measured between the commands."""
    import statistics

    p, _ = _generated_files(args, "mapalign-blind-cost-")
    run = p("run")
    fit = run_stage("cli", ["--cli", "fit", p("s.vec"), p("t.vec"), "--dict", p("train"),
                            "-o", run, "-q", "--method", "procrustes", "--refine", "0"])
    rows.append(dict(stage=f"blind cost {args.n}x{args.dim}: fit (procrustes, 0 rounds; "
                           "records the quality)", device="cpu", **fit))
    _progress(rows[-1])
    with open(os.path.join(run, "report.json")) as f:
        rows[-1]["fit_quality_s"] = json.load(f)["timings_s"]["quality"]
    R = [reference_matmul_s()]
    blind, with_dict = ["evaluate", run, "-q"], ["evaluate", run, "--dict", p("test"), "-q"]
    first = len(rows)
    for label, cmd in (("evaluate without a dictionary (no cache yet)", blind),
                       ("evaluate --dict (1st: builds the cache and the penalties)", with_dict),
                       ("evaluate without a dictionary (cache present)", blind),
                       ("evaluate --dict (2nd: from the cache)", with_dict)):
        r = run_stage("cli", ["--cli"] + cmd)
        R.append(reference_matmul_s())
        rows.append(dict(stage=f"blind cost {args.n}x{args.dim}: {label}", device="cpu", **r))
        _progress(rows[-1])
    for r in rows[first:]:
        r["R_s"] = statistics.median(R)
        r["R_all_s"] = R
        r["in_R"] = r["seconds"] / r["R_s"]


# ------------------------------------------------------------ quality without a dictionary
BLIND_PAIRS = ("es-en", "zh-en", "fr-en", "fi-en")
BLIND_MEASURES = ("isometric", "isometric_in_sample", "isometric_splits", "isometric_both",
                  "isometric_rare", "linear", "refit_cca", "refit_multistep", "space_cosine",
                  "csls_margin", "z_score", "round_trip", "low_hubness")
NOISE_DRAWS = 200  # random half-splits and bootstrap resamples of the test words


def noise_ceiling(hits, draws=NOISE_DRAWS, seed=0):
    """How well any measure could rank runs given the test dictionary's own sampling noise.
    ``hits``: runs x test words, 1 where the run's CSLS top-1 is a gold translation (the same
    words for every run). ``split_half``: Spearman between the runs' P@1 on two random halves
    of the words; ``bootstrap_vs_full``: Spearman between P@1 on a bootstrap resample of the
    words and on all of them (both: median and 5-95% over ``draws``); ``ceiling``: the
    Spearman-Brown estimate of the correlation of error-free quality with the full test's P@1,
    sqrt(2 r / (1 + r)), r the median split-half Spearman."""
    import numpy as np
    from scipy.stats import spearmanr

    H = np.asarray(hits, dtype=np.float64)
    n = H.shape[1]
    full = H.mean(axis=1)
    rng = np.random.default_rng(seed)
    half, boot = [], []
    for _ in range(draws):
        perm = rng.permutation(n)
        a, b = perm[:n // 2], perm[n // 2:]
        half.append(spearmanr(H[:, a].mean(axis=1), H[:, b].mean(axis=1))[0])
        boot.append(spearmanr(H[:, rng.integers(0, n, n)].mean(axis=1), full)[0])

    def summary(v):
        v = np.asarray(v, dtype=np.float64)
        v = v[np.isfinite(v)]  # a half where every run scores alike has no ranking
        return dict(median=float(np.median(v)), p5=float(np.percentile(v, 5)),
                    p95=float(np.percentile(v, 95)), draws=int(len(v)))

    out = dict(split_half=summary(half), bootstrap_vs_full=summary(boot), words=int(n),
               runs=int(H.shape[0]), seed=seed)
    r = out["split_half"]["median"]
    out["ceiling"] = float(np.sqrt(2 * r / (1 + r))) if r > 0 else 0.0
    return out


def _blind_runs():
    """``(name, config, close)`` of the graded runs of one pair: every method x 0/2/5 rounds on
    the full dictionary (the close runs), Procrustes at 1/3/4 rounds, 25/100/500 random seed
    pairs (Procrustes and multi-step), 25/50/75% of the pairs replaced by random pairs, and a
    failed unsupervised run."""
    runs = [(f"{m} r{r}", dict(method=m, refine=r), True)
            for m in ("procrustes", "cca", "multistep", "rcsls") for r in (0, 2, 5)]
    runs += [(f"procrustes r{r}", dict(method="procrustes", refine=r), False) for r in (1, 3, 4)]
    runs += [(f"{m} {n} pairs", dict(method=m, refine=0, pairs=n), False)
             for m in ("procrustes", "multistep") for n in (25, 100, 500)]
    runs += [(f"procrustes {p}% random pairs", dict(method="procrustes", refine=0, noise=p),
              False) for p in (25, 50, 75)]
    runs.append(("failed unsupervised", dict(unsupervised=True), False))
    return runs


def _blind_fit(config, src, tgt, train, seed=0):
    import numpy as np

    import mapalign as ma

    rng = np.random.default_rng(seed)
    if config.get("unsupervised"):
        # a stand-in for a collapsed run: the unsupervised procedure (similarity start, no
        # self-learning, one refinement round, one start, no null draws) fitted against
        # Gaussian vectors of the target's shape, its maps then applied to the real target
        from mapalign.unsupervised import UnsupervisedAligner

        noise = ma.Embeddings(tgt.words, rng.standard_normal(tgt.vectors.shape)
                              .astype(np.float32))
        return UnsupervisedAligner(restarts=1, null_draws=0, refine=1, self_learning=False,
                                   seed=seed, n_jobs=1).fit(src, noise)
    pairs = list(train)
    if "pairs" in config:
        pairs = [pairs[i] for i in rng.choice(len(pairs), config["pairs"], replace=False)]
    if "noise" in config:
        swap = rng.choice(len(pairs), int(round(len(pairs) * config["noise"] / 100)),
                          replace=False)
        for i in swap:
            pairs[i] = (pairs[i][0], tgt.words[rng.integers(len(tgt))])
    return ma.SupervisedAligner(method=config["method"], refine=config["refine"]).fit(
        src, tgt, pairs)


def _variants(S, T, X, Z, m, splits=5):
    """Variants of isometric agreement: ``isometric_splits`` averages it over ``splits``
    random half-splits of the words (seeded) instead of the alternate ranks;
    ``isometric_both`` averages it over both directions (the frequent target words' CSLS
    translations among the source words, scored by maps from target to source);
    ``isometric_rare``: the default criterion's per-word values over the less frequent half
    of the words."""
    import numpy as np

    from mapalign import quality
    from mapalign.normalize import unit_rows

    fwd, per_word = m["fwd"], m["isometric"]
    rng = np.random.default_rng(0)
    split = []
    for _ in range(splits):
        perm = rng.permutation(len(fwd))
        split.append(np.mean(quality.isometric_agreement(X[perm], Z, fwd[perm])))
    bwd, _, _ = quality._translations(unit_rows(T), unit_rows(S), 10, quality.DEFAULT_BUDGET)
    back = quality.isometric_agreement(Z, X, bwd)
    # ``linear``: as the criterion, but the map refitted on the other half is any linear map
    # (least squares), not an orthogonal one: it does not favour runs whose own map is
    # orthogonal
    Xh, Zf = np.asarray(X, dtype=np.float64), np.asarray(Z, dtype=np.float64)[fwd]
    fold = np.arange(len(fwd)) % 2
    lin = np.empty(len(fwd))
    for f in (0, 1):
        W = np.linalg.lstsq(Xh[fold != f], Zf[fold != f], rcond=None)[0]
        P = Xh[fold == f] @ W
        lin[fold == f] = np.sum(P * Zf[fold == f], axis=1) / np.maximum(
            np.linalg.norm(P, axis=1) * np.linalg.norm(Zf[fold == f], axis=1), 1e-12)
    # ``refit_cca``, ``refit_multistep``: as the criterion, but the map refitted on the other
    # half is that method's, the held-out words scored by the cosine in its shared space
    refit = {f"refit_{method}": float(np.mean(quality.isometric_agreement(X, Z, fwd,
                                                                          method=method)))
             for method in ("cca", "multistep")}
    return dict(linear=float(lin.mean()), isometric_splits=float(np.mean(split)), **refit,
                isometric_both=float((per_word.mean() + back.mean()) / 2),
                isometric_rare=float(per_word[len(per_word) // 2:].mean()))


def _pairwise(rows, measures, compare):
    """For each of ``measures``: how often it orders two runs as their test CSLS P@1 does,
    over the pairs of runs whose P@1 differ significantly (exact McNemar p < 0.05):
    separately for runs of the same method and of different methods, among the close runs
    and among all runs; and, over all runs, its preferences for a Procrustes run over a run
    of another method apart from all its other preferences (``compare`` warns of the
    former)."""
    import itertools

    differ = [(a, b) for a, b in itertools.combinations(rows, 2)
              if a["p1"] != b["p1"] and compare(a, b)["mcnemar_exact_p"] < 0.05]

    def towards_procrustes(a, b, measure):
        pick, other = (a, b) if a[measure] > b[measure] else (b, a)
        return pick["method"] == "procrustes" and other["method"] != "procrustes"

    out = {}
    for measure in measures:
        groups = {f"{group}, {kind}": [
            (a, b) for a, b in differ if (group == "all" or a["close"] and b["close"])
            and (a["method"] == b["method"]) == (kind == "same method")]
            for group in ("close", "all") for kind in ("same method", "different methods")}
        groups["all, prefers a Procrustes run over another method's"] = [
            (a, b) for a, b in differ if towards_procrustes(a, b, measure)]
        groups["all, every other preference"] = [
            (a, b) for a, b in differ if not towards_procrustes(a, b, measure)]
        out[measure] = {name: dict(pairs=len(sel), right=int(sum(
            (a[measure] > b[measure]) == (a["p1"] > b["p1"]) for a, b in sel)))
            for name, sel in groups.items()}
    return out


def blind(args):
    """Dictionary-free measures against test CSLS P@1 over graded runs of each real pair
    (fitted models cached under ``args.out/blind-cache``; delete it to refit)."""
    import warnings

    import numpy as np
    from scipy.stats import spearmanr

    import mapalign as ma
    from mapalign import quality
    from mapalign.evaluation import compare

    cache = os.path.join(args.out, "blind-cache")
    out_path = os.path.join(args.out, "blind.json")
    results = {}
    if os.path.exists(out_path):  # pairs measured by an earlier call are kept
        with open(out_path) as f:
            results = json.load(f)
    for pair in args.pairs.split(","):
        folder = os.path.join(DATA, pair)
        if not os.path.isdir(folder):
            folder = os.path.join(DATA, "multi")
        s, t_lang = pair.split("-")
        src = ma.load_embeddings(os.path.join(folder, f"{s}.vec"))
        tgt = ma.load_embeddings(os.path.join(folder, f"{t_lang}.vec"))
        train = ma.load_dictionary(os.path.join(folder, f"{pair}.train.txt"))
        test = ma.load_dictionary(os.path.join(folder, f"{pair}.test.txt"))
        n = quality.N_WORDS
        X = quality._common_space(src.vectors, n, np)
        Z = quality._common_space(tgt.vectors, n, np)
        t = time.perf_counter()
        ref = quality.reference(X, Z)
        rows = []
        for name, config, close in _blind_runs():
            path = os.path.join(cache, pair, name.replace(" ", "_").replace("%", "pct"))
            if os.path.exists(os.path.join(path, "mapping.npz")):
                model = ma.load(path)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = _blind_fit(config, src, tgt, train)
                model.save(path, overwrite=True)
            ev = ma.evaluate_bdi(model, src, tgt, test, methods=("csls",), return_hits=True)
            S, T = model.mapped(src, tgt, n, n)
            m = quality.measures(S, T, X, Z)
            row = dict(name=name, close=close, p1=ev["csls"]["p@1"], hits=ev["hits"],
                       method=config.get("method", model.final if config.get("unsupervised")
                                         else None),
                       query_words=ev["query_words"],
                       isometric_in_sample=float(np.mean(quality.isometric_agreement(
                           X, Z, m["fwd"], folds=1))),
                       low_hubness=-m["hubness"]["top1pct_share"],
                       hub_skew=m["hubness"]["skew"], **_variants(S, T, X, Z, m))
            row.update({k: float(np.mean(m[k])) for k in ("isometric", "space_cosine",
                                                          "csls_margin", "z_score",
                                                          "round_trip")})
            rows.append(row)
            print(f"{pair} {name}: P@1 {row['p1']:.2f} isometric {row['isometric']:.4f} "
                  f"space cosine {row['space_cosine']:.4f} round trip {row['round_trip']:.3f}",
                  file=sys.stderr, flush=True)
        ceiling = {}
        for group, sel in (("all", rows), ("close", [r for r in rows if r["close"]])):
            if any(r["query_words"] != sel[0]["query_words"] for r in sel):
                raise RuntimeError(f"{pair}: the runs' test words differ")
            ceiling[group] = noise_ceiling([r["hits"]["csls"]["p@1"] for r in sel])
        table = {}
        for measure in BLIND_MEASURES:
            entry = {}
            for group, sel in (("all", rows), ("close", [r for r in rows if r["close"]])):
                rho = spearmanr([r[measure] for r in sel], [r["p1"] for r in sel])[0]
                pick = max(sel, key=lambda r: r[measure])
                best = max(sel, key=lambda r: r["p1"])
                p = 1.0 if pick is best else compare(pick, best)["mcnemar_exact_p"]
                entry[group] = dict(spearman=float(rho), picks=pick["name"], pick_p1=pick["p1"],
                                    best=best["name"], best_p1=best["p1"], mcnemar_p=p)
            table[measure] = entry
        pairwise = _pairwise(rows, ("isometric", "refit_cca", "refit_multistep"), compare)
        for r in rows:
            r.pop("hits"), r.pop("query_words")
        results[pair] = dict(reference=ref, runs=rows, table=table, noise_ceiling=ceiling,
                             pairwise=pairwise,
                             seconds=time.perf_counter() - t)
        os.makedirs(args.out, exist_ok=True)
        with open(out_path, "w") as f:
            json.dump(results, f, indent=2)
    print("| pair | measure | Spearman, all runs | Spearman, close runs | all runs: picks "
          "(P@1; McNemar p vs best) | close runs: picks (P@1; p) |")
    print("|---|---|---|---|---|---|")
    for pair, res in results.items():
        for measure, e in res["table"].items():
            a, c = e["all"], e["close"]
            print(f"| {pair} | {measure} | {a['spearman']:.2f} | {c['spearman']:.2f} | "
                  f"{a['picks']} ({a['pick_p1']:.2f}; {a['mcnemar_p']:.2g}) | "
                  f"{c['picks']} ({c['pick_p1']:.2f}; {c['mcnemar_p']:.2g}) |")
    groups = list(next(iter(results.values())).get("pairwise", {}).get("isometric", {}))
    print("\n| pair | measure | " + " | ".join(f"{g}: right / pairs" for g in groups) + " |")
    print("|---|---|" + "---|" * len(groups))
    for pair, res in results.items():
        for measure, counts in res.get("pairwise", {}).items():
            print(f"| {pair} | {measure} | " + " | ".join(
                f"{v['right']} / {v['pairs']}" for v in counts.values()) + " |")
    print("\n| pair | runs | test words | split-half Spearman, median (5-95%) | bootstrap vs "
          "full test, median (5-95%) | noise ceiling | isometric |")
    print("|---|---|---|---|---|---|---|")
    for pair, res in results.items():
        for group, c in res.get("noise_ceiling", {}).items():
            h, b = c["split_half"], c["bootstrap_vs_full"]
            print(f"| {pair} | {group} ({c['runs']}) | {c['words']} | {h['median']:.2f} "
                  f"({h['p5']:.2f} to {h['p95']:.2f}) | {b['median']:.2f} ({b['p5']:.2f} to "
                  f"{b['p95']:.2f}) | {c['ceiling']:.2f} | "
                  f"{res['table']['isometric'][group]['spearman']:.2f} |")
    print("\n| pair | run | CSLS P@1 | isometric | space cosine | round trip | top-1% share |")
    print("|---|---|---|---|---|---|---|")
    for pair, res in results.items():
        print(f"| {pair} | random orthogonal maps (reference) | | {res['reference']['mean']:.4f} "
              f"| | | |")
        for r in res["runs"]:
            print(f"| {pair} | {r['name']} | {r['p1']:.2f} | {r['isometric']:.4f} | "
                  f"{r['space_cosine']:.4f} | {r['round_trip']:.3f} | {-r['low_hubness']:.3f} |")


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
    ap.add_argument("--pair", default="es-en")
    ap.add_argument("--seeds", default="0", help="unsupervised seeds, e.g. 0,1,2,3,4")
    ap.add_argument("--pairs", default=",".join(PAIRS), help="real pairs, e.g. es-en,zh-en")
    ap.add_argument("--inits", default="similarity,identical,adversarial",
                    help="unsupervised initialisations to run")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--dim", type=int, default=300)
    ap.add_argument("--only", choices=["supervised", "unsupervised", "unsupervised-large", "semi",
                                       "retrieval", "passes",
                                       "e2e", "multi", "family", "write", "hostile",
                                       "blind", "blind-cost", "cache"])
    ap.add_argument("--langs", type=int, default=8, help="languages of the generated family")
    ap.add_argument("--family-n", type=int, default=50000, help="words per family language")
    ap.add_argument("--workers", type=int, default=2, help="Dask workers of the family stage")
    ap.add_argument("--scheduler", default="in-process", help=argparse.SUPPRESS)
    ap.add_argument("--cli", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    if args.stage:
        out = {"shared": stage_shared, "retrieval": stage_retrieval, "passes": stage_passes,
               "cli": stage_cli, "cli_any": stage_cli_any, "multi": stage_multi,
               "unsupervised_large": stage_unsupervised_large,
               "family": stage_family, "write": stage_write,
               "cache_check": stage_cache_check}[args.stage](args)
        out["peak_rss_mb"] = _peak_mb()
        print(json.dumps(out))
        return

    from mapalign.backend import resolve_device

    devices = ["cpu"] + (["gpu"] if resolve_device("auto") == "gpu" else [])
    rows = []
    seeds = [int(x) for x in args.seeds.split(",")]
    if args.only in (None, "supervised"):
        for pair in PAIRS:
            for config in ("procrustes:0", "procrustes:auto", "cca:0", "cca:auto",
                           "multistep:0", "multistep:auto", "rcsls:0", "rcsls:auto"):
                for device in devices:
                    r = run_stage("shared", ["--pair", pair, "--config", config,
                                             "--device", device])
                    rows.append(dict(stage=f"{pair} {config}", device=device, **r))
                    _progress(rows[-1])
    if args.only in (None, "unsupervised"):
        for pair in args.pairs.split(","):
            for init in args.inits.split(","):
                for seed in seeds:
                    for device in devices:
                        r = run_stage("shared", ["--pair", pair, "--device", device,
                                                 "--config", f"unsupervised:{init}",
                                                 "--seed", str(seed)])
                        rows.append(dict(stage=f"{pair} unsupervised {init} seed {seed}",
                                         device=device, **r))
                        _progress(rows[-1])
    if args.only == "unsupervised-large":
        r = run_stage("unsupervised_large", ["--n", str(args.n), "--dim", str(args.dim),
                                             "--seed", str(args.seed)])
        rows.append(dict(stage=f"generated {args.n}x{args.dim} fit --unsupervised", device="cpu",
                         **r))
        _progress(rows[-1])
    if args.only in (None, "semi"):
        for pair in args.pairs.split(","):
            for n in (100, 25):
                for draw in (0, 1, 2):
                    r = run_stage("shared", ["--pair", pair, "--config", f"semi:{n}:{draw}"])
                    rows.append(dict(stage=f"{pair} semi-supervised, {n} train pairs, draw "
                                           f"{draw}", device="cpu", **r))
                    _progress(rows[-1])
    if args.only in (None, "passes"):
        for device in devices:
            r = run_stage("passes", ["--n", str(min(args.n, 50000)), "--dim", str(args.dim),
                                     "--device", device])
            rows.append(dict(stage=f"CSLS pass vs matmul {min(args.n, 50000)}^2 x {args.dim}",
                             device=device, **r))
            _progress(rows[-1])
    if args.only in (None, "multi"):
        r = run_stage("multi", [])
        for name, v in r.get("multi", {}).items():
            print(f"| fr-fi {name} | {v['nn']:.2f} | {v['csls']:.2f} | {v['fit_s']:.1f} |",
                  file=sys.stderr, flush=True)
        rows.append(dict(stage="multi fr-fi", device="cpu", **r))
    if args.only in (None, "family"):
        for scheduler in ("in-process", "local"):
            r = run_stage("family", ["--langs", str(args.langs), "--n", str(args.family_n),
                                     "--dim", str(args.dim), "--scheduler", scheduler,
                                     "--workers", str(args.workers)])
            where = "in-process" if scheduler == "in-process" else \
                f"Dask LocalCluster, {args.workers} workers"
            rows.append(dict(stage=f"fit-multi {args.langs} x {args.family_n} x {args.dim} "
                                   f"({where})", device="cpu", **r))
            _progress(rows[-1])
    if args.only in (None, "write"):
        r = run_stage("write", ["--n", str(args.n), "--dim", str(args.dim)])
        rows.append(dict(stage=f"write .vec {args.n}x{args.dim}", device="cpu", **r))
        _progress(rows[-1])
    if args.only in (None, "hostile"):
        os.makedirs(args.out, exist_ok=True)
        hostile(args, rows)
    if args.only == "blind":  # its own tables (blind.json); not part of a plain run
        blind(args)
        return
    if args.only in (None, "e2e"):
        os.makedirs(args.out, exist_ok=True)
        e2e(args, rows)
    if args.only in (None, "blind-cost"):
        os.makedirs(args.out, exist_ok=True)
        blind_cost(args, rows)
    if args.only in (None, "cache"):
        os.makedirs(args.out, exist_ok=True)
        cache(args, rows)
    if args.only in (None, "retrieval"):
        for device in devices:
            r = run_stage("retrieval", ["--n", str(args.n), "--dim", str(args.dim),
                                        "--device", device])
            rows.append(dict(stage=f"CSLS {args.n}x{args.n}x{args.dim}", device=device, **r))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(rows, f, indent=2)
    print("| stage | device | wall s | fit s | fit CPU s | NN P@1/5/10 | CSLS P@1/5/10 | "
          "converged | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(_row(r))


def _row(r):
    if "error" in r:
        return f"| {r['stage']} | {r['device']} | error: {r['error']} | | | | | | |"
    if "penalty_ratio" in r:
        return (f"| {r['stage']} | {r['device']} | matmul {r['matmul_s']:.1f} s | penalty pass "
                f"{r['penalty_pass_s']:.1f} s ({r['penalty_ratio']:.2f}x) | query pass "
                f"{r['query_pass_s']:.1f} s ({r['query_ratio']:.2f}x) | refinement step "
                f"{r['refine_step_s']:.1f} s ({r['refine_ratio']:.2f}x 3 matmuls) | | | "
                f"{r['peak_rss_mb']:.0f} |")
    if "multi" in r:
        return "\n".join(f"| fr-fi {k} | {v['nn']:.2f} / {v['csls']:.2f} | {v['fit_s']:.1f} |"
                         for k, v in r["multi"].items())
    if "vec_mb_s" in r:
        return (f"| {r['stage']} | {r['device']} | {r['wall_s']:.1f} | .vec {r['vec_s']:.2f} s "
                f"({r['vec_mb_s']:.0f} MB/s) | raw {r['raw_s']:.2f} s ({r['raw_mb_s']:.0f} MB/s) "
                f"| {r['mb']:.0f} MB | | | {r['peak_rss_mb']:.0f} |")
    if "languages" in r:
        workers = (f"; workers' peaks {', '.join(f'{m:.0f}' for m in r['worker_peak_rss_mb'])}"
                   if "worker_peak_rss_mb" in r else "")
        return (f"| {r['stage']} | {r['device']} | {r['wall_s']:.1f} | {r['fit_s']:.1f} | "
                f"{r['fit_cpu_s']:.1f} | | | criterion {r['criterion']:.4f} after "
                f"{r['rounds']} rounds | {r['peak_rss_mb']:.0f}{workers} |")
    if "check_fast_s" in r:
        return (f"| {r['stage']} | {r['device']} | {r['wall_s']:.1f} | size+time "
                f"{r['check_fast_s'] * 1e3:.2f} ms, whole sha256 {r['check_full_s']:.2f} s "
                f"({r['cache_mb']:.0f} MB; sha256 {r['sha256_mb_s']:.0f} MB/s, blake2b "
                f"{r['blake2b_mb_s']:.0f} MB/s) | R {r['R_s']:.2f} s | | | | "
                f"{r['peak_rss_mb']:.0f} |")
    if "in_R" in r:
        return (f"| {r['stage']} | {r['device']} | {r['wall_s']:.1f} | {r['seconds']:.2f} "
                f"({r['in_R']:.2f} R, R = {r['R_s']:.2f} s) | | | | | "
                f"{r['peak_rss_mb']:.0f} |")
    if "exit" in r:
        return (f"| {r['stage']} | {r['device']} | {r['wall_s']:.1f} | {r['seconds']:.2f} | "
                f"exit {r['exit']}: {r['message'][:90]} | | | | {r['peak_rss_mb']:.0f} |")
    if "command" in r:
        return (f"| {r['stage']} | {r['device']} | {r['wall_s']:.1f} | {r['seconds']:.2f} | "
                f"| | | | {r['peak_rss_mb']:.0f} |")
    fit = r.get("fit_s", r.get("total_s", float("nan")))
    pk = lambda m: "/".join(f"{r[f'{m}_p@{k}']:.2f}" for k in (1, 5, 10)) \
        if f"{m}_p@1" in r else ""  # noqa: E731
    conv = {True: "yes", False: "no", None: "untested"}.get(r.get("converged"), "") \
        if "converged" in r else ""
    in_r = f" ({r['fit_R']:.0f} R)" if "fit_R" in r else ""
    cpu = f"{r.get('fit_cpu_s', float('nan')):.1f}" + \
        (f" ({r['products_share']:.0%} products)" if "products_share" in r else "")
    return (f"| {r['stage']} | {r['device']} | {r['wall_s']:.1f} | {fit:.2f}{in_r} | {cpu} | "
            f"{pk('nn')} | {pk('csls')} | {conv} | {r['peak_rss_mb']:.0f} |")


def _progress(r):
    print(_row(r), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
