"""Entry point of the ``upbit-ws`` command."""

from __future__ import annotations

import click

from upbit_ws import __version__
from upbit_ws.cli.bench import bench
from upbit_ws.cli.demo import demo
from upbit_ws.cli.relay import relay
from upbit_ws.cli.simulate import simulate
from upbit_ws.cli.status import status
from upbit_ws.cli.watch import watch


@click.group()
@click.version_option(__version__, prog_name="upbit-ws")
def cli() -> None:
    """Keep Upbit WebSocket connections alive and subscriptions merged."""


cli.add_command(simulate)
cli.add_command(demo)
cli.add_command(relay)
cli.add_command(status)
cli.add_command(watch)
cli.add_command(bench)


def main() -> None:
    """Run the ``upbit-ws`` command line."""
    cli()
