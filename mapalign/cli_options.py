"""The command line's one vocabulary of options: every option that more than one command takes
is defined here, once, so that its flags, choices, default and help are the same everywhere.

A command declares its ``roles`` (``@main.command(roles=...)``, kept by
:class:`mapalign.cli_output.Command`); each role brings options (:data:`ROLES`). A command
that reads a run (a :class:`~mapalign.cli_output.RunDir` argument) also takes ``--strict``.
tests/test_option_vocabulary.py checks all of it on every command of ``mapalign``.
"""
from __future__ import annotations

import click

from .backend import DEVICES
from .cli_output import Path, input_file
from .loading import ENCODING_ERRORS, FORMATS

# ---- roles -----------------------------------------------------------------------------
PRINTS = "prints"      # prints a result: --json (one JSON document) and -q
CREATES = "creates"    # writes new outputs where -o says; --force replaces existing ones
RECORDS = "records"    # appends to the report of the run it reads, under the run's lock
SEARCHES = "searches"  # nearest-neighbour / CSLS retrieval: where, and by which retrieval
QUERIES = "queries"    # searches for given source words (a dictionary, WORDS) among the
#                        first N target words: --eval-vocab. Not export: its dictionary
#                        induction searches both vocabularies' first --dict-vocab words.
FITS = "fits"          # learns a mapping from the user's inputs and settings: where it
#                        computes, its seed, --strict (demo fits with fixed settings)

#: The options each role requires (by long flag).
ROLES = {
    PRINTS: ("--json", "--quiet"),
    CREATES: ("--out", "--force"),
    RECORDS: (),
    SEARCHES: ("--device", "--retrieval"),
    QUERIES: ("--eval-vocab",),  # a command that queries also searches
    FITS: ("--device", "--seed", "--strict"),
}

#: Options whose meaning is the command's own, with the same flags in every command; their
#: help (and type) says what the command does with them. Every other option name has one
#: definition.
OWN = {
    "--out": "what -o names is what the command writes: a run, a folder of files, one file",
    "--dict": "a seed dictionary (fit) or a test dictionary (evaluate, ...); one file, or "
              "A-B=PATH per pair in the multilingual commands",
    "--method": "fit's supervised methods and fit-multi's multilingual ones",
    "--max-vocab": "the first N words read (fit, fit-multi) or written (export, export-multi)",
}

# ---- printing --------------------------------------------------------------------------
json_option = click.option(
    "--json", "as_json", is_flag=True,
    help="Print the result as one JSON document on stdout, warnings and errors included; "
         "everything else goes to stderr.")
quiet_option = click.option(
    "-q", "--quiet", is_flag=True,
    help="No progress or summary; warnings are still printed.")

# ---- writing ---------------------------------------------------------------------------
force_option = click.option(
    "--force", is_flag=True,
    help="Replace what -o names if it exists (a run, a file, the files of the same names), "
         "or write a run into a folder holding other files; without it they are refused.")


def output_option(dest: str, help: str, required: bool = True, **path):
    """``-o/--out``: where the command writes (``help`` says what), a :class:`Path`."""
    return click.option("-o", "--out", dest, required=required,
                        type=Path(**path), help=help)


# ---- a run's quality -------------------------------------------------------------------
strict_option = click.option(
    "--strict", is_flag=True,
    help="Exit with status 3 on a run that failed its own quality check (an unsupervised map "
         "that did not converge, a semi-supervised held-out check that failed, a "
         "dictionary-free check that found no alignment): a fit writes "
         "it, then exits 3; a command that reads it refuses it before any work. Without "
         "--strict such a run is used, with a warning.")
no_swap_check_option = click.option(
    "--no-swap-check", "allow_swapped", is_flag=True,
    help="Go on with a dictionary (or vectors file) that does not match the run: one that "
         "fits the languages far better swapped, or of which under 5% is in the vocabularies "
         "(by default an error: swapped languages, or a file of other languages?).")

# ---- searching -------------------------------------------------------------------------
#: What a command that retrieves words uses when --retrieval is not given; commands that
#: measure precision (evaluate, evaluate-multi, report, demo) measure both.
DEFAULT_RETRIEVAL = "csls"


def retrieval_methods(retrieval) -> tuple:
    """The retrievals a measuring command measures: the one given, else both."""
    return (retrieval,) if retrieval else ("nn", "csls")


device_option = click.option(
    "--device", type=click.Choice(DEVICES), default=None,
    help="Where to compute: cpu, gpu (CuPy) or auto (gpu when CuPy sees one). Default: cpu "
         "for a fit; where the run was fitted for a command that reads one.")
retrieval_option = click.option(
    "--retrieval", type=click.Choice(["nn", "csls"]), default=None,
    help="nn (nearest neighbour by cosine) or csls (cross-domain similarity local scaling). "
         "Default: commands that measure precision (evaluate, evaluate-multi, report, demo) "
         f"measure both; the others retrieve by {DEFAULT_RETRIEVAL}.")
