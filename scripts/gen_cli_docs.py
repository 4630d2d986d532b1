#!/usr/bin/env python
"""docs/cli.md, generated from the click commands: ``python scripts/gen_cli_docs.py`` rewrites
it, ``python scripts/gen_cli_docs.py --check`` exits 1 when it is stale (tests/test_docs.py does the
same). Every command's usage, arguments and options (choices, defaults, help) come from the
commands themselves, so the reference cannot drift from the code."""
from __future__ import annotations

import os
import sys

import click

HEADER = """# Command reference

Generated from the click commands by `python scripts/gen_cli_docs.py` (do not edit: a test fails
when this file differs from what the commands say). The README teaches; this page lists.
"""

_EXIT_NAMES = ("EXIT_CODES", "EXIT_STATUS")


def _default(param) -> str:
    if param.is_flag and not getattr(param, "secondary_opts", None):
        return ""
    default = param.default
    if (callable(default) or default is None or default == () or default == []
            or type(default).__name__ == "Sentinel"):  # click 8.3's UNSET
        return ""
    if isinstance(default, bool):
        name = param.opts[0] if default else (param.secondary_opts or param.opts)[0]
        return f"`{name}`"
    if param.name == "data_dir":  # a path of this checkout: not the same on another machine
        return "the repository's `data/demo`"
    return f"`{default}`"


def _kind(param) -> str:
    t = param.type
    if isinstance(t, click.Choice):
        return " \\| ".join(f"`{c}`" for c in t.choices)
    if param.is_flag if isinstance(param, click.Option) else False:
        return "flag"
    if isinstance(t, click.IntRange):
        lo = "" if t.min is None else f" ≥ {t.min}"
        return f"integer{lo}"
    return {"integer": "integer", "text": "text", "path": "path",
            "directory": "folder", "file": "file"}.get(t.name, t.name)


def _cell(text: str) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def command_doc(name: str, cmd: click.Command, parent: click.Context) -> str:
    ctx = click.Context(cmd, info_name=name, parent=parent)
    lines = [f"## `mapalign {name}`", "", "```text", f"mapalign {name} "
             + " ".join(cmd.collect_usage_pieces(ctx)), "```", "",
             _cell(cmd.help or ""), ""]
    args = [p for p in cmd.params if isinstance(p, click.Argument)]
    if args:
        lines.append("Arguments: " + ", ".join(
            f"`{p.human_readable_name}` ({_kind(p)}{', repeatable' if p.nargs == -1 else ''}"
            f"{'' if p.required else ', optional'})" for p in args) + ".")
        lines.append("")
    opts = [p for p in cmd.params if isinstance(p, click.Option) and not p.hidden]
    if opts:
        lines += ["| option | takes | default | what it does |", "|---|---|---|---|"]
        for p in opts:
            names = ", ".join(f"`{o}`" for o in p.opts + p.secondary_opts)
            extra = " (required)" if p.required else ""
            extra += " (repeatable)" if p.multiple else ""
            lines.append(f"| {names} | {_kind(p)} | {_default(p)} | {_cell(p.help)}{extra} |")
        lines.append("")
    return "\n".join(lines)


def generate() -> str:
    from mapalign import cli

    main = cli.main
    root = click.Context(main, info_name="mapalign")
    parts = [HEADER]
    exits = next((getattr(cli, n) for n in _EXIT_NAMES if hasattr(cli, n)), None)
    if exits:
        parts.append("## Exit status\n\n| status | meaning |\n|---|---|\n" + "".join(
            f"| {code} | {_cell(str(what))} |\n" for code, what in dict(exits).items()))
    parts.append("## Commands\n\n" + "".join(
        f"* [`{n}`](#mapalign-{n}): {_cell(main.commands[n].get_short_help_str(90))}\n"
        for n in main.list_commands(root)))
    for name in main.list_commands(root):
        parts.append(command_doc(name, main.commands[name], root))
    return "\n".join(parts).rstrip() + "\n"


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH = os.path.join(ROOT, "docs", "cli.md")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = generate()
    if "--check" in argv:
        with open(PATH, encoding="utf-8") as f:
            if f.read() != text:
                print(f"{PATH} is stale: run python scripts/gen_cli_docs.py", file=sys.stderr)
                return 1
        return 0
    tmp = PATH + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, PATH)
    print(f"wrote {PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, ROOT)  # this checkout's mapalign
    sys.exit(main())
