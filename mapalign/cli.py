"""The ``mapalign`` command: a thin click layer over :mod:`mapalign.runs`."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import warnings

import click

from .backend import DEVICES
from .cli_output import Command, Failure, Path, RunDir, exit_codes_epilog, input_file, warn
from .errors import MissingExtraError, use_cli_flags
from .loading import ENCODING_ERRORS, FORMATS, FormatError
from .mapping import METHODS
from .normalize import parse_chain
from .unsupervised import INITS
from .unsupervised.adversarial import SCHEDULES

DEMO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                        "demo")


def _progress_factory(quiet):
    @contextlib.contextmanager
    def factory(label, length):
        if quiet:
            yield None
            return
        with click.progressbar(length=length or 0, label=label, file=sys.stderr,
                               show_pos=True) as bar:
            yield bar.update
    return factory


def _echo_factory(quiet):
    """What the library's ``echo`` prints: progress unless ``quiet``, warnings always."""
    def echo(msg):
        if not quiet or str(msg).startswith("warning:"):
            click.echo(msg, err=True)
    return echo


@contextlib.contextmanager
def _user_errors():
    """Expected failures (bad input or arguments, files, a missing extra) become one
    'Error: ...' line and exit status 1; anything else is a bug and keeps its traceback."""
    try:
        yield
    except (FormatError, OSError, ValueError, MissingExtraError) as e:
        raise click.ClickException(str(e)) from None


_no_swap_check = click.option(
    "--no-swap-check", "allow_swapped", is_flag=True,
    help="Go on with a dictionary (or vectors file) that does not match the run: one that "
         "fits the languages far better swapped, or of which under 5% is in the vocabularies "
         "(by default an error: swapped languages, or a file of other languages?).")
_strict_run = click.option(
    "--strict", is_flag=True,
    help="Refuse (exit status 3) a run that failed its own quality check at fit: an "
         "unsupervised fit that did not converge, a semi-supervised one whose held-out check "
         "failed. Without it such a run is used, with a warning.")
_device_option = click.option(
    "--device", type=click.Choice(DEVICES), default=None,
    help="Where to compute: cpu, gpu (CuPy) or auto (default: where the run was fitted).")


def _chain(ctx, param, value):
    try:
        parse_chain(value)
    except ValueError as e:
        raise click.BadParameter(str(e))
    return value


def _rounds(ctx, param, value):
    if value == "auto":
        return value
    try:
        n = int(value)
        if n < 0:
            raise ValueError
        return n
    except ValueError:
        raise click.BadParameter(f"'auto' or a whole number >= 0, not {value!r}")


def format_table(metrics: dict) -> str:
    """A P@k table for one evaluation."""
    ks = [k for k in ("p@1", "p@5", "p@10") if k in metrics.get("csls", metrics.get("nn", {}))]
    lines = [f"{'retrieval':<10}" + "".join(f"{k.upper():>8}" for k in ks)]
    for method in ("nn", "csls"):
        if method in metrics:
            lines.append(f"{method.upper():<10}" + "".join(
                f"{metrics[method][k]:>8.2f}" if metrics[method][k] is not None else f"{'-':>8}"
                for k in ks))
            ci = metrics[method].get("ci95")
            if ci:
                lines.append(f"{'  95% CI':<10}" + "".join(
                    f"{f'{ci[k][0]:.1f}-{ci[k][1]:.1f}':>12}" for k in ks))
    lines.append(f"coverage {metrics['coverage']:.1f}% ({metrics['source_words_used']}/"
                 f"{metrics['source_words']} source words, {metrics['pairs_used']}/"
                 f"{metrics['pairs']} pairs), retrieval over {metrics['eval_vocab']} targets")
    return "\n".join(lines)


class _Group(click.Group):
    """Every command is a :class:`~mapalign.cli_output.Command` (the output contract). Ctrl-C ends a command with status 130 (128 + SIGINT), as shells expect, instead of
    click's 'Aborted!' and status 1. Outputs are written atomically, so nothing is left
    half-written."""

    command_class = Command

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("\ninterrupted: nothing was left half-written", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=exit_codes_epilog())
@click.version_option(package_name="mapalign")
def main():
    """Map two languages' word vectors into one space, and measure the mapping."""
    use_cli_flags(click.get_current_context())  # messages name this command's flags
    old, warnings.formatwarning = warnings.formatwarning, _format_warning
    click.get_current_context().call_on_close(lambda: setattr(warnings, "formatwarning", old))