eval_vocab_option = click.option(
    "--eval-vocab", type=click.IntRange(min=1), default=200000, show_default=True,
    help="Retrieve among the first N target words.")

#: -k's default by command: how many words translate lists, the K of compare's P@K.
K_DEFAULTS = {"translate": 5, "compare": 1}


def _k_default(ctx, param, value):
    return K_DEFAULTS[ctx.command.name] if value is None else value


k_option = click.option(
    "-k", "k", type=click.IntRange(min=1), default=None, callback=_k_default,
    help="How many nearest target words count: translate lists K per word (default "
         f"{K_DEFAULTS['translate']}); compare scores P@K, a word being right when a gold "
         f"translation is among its K best (default {K_DEFAULTS['compare']}).")


def moved_options(f):
    """--src, --tgt, --verify: the inputs of a run that reads them again."""
    for opt in reversed([
            click.option("--src", "src_path", type=input_file(),
                         help="The source vectors, if they moved since the fit (checked "
                              "against the recorded checksum)."),
            click.option("--tgt", "tgt_path", type=input_file(),
                         help="The target vectors, if they moved since the fit."),
            click.option("--verify", is_flag=True,
                         help="Check the inputs by their whole checksum (default: size and "
                              "modification time, and only when they are read).")]):
        f = opt(f)
    return f


# ---- reading vectors -------------------------------------------------------------------
format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
    help="Format of the input vectors; auto detects it from the first bytes.")
encoding_errors_option = click.option(
    "--encoding-errors", type=click.Choice(ENCODING_ERRORS), default="strict",
    show_default=True, help="What to do with words that are not valid UTF-8.")
read_vocab_option = click.option(
    "--max-vocab", type=click.IntRange(min=1), default=200000, show_default=True,
    help="Read only the first N words of each file.")

# ---- writing vectors -------------------------------------------------------------------
out_format_option = click.option(
    "--out-format", "vec_format", type=click.Choice(["text", "word2vec-binary"]),
    default="text", show_default=True,
    help="Aligned vectors as text .vec, or word2vec binary .bin (gensim's "
         "load_word2vec_format(..., binary=True) reads it).")
vectors_option = click.option(
    "--vectors/--no-vectors", default=True, show_default=True,
    help="Write the aligned vectors: src.vec and tgt.vec (export), LANG.vec per language "
         "(export-multi); .bin with --out-format word2vec-binary.")
mapping_option = click.option(
    "--mapping/--no-mapping", default=True, show_default=True,
    help="Write the matrices into the shared space: W_src.npy and W_tgt.npy (export), "
         "W_LANG.npy per language (export-multi).")
export_vocab_option = click.option(
    "--max-vocab", type=click.IntRange(min=1), default=None,
    help="Export only the first N words of each side (of each language, export-multi).")

# ---- fitting ---------------------------------------------------------------------------
unsupervised_option = click.option(
    "--unsupervised", is_flag=True,
    help="Learn the mapping with no dictionary (fit-multi: each language mapped to the hub "
         "by the unsupervised aligner, then the joint step induces dictionaries between all "
         "pairs).")
seed_option = click.option(
    "--seed", type=int, default=0, show_default=True,
    help="Seed of every random choice; recorded in the report.")
restarts_option = click.option(
    "--restarts", type=click.IntRange(min=1), default=3, show_default=True,
    help="Unsupervised starts, per language in fit-multi (seeds SEED, SEED+1, ...; fit's "
         "--init similarity also cycles through --similarity-vocab); the best mean "
         "translation cosine wins.")
null_draws_option = click.option(
    "--null-draws", type=click.IntRange(min=0), default=2, show_default=True,
    help="Random starts put through the same procedure (per language in fit-multi): the "
         "level a run must beat to count as converged (0: no test).")


def _chain(ctx, param, value):
    from .normalize import parse_chain

    try:
        parse_chain(value)
    except ValueError as e:
        raise click.BadParameter(str(e))
    return value


normalize_option = click.option(
    "--normalize", default="unit,center,unit", show_default=True, callback=_chain,
    help="Normalisation chain of unit, center.")

# ---- where independent tasks run -------------------------------------------------------
_SCHEDULER_HELP = ("Where independent tasks (per-language maps, induced dictionaries, "
                   "per-pair evaluations) run: in-process, 'local' (a Dask LocalCluster of "
                   "--workers processes) or a Dask scheduler's address; needs "
                   "mapalign[dask] unless in-process. Results do not depend on it.")
scheduler_option = click.option("--scheduler", default="in-process", show_default=True,
                                help=_SCHEDULER_HELP)
workers_option = click.option("--workers", type=click.IntRange(min=1), default=None,
                              help="Worker processes of --scheduler local (default 2).")
