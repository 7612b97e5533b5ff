"""The ``autopot`` command line: a thin click root; each command group lives in
:mod:`autopot.commands` and is imported only when used, so ``autopot --help`` and task
start-up stay fast.
"""

from __future__ import annotations

import importlib
import sys

import click

from autopot import __version__
from autopot.errors import AutopotError

#: command name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "runs": "autopot.commands.store_cmds:runs",
    "show": "autopot.commands.store_cmds:show",
    "db": "autopot.commands.store_cmds:db",
    "orchestrator": "autopot.commands.orchestrator_cmds:orchestrator",
    "archive": "autopot.commands.results_cmds:archive",
    "export": "autopot.commands.results_cmds:export",
    "report": "autopot.commands.results_cmds:report",
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command is invoked or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name, quiet=True) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    @staticmethod
    def _load(name: str, quiet: bool = False) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            if quiet:
                return None
            raise


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="autopot")
def cli() -> None:
    """Automatic active learning of Moment Tensor Potentials, every step recorded."""


def main() -> None:
    """Entry point: user errors print as one line on stderr and exit 2."""
    try:
        code = cli.main(standalone_mode=False)  # returns a click Exit's code in this mode
        if isinstance(code, int) and code:
            sys.exit(code)
    except AutopotError as exc:
        click.echo(f"autopot: error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("autopot: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