def _format_warning(message, category, filename, lineno, line=None):
    """A library warning not gathered by the command (a damaged cache entry rebuilt, ...):
    one 'warning: ...' line on stderr, without Python's source location."""
    return f"warning: {message}\n"


_moved = [click.option("--src", "src_path", type=input_file(),
                       help="The source vectors, if they moved since the fit (checked "
                            "against the recorded checksum)."),
          click.option("--tgt", "tgt_path", type=input_file(),
                       help="The target vectors, if they moved since the fit."),
          click.option("--verify", is_flag=True,
                       help="Check the inputs by their whole checksum (default: size and "
                            "modification time, and only when they are read).")]


def _moved_options(f):
    for opt in reversed(_moved):
        f = opt(f)
    return f


@main.command()
@click.argument("src", type=input_file())
@click.argument("tgt", type=input_file())
@click.option("--dict", "dictionary", type=input_file(),
              help="Seed dictionary, 'source target' per line (MUSE format).")
@click.option("--unsupervised", is_flag=True, help="Learn the mapping with no dictionary.")
@click.option("--semi-supervised", is_flag=True,
              help="With --dict: self-learning started from its pairs (for 25-500 pairs), "
                   "seed pairs kept in every round, instead of fitting them alone.")
@click.option("-o", "--out", "run_dir", required=True, type=Path(),
              help="Run directory to write (RUN).")
@click.option("--method", type=click.Choice(METHODS), default="multistep", show_default=True,
              help="Supervised mapping method (see README: chosen by measurement on es-en, "
                   "zh-en and generated pairs).")
@click.option("--refine", default="auto", show_default=True, callback=_rounds,
              help="Rounds of re-solving on mutual CSLS nearest neighbours: a number, or "
                   "'auto' (supervised: chosen on the least frequent 20% of the seed words; "
                   "unsupervised: 5).")
@click.option("--normalize", default="unit,center,unit", show_default=True, callback=_chain,
              help="Normalisation chain of unit, center.")
@click.option("--max-vocab", type=click.IntRange(min=1), default=200000, show_default=True,
              help="Read only the first N words of each file.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Vector file format; auto detects it from the first bytes.")
@click.option("--encoding-errors", type=click.Choice(ENCODING_ERRORS), default="strict",
              show_default=True, help="What to do with words that are not valid UTF-8.")
@click.option("--device", type=click.Choice(DEVICES), default="cpu", show_default=True,
              help="Where to compute: cpu, gpu (CuPy), or auto (gpu when CuPy sees one).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of every random choice; recorded in the report.")
@click.option("--init", type=click.Choice(INITS), default="similarity", show_default=True,
              help="Unsupervised initialisation.")
@click.option("--restarts", type=click.IntRange(min=1), default=3, show_default=True,
              help="Unsupervised starts (seeds SEED, SEED+1, ...; with --init similarity "
                   "also cycling through --similarity-vocab); the best criterion wins.")
@click.option("--similarity-vocab", default="1000,2000,4000", show_default=True,
              help="Words the similarity initialisation describes, one value per restart "
                   "(cycled).")
@click.option("--null-draws", type=click.IntRange(min=0), default=2, show_default=True,
              help="Random starts put through the same procedure: the level a run must beat "
                   "to count as converged (0: no test).")
@click.option("--strict", is_flag=True,
              help="Exit with status 3 when the run fails its own quality check: the "
                   "unsupervised criterion says no convergence, or the semi-supervised "
                   "held-out check fails.")
@click.option("--adversarial", "adv_schedule", type=click.Choice(("auto",) + tuple(SCHEDULES)),
              default="auto", show_default=True,
              help="Schedule of --init adversarial: paper (Conneau et al., built for a GPU), "
                   "cpu (a fifth of the samples, 512 hidden units), auto (cpu on a CPU, paper "
                   "on a GPU).")
@click.option("--adv-epochs", type=click.IntRange(min=1),
              help="Adversarial training epochs (overrides the schedule's).")
@click.option("--adv-epoch-size", type=click.IntRange(min=1),
              help="Samples per adversarial epoch (overrides the schedule's).")
@click.option("--adv-hidden", type=click.IntRange(min=1),
              help="Hidden units of each discriminator layer (overrides the schedule's).")
@click.option("--jobs", "n_jobs", type=click.IntRange(min=1),
              help="Unsupervised procedures run at once (default: one per CPU core, one on a "
                   "GPU); changes the time, not the result.")
