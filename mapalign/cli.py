"""The ``mapalign`` command: a thin click layer over :mod:`mapalign.runs`."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import warnings

import click

from .cli_options import (CREATES, DEFAULT_RETRIEVAL, FITS, PRINTS, QUERIES, RECORDS,
                          SEARCHES, device_option, encoding_errors_option, eval_vocab_option,
                          export_vocab_option, force_option, format_option, json_option,
                          k_option, mapping_option, moved_options, no_swap_check_option,
                          normalize_option, null_draws_option, out_format_option,
                          output_option, quiet_option, read_vocab_option, restarts_option,
                          retrieval_methods, retrieval_option, scheduler_option, seed_option,
                          strict_option, unsupervised_option, vectors_option, workers_option)
from .cli_output import (Command, Failure, Path, RunDir, error_document, wants_json,
                         exit_codes_epilog, input_file, warn, write_document)
from .errors import MissingExtraError, use_cli_flags
from .loading import FormatError
from .mapping import METHODS
from .store import run_verdict
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


def format_quality(q: dict) -> str:
    """The dictionary-free quality of one run (or one pair), in a few lines."""
    lo, hi = q["criterion_ci95"]
    ci = f", 95% CI {lo:.4f}-{hi:.4f}" if lo is not None else ""
    h = q.get("hubness_detail") or {}
    return "\n".join([
        f"criterion ({q['measure']}) {q['criterion']:.4f}{ci}, over the {q['words']} most "
        f"frequent source words and {q['targets']} targets",
        f"reference (random orthogonal maps) {q['reference']:.4f}: the criterion is "
        f"{abs(q['above_reference']):.4f} {'above' if q['above_reference'] >= 0 else 'below'} "
        f"it ({q['scaled']:.2f} on a scale from random maps, 0, to full agreement, 1)",
        f"round trip {q['round_trip']:.3f} (share of the words whose translation translates "
        "back to them)",
        f"hubness {q['hubness']:.3f} (share of the queries taken by the 1% most retrieved "
        f"targets; skew {h.get('skew', float('nan')):.2f})",
        f"verdict: {q['verdict']}"])


def _need_dict(*names):
    """Options of this command that act only on a test dictionary, given without --dict: a
    usage error naming them."""
    ctx = click.get_current_context()
    given = [max(p.opts, key=len) for p in ctx.command.params if p.name in names and
             ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]
    if given:
        raise click.UsageError(f"{', '.join(given)}: only with --dict (without a dictionary "
                               "the command measures the run's dictionary-free quality)")


def _signed(v: float, places: int) -> str:
    """``v`` with a sign and ``places`` decimals; a value that would round to zero without
    being zero is shown in scientific notation (an interval's end of -0.00004 is not 0)."""
    text = f"{v:+.{places}f}"
    return f"{v:+.1e}" if v != 0 and float(text) == 0 else text


class _Group(click.Group):
    """Every command is a :class:`~mapalign.cli_output.Command` (the output contract).
    Ctrl-C ends a command with status 130 (128 + SIGINT), as shells expect, instead of
    click's 'Aborted!' and status 1. Outputs are written atomically, so nothing is left
    half-written."""

    command_class = Command

    def parse_args(self, ctx, args):
        as_json = wants_json(args)  # before parsing, which consumes ``args``
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:  # --json before the command name: still one document
            if isinstance(e, click.NoSuchOption) and \
                    e.option_name in ("--json", "-q", "--quiet", "--strict", "--force"):
                e = click.UsageError(f"{e.option_name} is a command's option: put it after "
                                     f"the command's name (mapalign COMMAND {e.option_name} "
                                     "...)", ctx)
            if as_json:
                write_document(error_document(e), sys.stdout)
            raise e from None

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as e:  # no such command: still one JSON document
            if wants_json(args):
                write_document(error_document(e), sys.stdout)
            raise

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


@main.command(roles=(PRINTS, CREATES, FITS))
@click.argument("src", type=input_file())
@click.argument("tgt", type=input_file())
@click.option("--dict", "dictionary", type=input_file(),
              help="Seed dictionary, 'source target' per line (MUSE format).")
@unsupervised_option
@click.option("--semi-supervised", is_flag=True,
              help="With --dict: self-learning started from its pairs (for 25-500 pairs), "
                   "seed pairs kept in every round, instead of fitting them alone.")
@output_option("run_dir", "Run directory to write (RUN).")
@click.option("--method", type=click.Choice(METHODS), default="multistep", show_default=True,
              help="Supervised mapping method (see README: chosen by measurement on es-en, "
                   "zh-en and generated pairs).")
@click.option("--refine", default="auto", show_default=True, callback=_rounds,
              help="Rounds of re-solving on mutual CSLS nearest neighbours: a number, or "
                   "'auto' (supervised: chosen on the least frequent 20% of the seed words; "
                   "unsupervised: 5).")
@normalize_option
@read_vocab_option
@format_option
@encoding_errors_option
@device_option
@seed_option
@click.option("--init", type=click.Choice(INITS), default="similarity", show_default=True,
              help="Unsupervised initialisation.")
@restarts_option
@click.option("--similarity-vocab", default="1000,2000,4000", show_default=True,
              help="Words the similarity initialisation describes, one value per restart "
                   "(cycled).")
@null_draws_option
@strict_option
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
@force_option
@no_swap_check_option
@json_option
@quiet_option
def fit(src, tgt, dictionary, unsupervised, semi_supervised, run_dir, method, refine, normalize,
        max_vocab, fmt,
        encoding_errors, device, seed, init, restarts, similarity_vocab, null_draws, strict,
        adv_schedule, adv_epochs, adv_epoch_size, adv_hidden, n_jobs, force, allow_swapped,
        as_json, quiet):
    """Learn a mapping of SRC's vectors onto TGT's and write the run directory RUN (-o)."""
    from .runs import fit_run

    device = device or "cpu"
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
        line = (f"convergence test: mean translation cosine {unsup['criterion']:.4f} vs "
                f"{level}: {verdict} (best seed {unsup['best_seed']})")
        if unsup["converged"] is False:
            warn([line, "the mapping is probably wrong; try --restarts, another --init, "
                        "or a seed dictionary"])
        elif not quiet:
            click.echo(line, err=True)
    report, failed, said = _with_verdict(report)
    warn([w for w in said if "DID NOT CONVERGE" not in w])  # that one was said above
    if strict and failed:
        raise Failure(f"{run_dir}: the run failed its own quality check (see the warnings): "
                      "written, but refused under --strict", 3, report)
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


def _with_verdict(report: dict):
    """A fit's JSON document: its report, whose ``warnings`` begin with what the run's verdict
    says (the same words every later command on the run shows); and whether the run failed
    its own check, and the verdict's own warnings (for the fit to show on stderr)."""
    verdict = run_verdict(report)
    said = [w for w in verdict["warnings"] if not w.startswith("at fit: ")]
    return ({**report, "warnings": said + list(report.get("warnings") or [])},
            verdict["failed"], said)


@main.command(roles=(PRINTS, RECORDS, SEARCHES, QUERIES))
@click.argument("run_dir", type=RunDir())
@click.option("--dict", "dictionary", type=input_file(),
              help="Test dictionary, 'source target' per line. Without it: the run's quality "
                   "measured with no dictionary (criterion against random maps, round trip, "
                   "hubness, verdict), recorded in its report.")
@eval_vocab_option
@retrieval_option
@device_option
@moved_options
@no_swap_check_option
@strict_option
@json_option
@quiet_option
def evaluate(run_dir, dictionary, eval_vocab, retrieval, device, src_path, tgt_path, verify,
             allow_swapped, strict, as_json, quiet):
    """Bilingual dictionary induction P@1/5/10 of RUN_DIR on a test dictionary; without
    --dict, its quality measured with no dictionary."""
    from .runs import evaluate_run

    if dictionary is None:
        from .quality import evaluate_unsupervised_run

        _need_dict("eval_vocab", "retrieval", "allow_swapped")
        with _user_errors():
            result = evaluate_unsupervised_run(run_dir, src=src_path, tgt=tgt_path,
                                               verify=verify, device=device)
        if not as_json:
            click.echo(format_quality(result))
        return result
    with _user_errors():
        entry = evaluate_run(run_dir, dictionary, eval_vocab, retrieval_methods(retrieval), device,
                             progress_factory=_progress_factory(quiet), src=src_path,
                             tgt=tgt_path, verify=verify, allow_swapped=allow_swapped)
    warn(entry["metrics"]["warnings"])
    if not as_json:
        click.echo(format_table(entry["metrics"]))
    return entry["metrics"]


@main.command(roles=(PRINTS, CREATES, SEARCHES, QUERIES))
@click.argument("run_dir", type=RunDir())
@click.option("--dict", "dictionary", type=input_file(),
              help="Test dictionary. Without it: the dictionary-free page (criterion against "
                   "random maps, round trip, hubness).")
@output_option("out_path", "The HTML file to write.", dir_okay=False)
@eval_vocab_option
@retrieval_option
@force_option
@device_option
@moved_options
@no_swap_check_option
@strict_option
@json_option
@quiet_option
def report(run_dir, dictionary, out_path, eval_vocab, retrieval, force, device, src_path,
           tgt_path, verify, allow_swapped, strict, as_json, quiet):
    """A self-contained HTML page about RUN_DIR: precision by frequency band, refinement
    history, similarity of right and wrong translations, hubness, settings, timings. Without
    --dict: the criterion against random maps, round trip and hubness."""
    from .report import build_blind_report, build_report

    if dictionary is None:
        _need_dict("eval_vocab", "retrieval", "allow_swapped")
    with _user_errors():
        if dictionary is None:
            numbers = build_blind_report(run_dir, out_path, force, src_path, tgt_path, verify,
                                         device=device)
        else:
            numbers = build_report(run_dir, dictionary, out_path, eval_vocab, force, src_path,
                                   tgt_path, verify, device=device, allow_swapped=allow_swapped,
                                   methods=retrieval_methods(retrieval))
    warn(numbers.get("warnings", []))
    if not quiet:
        click.echo(f"wrote {out_path}", err=True)
    return numbers


@main.command(roles=(PRINTS, SEARCHES, QUERIES))
@click.argument("run_a", type=RunDir())
@click.argument("run_b", type=RunDir())
@click.option("--dict", "dictionary", type=input_file(),
              help="Test dictionary both runs are scored on. Without it: their dictionary-free "
                   "criteria on the frequent source words both can query.")
@retrieval_option
@k_option
@eval_vocab_option
@device_option
@moved_options
@no_swap_check_option
@strict_option
@json_option
@quiet_option
def compare(run_a, run_b, dictionary, retrieval, k, eval_vocab, device, src_path, tgt_path,
            verify, allow_swapped, strict, as_json, quiet):
    """Is RUN_A better than RUN_B? P@K on the same source words, the difference with a 95%
    paired bootstrap interval, and the exact McNemar test. Without --dict: the difference of
    their dictionary-free criteria, with a paired bootstrap interval, and the run it
    prefers."""
    from .runs import compare_runs

    if dictionary is None:
        from .quality import compare_unsupervised_runs

        _need_dict("retrieval", "k", "eval_vocab", "allow_swapped")
        with _user_errors():
            out = compare_unsupervised_runs(run_a, run_b, src=src_path, tgt=tgt_path,
                                            verify=verify, device=device)
        if not as_json:
            lo, hi = out["difference_ci95"]
            which = {"a": f"prefers A ({run_a})", "b": f"prefers B ({run_b})"}.get(
                out["prefers"], "no preference: the interval holds 0")
            click.echo(f"{out['measure']} on the {out['words']} frequent source words both "
                       f"runs can query: A {out['a']:.4f}, B {out['b']:.4f} (references "
                       f"{out['reference_a']:.4f}, {out['reference_b']:.4f})\n"
                       f"difference A - B {_signed(out['difference'], 4)} (95% CI "
                       f"{_signed(lo, 4)} to {_signed(hi, 4)}): {which}\nA: "
                       f"{out['verdict_a']}\nB: {out['verdict_b']}")
        return out
    with _user_errors():
        out = compare_runs(run_a, run_b, dictionary, retrieval or DEFAULT_RETRIEVAL, f"p@{k}",
                           eval_vocab,
                           progress_factory=_progress_factory(quiet), device=device,
                           src=src_path, tgt=tgt_path, verify=verify,
                           allow_swapped=allow_swapped)
    warn(out["warnings"])
    if as_json:
        return out
    lo, hi = out["difference_ci95"]
    click.echo(f"{out['metric']} on {out['words']} source words: A {out['a']:.2f}, "
               f"B {out['b']:.2f}\ndifference A - B {_signed(out['difference'], 2)} points "
               f"(95% CI {_signed(lo, 2)} to {_signed(hi, 2)}); only A right on "
               f"{out['only_a_right']}, "
               f"only B right on {out['only_b_right']}; exact McNemar p = "
               f"{out['mcnemar_exact_p']:.4f}")
    return out


@main.command(roles=(PRINTS, CREATES, RECORDS, SEARCHES))
@click.argument("run_dir", type=RunDir())
@output_option("out_dir", "Folder to write the files into (created if missing).")
@vectors_option
@mapping_option
@click.option("--dictionary/--no-dictionary", default=True, show_default=True,
              help="Induced dictionary.txt: 'source target score' lines.")
@click.option("--dict-vocab", type=click.IntRange(min=1), default=15000, show_default=True,
              help="Induce the dictionary among the first N words of each side.")
@click.option("--dict-mode", type=click.Choice(["mutual", "forward"]), default="mutual",
              show_default=True, help="Mutual best matches (by --retrieval), or every source "
              "word's best.")
@retrieval_option
@device_option
@export_vocab_option
@out_format_option
@force_option
@moved_options
@strict_option
@json_option
@quiet_option
def export(run_dir, out_dir, vectors, mapping, dictionary, dict_vocab, dict_mode, retrieval,
           device, max_vocab, vec_format, force, src_path, tgt_path, verify, strict, as_json,
           quiet):
    """Write RUN_DIR's aligned vectors, mapping matrices and induced dictionary."""
    from .runs import export_run

    with _user_errors():
        entry = export_run(run_dir, out_dir, vectors, mapping, dictionary, dict_vocab,
                           dict_mode, max_vocab, force, progress_factory=_progress_factory(quiet),
                           src=src_path, tgt=tgt_path, verify=verify, vec_format=vec_format,
                           retrieval=retrieval or DEFAULT_RETRIEVAL, device=device)
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


@main.command("fit-multi", roles=(PRINTS, CREATES, FITS))
@click.argument("spaces", nargs=-1, required=True)
@click.option("--dict", "dictionaries", multiple=True,
              help="A seed dictionary as A-B=PATH ('a-word b-word' lines); repeat for each.")
@unsupervised_option
@click.option("--hub", default="en", show_default=True,
              help="The language whose space is the shared one.")
@click.option("--method", type=click.Choice(["joint", "gpa", "hub"]), default="joint",
              show_default=True, help="hub: each language to the hub alone; gpa: all maps "
              "solved together on every dictionary; joint: gpa, then rounds of dictionaries "
              "induced between the languages without one.")
@output_option("run_dir", "Run directory to write.")
@normalize_option
@read_vocab_option
@device_option
@seed_option
@restarts_option
@null_draws_option
@strict_option
@scheduler_option
@workers_option
@force_option
@no_swap_check_option
@json_option
@quiet_option
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
                               normalize=normalize, max_vocab=max_vocab,
                               device=device or "cpu", unsupervised=unsupervised, seed=seed,
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
    report, _, said = _with_verdict(report)
    warn([w for w in said if "DID NOT CONVERGE" not in w])  # that one is said below
    if failed:
        warn([f"the unsupervised map of {', '.join(failed)} to {hub} DID NOT CONVERGE "
              "(criterion within the margin of random starts); those maps are probably "
              "wrong: try --restarts or a seed dictionary"])
        if strict:
            raise Failure(f"{run_dir}: the unsupervised map of {', '.join(failed)} did not "
                          "converge: written, but refused under --strict", 3, report)
    if not quiet and not as_json:
        click.echo(f"fit {', '.join(report['multi']['languages'])} into {hub}'s space in "
                   f"{report['timings_s']['fit']:.1f}s; wrote {run_dir}")
    return report


@main.command("evaluate-multi", roles=(PRINTS, RECORDS, SEARCHES, QUERIES))
@click.argument("run_dir", type=RunDir())
@click.option("--dict", "dictionaries", multiple=True,
              help="A test dictionary as A-B=PATH; repeat for each directed pair. Without "
                   "any: every directed pair's quality measured with no dictionary.")
@eval_vocab_option
@retrieval_option
@device_option
@scheduler_option
@workers_option
@no_swap_check_option
@strict_option
@json_option
@quiet_option
def evaluate_multi(run_dir, dictionaries, eval_vocab, retrieval, device, scheduler, workers,
                   allow_swapped, strict, as_json, quiet):
    """P@1/5/10 of every directed pair with a test dictionary, NN and CSLS, beside the figure
    of the hub-only maps; without --dict, every directed pair's dictionary-free quality."""
    from .runs import evaluate_multi_run

    if not dictionaries:
        from .quality import evaluate_unsupervised_multi_run

        _need_dict("eval_vocab", "retrieval", "scheduler", "workers", "allow_swapped")
        with _user_errors():
            out = evaluate_unsupervised_multi_run(run_dir, device=device)
        if not as_json:
            for pair, q in out.items():
                click.echo(f"== {pair}\n{format_quality(q)}")
        return {"pairs": out}
    with _user_errors():
        out = evaluate_multi_run(run_dir, _lang_pairs(dictionaries, "A-B"), eval_vocab,
                                 scheduler=scheduler, workers=workers,
                                 allow_swapped=allow_swapped,
                                 methods=retrieval_methods(retrieval), device=device)
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
                                                 for m in ("nn", "csls") if m in h))
    return doc


