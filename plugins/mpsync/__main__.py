"""`python -m mpsync <command> ...`: commands for people (run from the project root with the venv).

Each command is a module with `add_arguments(parser)` and `run(args) -> int` (the exit code), imported
only when chosen. To add one, add a line to COMMANDS.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("mpsync.inspect_cmd", "parse a 1C file as the DAGs would and print a JSON summary"),
    "migrate": ("mpsync.migrate_cmd", "apply pending exchange-database migrations"),
    "preflight": ("mpsync.preflight_cmd", "refuse to start with placeholder secrets (docker compose's init)"),
}

EXIT_USAGE = 64          # 2 is taken: `inspect` exits 2 for a refused file


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit 2, which means "refused" for our commands
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m mpsync", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    modules = {}
    chosen = (argv if argv is not None else sys.argv[1:])[:1]
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if chosen == [name]:                    # import only the command asked for
            modules[name] = importlib.import_module(module)
            modules[name].add_arguments(p)
    args = parser.parse_args(argv)
    return int(modules[args.command].run(args) or 0)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:          # `... | head`: the reader went away, not an error of ours
        sys.stderr.close()
        sys.exit(0)