@click.option("--force", is_flag=True,
              help="Overwrite an existing run, or write into a folder holding other files.")
@_no_swap_check
@click.option("--json", "as_json", is_flag=True, help="Print the run's report as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr/stdout.")
def fit(src, tgt, dictionary, unsupervised, semi_supervised, run_dir, method, refine, normalize,
        max_vocab, fmt,
        encoding_errors, device, seed, init, restarts, similarity_vocab, null_draws, strict,
        adv_schedule, adv_epochs, adv_epoch_size, adv_hidden, n_jobs, force, allow_swapped,
        as_json, quiet):
    """Learn a mapping of SRC's vectors onto TGT's and write the run directory RUN (-o)."""
    from .runs import fit_run
    from .store import run_verdict

    if bool(dictionary) == bool(unsupervised):
        raise click.UsageError("give --dict TRAIN or --unsupervised (exactly one)")
    if semi_supervised:
        if not dictionary:
            raise click.UsageError("--semi-supervised starts from seed pairs: give --dict FEW")
        given = [f"--{n}" for n in ("method", "refine") if click.get_current_context()
                 .get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"{' and '.join(given)}: supervised fits only; "
                                   "--semi-supervised self-learns, then solves the "
                                   "multi-step framework once")
    try:
        sim_vocab = tuple(int(v) for v in similarity_vocab.split(","))
        if not sim_vocab or min(sim_vocab) < 2:
            raise ValueError
    except ValueError:
        raise click.BadParameter("comma-separated word counts >= 2, e.g. 1000,2000,4000",
                                 param_hint="--similarity-vocab")
    if strict and unsupervised and null_draws == 0:
        raise click.UsageError("--strict needs a convergence test: --null-draws must be >= 1")
    overrides = {k: v for k, v in (("epochs", adv_epochs), ("epoch_size", adv_epoch_size),
                                   ("hidden", adv_hidden)) if v is not None}
    if overrides and adv_schedule == "auto":  # the schedule auto would choose, overridden
        from .backend import resolve_device

        with _user_errors():
            adv_schedule = "cpu" if resolve_device(device) == "cpu" else "paper"
    schedule = (dataclasses.replace(SCHEDULES[adv_schedule], **overrides) if overrides
                else adv_schedule)
    options = dict(init=init, restarts=restarts, similarity_vocab=sim_vocab,
                   null_draws=null_draws, adversarial=schedule, n_jobs=n_jobs)
    with _user_errors():
        report = fit_run(src, tgt, run_dir, dictionary, unsupervised, method=method,
                         refine=refine, normalize=normalize, max_vocab=max_vocab, fmt=fmt,
                         encoding_errors=encoding_errors, device=device, seed=seed,
                         force=force, unsupervised_options=options,
                         progress_factory=_progress_factory(quiet),
                         echo=_echo_factory(quiet), argv=sys.argv,
                         allow_swapped=allow_swapped, semi_supervised=semi_supervised)
    unsup = report.get("unsupervised")
    if unsup:
        test = unsup["convergence_test"]
        if unsup["converged"] is None:
            verdict = "NOT TESTED (--null-draws 0)"
        elif unsup["converged"]:
            verdict = "converged"
        else:
            verdict = "DID NOT CONVERGE"
        level = ("no null draw" if test["null_level"] is None else
                 f"{test['null_level']:.4f} + margin {test['margin']:.2f} from random starts")
        line = (f"unsupervised criterion {unsup['criterion']:.4f} vs {level}: {verdict} "
                f"(best seed {unsup['best_seed']})")
        if unsup["converged"] is False:
            warn([line, "the mapping is probably wrong; try --restarts, another --init, "
                        "or a seed dictionary"])
        elif not quiet:
            click.echo(line, err=True)
    if strict and run_verdict(report)["failed"]:
        raise Failure(f"{run_dir}: the run failed its own quality check (see the warnings); "
                      "--strict", 3, report)
    if not quiet and not as_json:
        seed_info = report.get("seed_dictionary")
        if seed_info:
            click.echo(f"seed pairs used {seed_info['pairs_used']}/{seed_info['pairs']} "
                       f"({seed_info['pairs_oov']} dropped: a word out of vocabulary)")
        if "self_learning" in report:
            check = report.get("heldout_check")
            click.echo(f"self-learning: {report['self_learning']['rounds']} rounds; " + (
                f"check: CSLS P@1 {check['p@1']:.1f} on {check['words']} held-out seed "
                "source words" if check else "no held-out check (too few seed words)"))
        choice = report.get("refine_choice")
        if choice:
            click.echo(f"refinement rounds: {choice['rounds']} ({choice['chosen_by']})")
        click.echo(f"fit in {report['timings_s']['fit']:.2f}s on {report['device_used']}; "
                   f"wrote {run_dir}")
    return report


