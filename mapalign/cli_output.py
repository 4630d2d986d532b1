"""The command line's output contract, kept by one click ``Command`` class that every command
of ``mapalign`` is (the group's ``command_class``):

- With ``--json``, stdout is exactly one JSON document, on every exit path: the command's
  result, or ``{"error": ..., "exit_code": N}`` (beside the result where there is one) when it
  fails. Whatever else the command prints while it runs goes to stderr: stdout is redirected
  there until the document is written, so no ``click.echo`` or ``print`` can break it.
- Exit codes are :data:`EXIT_CODES`, the same for every command.
- ``-q`` silences progress and summaries, never a warning (:func:`warn`).

A command's callback returns its JSON document (a dict); it prints the human form itself
when ``--json`` is not given. It ends with a status other than 0 by raising
:class:`Failure` (or any ``click.ClickException``).
"""
from __future__ import annotations

import contextlib
import json
import sys
import warnings

import click

#: The exit status of every command, as the group's ``--help`` lists them.
EXIT_CODES = {
    0: "done",
    1: "bad input, or refused (one 'Error: ...' line on stderr says why, naming the file)",
    2: "usage: an unknown option, a missing argument, options that do not go together",
    3: "not converged: the run failed its own quality check, with --strict",
    130: "interrupted (Ctrl-C): nothing was left half-written",
}


def exit_codes_epilog() -> str:
    """:data:`EXIT_CODES` as the group's help epilog (``\\b``: click keeps the lines)."""
    return "\b\nExit status (every command):\n" + "\n".join(
        f"  {code:>3}  {what}" for code, what in EXIT_CODES.items())


class Failure(click.ClickException):
    """Ends a command with ``exit_code`` (one of :data:`EXIT_CODES`) and an ``Error:`` line;
    with ``--json``, stdout gets ``document`` with the error and the exit code added."""

    def __init__(self, message: str, exit_code: int = 1, document: dict = None):
        super().__init__(message)
        self.exit_code = exit_code
        self.document = document


def warn(messages) -> None:
    """Warnings on stderr, whatever ``-q`` says."""
    for m in messages:
        click.echo(f"warning: {m}", err=True)


def write_document(doc, stream) -> None:
    stream.write(json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n")
    stream.flush()


def error_document(e: click.ClickException, document=None) -> dict:
    return {**(document or {}), "error": e.format_message(), "exit_code": e.exit_code}


def wants_json(args) -> bool:
    return "--json" in list(args)[:list(args).index("--")] if "--" in args else "--json" in args


class Command(click.Command):
    """Keeps the output contract (see the module's docstring) for the command it runs.

    ``roles``: what the command does, from :data:`mapalign.cli_options.ROLES` (it prints,
    creates outputs, records into a run, searches, ...); each role brings its options, as
    tests/test_option_vocabulary.py checks for every command."""

    def __init__(self, *args, roles=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.roles = None if roles is None else frozenset(roles)

    def parse_args(self, ctx, args):
        as_json = wants_json(args)
        try:
            return super().parse_args(ctx, args)
        except click.ClickException as e:  # usage errors, and inputs refused while parsing
            if as_json:
                write_document(error_document(e), sys.stdout)
            raise

    def invoke(self, ctx):
        as_json = bool(ctx.params.get("as_json"))
        stdout = sys.stdout
        redirect = contextlib.redirect_stdout(sys.stderr) if as_json else \
            contextlib.nullcontext()
        raised = []  # library warnings the command did not gather itself (a cache rebuilt,
        # a run that cannot be written, a lock taken over): on stderr, and in the JSON too

        def show(message, *args, **kw):
            raised.append(str(message))
            shown(message, *args, **kw)

        notes = []  # the verdicts of the runs read: in every document, an error's too

        def gathered(doc, error=False):
            if error and "warnings" not in doc and not (notes or raised):
                return doc  # an error document stays {"error": ..., "exit_code": ...}
            own = [w for w in doc.get("warnings") or [] if w not in notes]
            doc["warnings"] = notes + own + [w for w in dict.fromkeys(raised)
                                             if w not in own and w not in notes]
            return doc

        try:
            with redirect, warnings.catch_warnings():
                shown, warnings.showwarning = warnings.showwarning, show
                notes = self._run_verdicts(ctx)
                doc = super().invoke(ctx)
                if isinstance(doc, dict) and (notes or raised or as_json):
                    gathered(doc)
        except Failure as e:
            if as_json:
                write_document(gathered(error_document(e, e.document), True), stdout)
            raise
        except click.ClickException as e:
            if as_json:
                write_document(gathered(error_document(e), True), stdout)
            raise
        except KeyboardInterrupt:
            if as_json:
                write_document({"error": "interrupted", "exit_code": 130}, stdout)
            raise
        except Exception as e:  # a bug: its traceback follows on stderr, as without --json
            if as_json:
                write_document({"error": f"internal error: {type(e).__name__}: {e}",
                                "exit_code": 1}, stdout)
            raise
        if as_json:
            write_document(doc if doc is not None else {}, stdout)
        return doc


    def _run_verdicts(self, ctx) -> list:
        """The verdict of every run the command reads (its RUN arguments), from what its fit
        recorded (:func:`mapalign.store.run_verdict`): warned about on stderr whatever
        ``-q`` says, returned for the JSON ``warnings``; with ``--strict``, a failed run is
        refused (exit 3) before any work."""
        from .store import read_verdict

        notes, failed = [], []
        for p in self.params:
            path = ctx.params.get(p.name)
            if not (isinstance(p, click.Argument) and isinstance(p.type, RunDir) and path):
                continue
            verdict = read_verdict(path)
            if verdict:
                notes += [f"{path}: {w}" for w in verdict["warnings"]]
                failed += [path] if verdict["failed"] else []
        warn(notes)
        if failed and ctx.params.get("strict"):
            raise Failure(f"{', '.join(map(str, failed))}: the run failed its own quality "
                          "check at fit (see the warnings); refused under --strict", 3,
                          {"warnings": notes})
        return notes


class Path(click.Path):
    """Every path a command takes: one missing, or of the wrong kind (a folder for a file), is
    bad input (exit 1, an ``Error:`` line naming it), not a usage error."""

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as e:
            raise click.ClickException(e.format_message().replace("\n", " ")) from None


def input_file(**kw) -> Path:
    """The type of an input file argument or option."""
    return Path(exists=True, dir_okay=False, **kw)


class RunDir(Path):
    """The type of an argument naming a run directory that a command reads."""

    def __init__(self):
        super().__init__(exists=True, file_okay=False)