@main.command("export-multi", roles=(PRINTS, CREATES))
@click.argument("run_dir", type=RunDir())
@output_option("out_dir", "Folder for one LANG.vec (or .bin) and W_LANG.npy per language.")
@vectors_option
@mapping_option
@export_vocab_option
@out_format_option
@force_option
@strict_option
@json_option
@quiet_option
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


@main.command(roles=(PRINTS, CREATES))
@click.argument("run_dir", type=RunDir())
@click.argument("vectors", type=input_file())
@output_option("out_path", "Output vectors file.", dir_okay=False)
@click.option("--side", type=click.Choice(["source", "target"]), default="source",
              show_default=True, help="Which language VECTORS are in.")
@format_option
@out_format_option
@encoding_errors_option
@force_option
@no_swap_check_option
@strict_option
@json_option
@quiet_option
def apply(run_dir, vectors, out_path, side, fmt, vec_format, encoding_errors, force,
          allow_swapped, strict, as_json, quiet):
    """Map every vector of VECTORS (any size, e.g. the full 2M-word file) with RUN_DIR's
    normalisation and matrix, streaming a block at a time."""
    from .runs import apply_run

    with _user_errors():
        entry = apply_run(run_dir, vectors, out_path, side, vec_format, fmt,
                          encoding_errors, force, progress_factory=_progress_factory(quiet),
                          allow_swapped=allow_swapped)
    warn(entry["warnings"])
    if not quiet and not as_json:
        click.echo(f"wrote {entry['words']} x {entry['dim']} to {out_path}")
    return entry