@main.command()
@click.argument("run_dir", type=RunDir())
@click.option("--dict", "dictionary", required=True, type=input_file(),
              help="Test dictionary, 'source target' per line.")
@click.option("--eval-vocab", type=click.IntRange(min=1), default=200000, show_default=True,
              help="Retrieve among the first N target words.")
@click.option("--retrieval", type=click.Choice(["nn", "csls", "both"]), default="both",
              show_default=True)
@_device_option
@_moved_options
@_no_swap_check
@_strict_run
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or warnings.")
def evaluate(run_dir, dictionary, eval_vocab, retrieval, device, src_path, tgt_path, verify,
             allow_swapped, strict, as_json, quiet):
    """Bilingual dictionary induction P@1/5/10 of RUN_DIR on a test dictionary."""
    from .runs import evaluate_run

    methods = ("nn", "csls") if retrieval == "both" else (retrieval,)
    with _user_errors():
        entry = evaluate_run(run_dir, dictionary, eval_vocab, methods, device,
                             progress_factory=_progress_factory(quiet), src=src_path,
                             tgt=tgt_path, verify=verify, allow_swapped=allow_swapped)
    warn(entry["metrics"]["warnings"])
    if not as_json:
        click.echo(format_table(entry["metrics"]))
    return entry["metrics"]


@main.command()
@click.argument("run_dir", type=RunDir())
@click.option("--dict", "dictionary", required=True, type=input_file(),
              help="Test dictionary.")
@click.option("-o", "--out", "out_path", required=True, type=Path(dir_okay=False),
              help="The HTML file to write.")
@click.option("--eval-vocab", type=click.IntRange(min=1), default=200000, show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@_device_option
@_moved_options
@_no_swap_check
@_strict_run
@click.option("--json", "as_json", is_flag=True, help="Also print the numbers as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No warnings or summary on stderr.")
def report(run_dir, dictionary, out_path, eval_vocab, force, device, src_path, tgt_path, verify,
           allow_swapped, strict, as_json, quiet):
    """A self-contained HTML page about RUN_DIR: precision by frequency band, refinement
    history, similarity of right and wrong translations, hubness, settings, timings."""
    from .report import build_report

    with _user_errors():
        numbers = build_report(run_dir, dictionary, out_path, eval_vocab, force, src_path,
                               tgt_path, verify, device=device, allow_swapped=allow_swapped)
    warn(numbers.get("warnings", []))
    if not quiet:
        click.echo(f"wrote {out_path}", err=True)
    return numbers


@main.command()
@click.argument("run_a", type=RunDir())
@click.argument("run_b", type=RunDir())
@click.option("--dict", "dictionary", required=True, type=input_file(),
              help="Test dictionary both runs are scored on.")
@click.option("--retrieval", type=click.Choice(["nn", "csls"]), default="csls",
              show_default=True)
@click.option("-k", "k", type=click.Choice(["1", "5", "10"]), default="1", show_default=True,
              help="Compare P@K.")
@click.option("--eval-vocab", type=click.IntRange(min=1), default=200000, show_default=True)
@_device_option
@_moved_options
@_no_swap_check
@_strict_run
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or warnings.")
def compare(run_a, run_b, dictionary, retrieval, k, eval_vocab, device, src_path, tgt_path,
            verify, allow_swapped, strict, as_json, quiet):
    """Is RUN_A better than RUN_B? P@K on the same source words, the difference with a 95%
    paired bootstrap interval, and the exact McNemar test."""
    from .runs import compare_runs

    with _user_errors():
        out = compare_runs(run_a, run_b, dictionary, retrieval, f"p@{k}", eval_vocab,
                           progress_factory=_progress_factory(quiet), device=device,
                           src=src_path, tgt=tgt_path, verify=verify,
                           allow_swapped=allow_swapped)
    warn(out["warnings"])
    if as_json:
        return out
    lo, hi = out["difference_ci95"]
    click.echo(f"{out['metric']} on {out['words']} source words: A {out['a']:.2f}, "
               f"B {out['b']:.2f}\ndifference A - B {out['difference']:+.2f} points "
               f"(95% CI {lo:+.2f} to {hi:+.2f}); only A right on {out['only_a_right']}, "
               f"only B right on {out['only_b_right']}; exact McNemar p = "
               f"{out['mcnemar_exact_p']:.4f}")
    return out


@main.command()
@click.argument("run_dir", type=RunDir())
@click.option("-o", "--out", "out_dir", required=True, type=Path(),
              help="Folder to write the files into (created if missing).")
@click.option("--vectors/--no-vectors", default=True, show_default=True,
              help="Aligned src.vec and tgt.vec.")
@click.option("--mapping/--no-mapping", default=True, show_default=True,
              help="W_src.npy and W_tgt.npy.")
@click.option("--dictionary/--no-dictionary", default=True, show_default=True,
              help="Induced dictionary.txt: 'source target score' lines.")
@click.option("--dict-vocab", type=click.IntRange(min=1), default=15000, show_default=True,
              help="Induce the dictionary among the first N words of each side.")
@click.option("--dict-mode", type=click.Choice(["mutual", "forward"]), default="mutual",
              show_default=True, help="Mutual CSLS best matches, or every source word's best.")
@click.option("--max-vocab", type=click.IntRange(min=1), default=None,
              help="Export only the first N words of each side.")
@click.option("--out-format", "vec_format", type=click.Choice(["text", "word2vec-binary"]),
              default="text", show_default=True,
              help="Aligned vectors as text .vec, or word2vec binary .bin (gensim's "
                   "load_word2vec_format(..., binary=True) reads it).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@_moved_options
@_strict_run
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary.")
def export(run_dir, out_dir, vectors, mapping, dictionary, dict_vocab, dict_mode, max_vocab,
           vec_format, force, src_path, tgt_path, verify, strict, as_json, quiet):
    """Write RUN_DIR's aligned vectors, mapping matrices and induced dictionary."""
    from .runs import export_run

    with _user_errors():
        entry = export_run(run_dir, out_dir, vectors, mapping, dictionary, dict_vocab,
                           dict_mode, max_vocab, force, progress_factory=_progress_factory(quiet),
                           src=src_path, tgt=tgt_path, verify=verify, vec_format=vec_format)
    if not quiet and not as_json:
        click.echo(f"wrote {', '.join(entry['files'])} to {out_dir}")
    return entry


def _lang_pairs(values, what):
    """``LANG=PATH`` (or ``A-B=PATH`` for dictionaries) options into a dict."""
    out = {}
    for v in values:
        key, sep, path = v.partition("=")
        if not sep or not key or not path:
            raise click.BadParameter(f"{v!r}: expected {what}=PATH")
        if not os.path.exists(path) or os.path.isdir(path):  # bad input (exit 1), not usage
            raise click.ClickException(f"{path}: " + ("a folder, not a file" if
                                                      os.path.isdir(path) else "no such file"))
        if what == "A-B":
            a, dash, b = key.partition("-")
            if not dash or not a or not b or a == b:
                raise click.BadParameter(f"{key!r}: expected two languages as A-B")
            key = (a, b)
        if key in out:
            raise click.BadParameter(f"{key} given twice")
        out[key] = path
    return out


_SCHEDULER_HELP = ("Where independent tasks (per-language maps, induced dictionaries, "
                   "per-pair evaluations) run: in-process, 'local' (a Dask LocalCluster of "
                   "--workers processes) or a Dask scheduler's address; needs "
                   "mapalign[dask] unless in-process. Results do not depend on it.")


@main.command("fit-multi")
@click.argument("spaces", nargs=-1, required=True)
@click.option("--dict", "dictionaries", multiple=True,
              help="A seed dictionary as A-B=PATH ('a-word b-word' lines); repeat for each.")
@click.option("--unsupervised", is_flag=True,
              help="No dictionary: each language mapped to the hub by the unsupervised "
                   "aligner, then the joint step induces dictionaries between all pairs.")
@click.option("--hub", default="en", show_default=True,
              help="The language whose space is the shared one.")
@click.option("--method", type=click.Choice(["joint", "gpa", "hub"]), default="joint",
              show_default=True, help="hub: each language to the hub alone; gpa: all maps "
              "solved together on every dictionary; joint: gpa, then rounds of dictionaries "
              "induced between the languages without one.")
@click.option("-o", "--out", "run_dir", required=True, type=Path(),
              help="Run directory to write.")
@click.option("--normalize", default="unit,center,unit", show_default=True, callback=_chain,
              help="Normalisation chain of unit, center.")
@click.option("--max-vocab", type=click.IntRange(min=1), default=200000, show_default=True,
              help="Read only the first N words of each file.")
@click.option("--device", type=click.Choice(DEVICES), default="cpu", show_default=True,
              help="Where to compute.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the unsupervised starts; recorded in the report.")
@click.option("--restarts", type=click.IntRange(min=1), default=3, show_default=True,
              help="Unsupervised starts per language.")
@click.option("--null-draws", type=click.IntRange(min=0), default=2, show_default=True,
              help="Random starts per language for the unsupervised convergence test.")
@click.option("--strict", is_flag=True,
              help="Exit with status 3 when a language's unsupervised map did not converge.")
@click.option("--scheduler", default="in-process", show_default=True, help=_SCHEDULER_HELP)
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes of --scheduler local (default 2).")
@click.option("--force", is_flag=True,
              help="Overwrite an existing run, or write into a folder holding other files.")
@_no_swap_check
@click.option("--json", "as_json", is_flag=True, help="Print the run's report as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary.")
def fit_multi(spaces, dictionaries, unsupervised, hub, method, run_dir, normalize, max_vocab,
              device, seed, restarts, null_draws, strict, scheduler, workers, force,
              allow_swapped, as_json, quiet):
    """Map several languages into one space: SPACES are LANG=PATH (e.g. fr=fr.vec fi=fi.vec
    en=en.vec)."""
    from .runs import fit_multi_run

    if bool(dictionaries) == bool(unsupervised):
        raise click.UsageError("give --dict A-B=TRAIN (one or more) or --unsupervised "
                               "(exactly one of them)")
    if strict and (not unsupervised or null_draws == 0):
        raise click.UsageError("--strict needs --unsupervised and --null-draws >= 1")
    spaces = _lang_pairs(spaces, "LANG")
    dicts = _lang_pairs(dictionaries, "A-B")
    with _user_errors():
        report = fit_multi_run(spaces, dicts, run_dir, method=method, hub=hub,
                               normalize=normalize, max_vocab=max_vocab, device=device,
                               unsupervised=unsupervised, seed=seed,
                               unsupervised_options=dict(restarts=restarts,
                                                         null_draws=null_draws),
                               scheduler=scheduler, workers=workers, force=force,
                               progress_factory=_progress_factory(quiet),
                               echo=_echo_factory(quiet), argv=sys.argv,
                               allow_swapped=allow_swapped)
    if not quiet and not as_json:
        for name, info in report["multi"].get("seed_dictionaries", {}).items():
            click.echo(f"{name}: seed pairs used {info['pairs_used']}/{info['pairs']} "
                       f"({info['pairs_oov']} dropped: a word out of vocabulary)")
    failed = [lang for lang, info in report["multi"]["hub_fits"].items()
              if info.get("converged") is False]
    if failed:
        warn([f"the unsupervised map of {', '.join(failed)} to {hub} DID NOT CONVERGE "
              "(criterion within the margin of random starts); those maps are probably "
              "wrong: try --restarts or a seed dictionary"])
        if strict:
            raise Failure(f"{run_dir}: the unsupervised map of {', '.join(failed)} did not "
                          "converge (--strict)", 3, report)
    if not quiet and not as_json:
        click.echo(f"fit {', '.join(report['multi']['languages'])} into {hub}'s space in "
                   f"{report['timings_s']['fit']:.1f}s; wrote {run_dir}")
    return report


@main.command("evaluate-multi")
@click.argument("run_dir", type=RunDir())
@click.option("--dict", "dictionaries", multiple=True, required=True,
              help="A test dictionary as A-B=PATH; repeat for each directed pair.")
@click.option("--eval-vocab", type=click.IntRange(min=1), default=200000, show_default=True)
@click.option("--scheduler", default="in-process", show_default=True, help=_SCHEDULER_HELP)
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes of --scheduler local (default 2).")
@_no_swap_check
@_strict_run
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No warnings on stderr.")
def evaluate_multi(run_dir, dictionaries, eval_vocab, scheduler, workers, allow_swapped, strict,
                   as_json, quiet):
    """P@1/5/10 of every directed pair with a test dictionary, NN and CSLS, beside the figure
    of the hub-only maps."""
    from .runs import evaluate_multi_run

    with _user_errors():
        out = evaluate_multi_run(run_dir, _lang_pairs(dictionaries, "A-B"), eval_vocab,
                                 scheduler=scheduler, workers=workers,
                                 allow_swapped=allow_swapped)
    notes = sorted({w for res in out.values() for w in res["run"]["warnings"]})
    warn(notes)
    doc = {"pairs": out, "warnings": notes}
    if as_json:
        return doc
    for pair, res in out.items():
        click.echo(f"== {pair}" + (" (indirect: neither is the hub)" if res["indirect"] else ""))
        click.echo(format_table(res["run"]))
        h = res["hub_only"]
        click.echo("hub-only maps: " + ", ".join(f"{m.upper()} P@1 {h[m]['p@1']:.2f}"
                                                 for m in ("nn", "csls")))
    return doc


@main.command("export-multi")
@click.argument("run_dir", type=RunDir())
@click.option("-o", "--out", "out_dir", required=True, type=Path(),
              help="Folder for one LANG.vec (or .bin) and W_LANG.npy per language.")
@click.option("--vectors/--no-vectors", default=True, show_default=True,
              help="Aligned LANG.vec files.")
@click.option("--mapping/--no-mapping", default=True, show_default=True,
              help="W_LANG.npy: each language's matrix into the shared space.")
@click.option("--max-vocab", type=click.IntRange(min=1), default=None,
              help="Export only the first N words of each language.")
@click.option("--out-format", "vec_format", type=click.Choice(["text", "word2vec-binary"]),
              default="text", show_default=True, help="Aligned vectors as .vec or .bin.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@_strict_run
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary.")
def export_multi(run_dir, out_dir, vectors, mapping, max_vocab, vec_format, force, strict,
                 as_json, quiet):
    """Write each language of a multilingual run: aligned vectors and its matrix."""
    from .runs import export_multi_run

    with _user_errors():
        entry = export_multi_run(run_dir, out_dir, force, _progress_factory(quiet),
                                 vectors=vectors, mapping=mapping, max_vocab=max_vocab,
                                 vec_format=vec_format)
    if not quiet and not as_json:
        click.echo(f"wrote {', '.join(entry['files'])} to {out_dir}")
    return entry


@main.command()
@click.argument("run_dir", type=RunDir())
@click.argument("vectors", type=input_file())
@click.option("-o", "--out", "out_path", required=True, type=Path(dir_okay=False),
              help="Output vectors file.")
@click.option("--side", type=click.Choice(["source", "target"]), default="source",
              show_default=True, help="Which language VECTORS are in.")
@click.option("--format", "in_format", type=click.Choice(FORMATS), default="auto",
              show_default=True, help="Format of VECTORS; auto detects it.")
@click.option("--out-format", type=click.Choice(["text", "word2vec-binary"]),
              default="text", show_default=True, help="Output format.")
@click.option("--encoding-errors", type=click.Choice(ENCODING_ERRORS), default="strict",
              show_default=True, help="What to do with words that are not valid UTF-8.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@_no_swap_check
@_strict_run
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def apply(run_dir, vectors, out_path, side, in_format, out_format, encoding_errors, force,
          allow_swapped, strict, as_json, quiet):
    """Map every vector of VECTORS (any size, e.g. the full 2M-word file) with RUN_DIR's
    normalisation and matrix, streaming a block at a time."""
    from .runs import apply_run

    with _user_errors():
        entry = apply_run(run_dir, vectors, out_path, side, out_format, in_format,
                          encoding_errors, force, progress_factory=_progress_factory(quiet),
                          allow_swapped=allow_swapped)
    warn(entry["warnings"])
    if not quiet and not as_json:
        click.echo(f"wrote {entry['words']} x {entry['dim']} to {out_path}")
    return entry


@main.command()
@click.argument("run_dir", type=RunDir())
@click.argument("words", nargs=-1, required=True)
@click.option("-k", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many target words per source word.")
@click.option("--retrieval", type=click.Choice(["nn", "csls"]), default="csls",
              show_default=True, help="Nearest neighbour by cosine, or CSLS.")
@click.option("--eval-vocab", type=click.IntRange(min=1), default=200000, show_default=True,
              help="Retrieve among the first N target words.")
@_device_option
@_moved_options
@click.option("--from", "from_lang", default=None,
              help="Multilingual runs: the language of WORDS.")
@click.option("--to", "to_lang", default=None, help="Multilingual runs: the language wanted.")
@_strict_run
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def translate(run_dir, words, k, retrieval, eval_vocab, device, src_path, tgt_path, verify,
              from_lang, to_lang, strict, as_json, quiet):
    """The K nearest target words of each source WORD. A word missing from the vocabulary is
    tried lowercased (a warning says so); a word missing both ways exits with status 1. In a multilingual run
    (fit-multi), from any language to any other: --from fr --to fi."""
    from .runs import translate_multi_run, translate_run

    with _user_errors():
        if os.path.exists(os.path.join(run_dir, "multi.npz")):
            if not from_lang or not to_lang:
                raise click.UsageError(f"{run_dir} is a multilingual run (fit-multi): give "
                                       "--from LANG and --to LANG")
            result = translate_multi_run(run_dir, list(words), from_lang, to_lang, k,
                                         retrieval, eval_vocab, device=device)
        else:
            if from_lang or to_lang:
                raise click.UsageError("--from/--to are for multilingual runs (fit-multi); "
                                       f"{run_dir} is a two-language run: drop them")
            result = translate_run(run_dir, list(words), k, retrieval, eval_vocab, src=src_path,
                                   tgt=tgt_path, verify=verify, device=device)
    notes = [f"{word!r} is not in the source vocabulary; translating {hit['as']!r}"
             for word, hit in result.items() if hit is not None and hit["as"] != word]
    warn(notes)
    if not as_json:
        for word, hit in result.items():
            shown = "(not in the source vocabulary)" if hit is None else \
                "  ".join(f"{t} {s:.3f}" for t, s in hit["translations"])
            click.echo(f"{word}\t{shown}")
    doc = {"words": result, "warnings": notes}
    missing = [w for w, h in result.items() if h is None]
    if missing:
        raise Failure(f"not in the source vocabulary, even lowercased: {', '.join(missing)}",
                      1, doc)
    return doc


@main.command()
@click.option("--data-dir", type=Path(file_okay=False), default=DEMO_DIR,
              show_default=True, help="Where the generated demo pair lives.")
@click.option("-o", "--out", "run_dir", type=Path(file_okay=False), default=None,
              help="Where to write the demo's runs (default: a new temporary directory; the "
                   "repository is never written to).")
@click.option("--json", "as_json", is_flag=True, help="Print both runs' metrics as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress; one line per run.")
def demo(data_dir, run_dir, as_json, quiet):
    """Fit and evaluate on the embedded demo pair (generated by mapalign itself)."""
    from .runs import evaluate_run, fit_run
    from .mapping import load_run
    from .synthetic import write_demo

    names = ("src.vec.gz", "tgt.vec.gz", "train.txt", "test.txt")
    paths = {n: os.path.join(data_dir, n) for n in names}
    if not all(os.path.exists(p) for p in paths.values()):
        click.echo(f"generating the demo pair in {data_dir}", err=True)
        paths = write_demo(data_dir)
    if run_dir is None:
        import tempfile

        run_dir = tempfile.mkdtemp(prefix="mapalign-demo-")
    doc = {"run_dir": os.path.abspath(run_dir), "runs": {}}
    with _user_errors():
        for method in ("multistep", "procrustes"):
            out = os.path.join(run_dir, method)
            fit_run(paths["src.vec.gz"], paths["tgt.vec.gz"], out, paths["train.txt"],
                    method=method, force=True, progress_factory=_progress_factory(True),
                    echo=_echo_factory(quiet), argv=sys.argv)
            entry = evaluate_run(out, paths["test.txt"])
            rounds = load_run(out)[1]["refine_choice"]["rounds"]
            doc["runs"][method] = dict(run_dir=os.path.abspath(out), refine_rounds=rounds,
                                       metrics=entry["metrics"])
            if as_json:
                pass
            elif not quiet:
                click.echo(f"\n== {method}, {rounds} refinement round"
                           f"{'' if rounds == 1 else 's'} (chosen on held-out seed words), "
                           f"demo pair ({out})")
                click.echo(format_table(entry["metrics"]))
            else:
                click.echo(f"{method}: CSLS P@1 {entry['metrics']['csls']['p@1']:.2f}")
    click.echo(f"runs written to {run_dir}", err=True)
    return doc


if __name__ == "__main__":  # pragma: no cover
    main()