@main.command(roles=(PRINTS, SEARCHES, QUERIES))
@click.argument("run_dir", type=RunDir())
@click.argument("words", nargs=-1, required=True)
@k_option
@retrieval_option
@eval_vocab_option
@device_option
@moved_options
@click.option("--from", "from_lang", default=None,
              help="Multilingual runs: the language of WORDS.")
@click.option("--to", "to_lang", default=None, help="Multilingual runs: the language wanted.")
@strict_option
@json_option
@quiet_option
def translate(run_dir, words, k, retrieval, eval_vocab, device, src_path, tgt_path, verify,
              from_lang, to_lang, strict, as_json, quiet):
    """The K nearest target words of each source WORD. A word missing from the vocabulary is
    tried lowercased (a warning says so); a word missing both ways exits with status 1. In a
    multilingual run (fit-multi), from any language to any other: --from fr --to fi."""
    from .runs import translate_multi_run, translate_run

    retrieval = retrieval or DEFAULT_RETRIEVAL
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


@main.command(roles=(PRINTS, CREATES, SEARCHES, QUERIES))
@click.option("--data-dir", type=Path(file_okay=False), default=DEMO_DIR,
              show_default=True, help="Where the generated demo pair lives.")
@output_option("run_dir", "Where to write the demo's runs (default: a new temporary "
               "directory; the repository is never written to).", required=False,
               file_okay=False)
@retrieval_option
@eval_vocab_option
@device_option
@force_option
@json_option
@quiet_option
def demo(data_dir, run_dir, retrieval, eval_vocab, device, force, as_json, quiet):
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
                    method=method, force=force, progress_factory=_progress_factory(True),
                    echo=_echo_factory(quiet), argv=sys.argv, device=device or "cpu")
            entry = evaluate_run(out, paths["test.txt"], eval_vocab,
                                 retrieval_methods(retrieval), device)
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
                shown = retrieval or "csls"
                click.echo(f"{method}: {shown.upper()} P@1 "
                           f"{entry['metrics'][shown]['p@1']:.2f}")
    click.echo(f"runs written to {run_dir}", err=True)
    return doc


if __name__ == "__main__":  # pragma: no cover
    main()
