"""``upbit-ws bench``: run the benchmarks of ``benchmarks/`` and print their tables.

The benchmarks are scripts in the repository (``benchmarks/*.py``), not part of the installed
package: this command finds them in the checkout the package was installed from (an editable
install, as ``make`` does), in the current directory, or where ``--dir`` says. Installed from
a wheel, there is no checkout; the command says so in one line and exits 1.

Each benchmark runs in its own process with the arguments ``make bench`` gives it (``--quick``
gives short runs, for a first look: the figures are then noisy) and prints its markdown table
as it goes. A benchmark that fails is reported and the others still run; the exit status is 1
if any failed. Ctrl-C stops the run with exit 0.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Final

import click

import upbit_ws
from upbit_ws.cli.common import OneLineCommand

__all__ = ["BENCHMARKS", "bench", "find_benchmarks"]

#: Each benchmark: (script, arguments as in the Makefile's bench target, quick arguments).
BENCHMARKS: Final[dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]] = {
    "decode": ("decode.py", (), ("--rounds", "2", "--frames", "3000")),
    "flood": ("flood.py", ("--seconds", "8", "--parse"), ("--seconds", "2", "--parse")),
    "throughput": ("throughput.py", (), ("--seconds", "2", "--rounds", "1")),
    "change_latency": ("change_latency.py", (), ("--changes", "40")),
    "recovery": ("recovery.py", (), ("--trials", "4", "--slots", "4")),
}


def find_benchmarks(explicit: Path | None = None) -> Path | None:
    """Return the ``benchmarks`` directory of the checkout, or None when there is none.

    Looks at ``explicit`` only when given; otherwise beside ``src/`` of the installed package
    (an editable install from a checkout), then in the current directory.
    """
    if explicit is not None:
        candidates = [explicit]
    else:
        package = Path(upbit_ws.__file__).resolve().parent
        candidates = [package.parents[1] / "benchmarks", Path.cwd() / "benchmarks"]
    for candidate in candidates:
        if all((candidate / script).is_file() for script, _, _ in BENCHMARKS.values()):
            return candidate
    return None


@click.command(cls=OneLineCommand)
@click.option(
    "--only",
    "names",
    multiple=True,
    type=click.Choice(list(BENCHMARKS)),
    help="Run only this benchmark (repeat for several). Default: all of them.",
)
@click.option("--quick", is_flag=True, help="Short runs (seconds, not minutes); noisy figures.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The benchmarks directory (default: the checkout's benchmarks/).",
)
def bench(*, names: tuple[str, ...], quick: bool, directory: Path | None) -> None:
    """Run the benchmarks (decode, flood, throughput, change latency, recovery).

    \b
    Examples:
      upbit-ws bench                      # all of them, as `make bench` (several minutes)
      upbit-ws bench --only decode --quick

    Each prints a markdown table; the README's performance figures come from them. They are
    scripts in the repository, so this needs a checkout (git clone, then make).
    """
    where = find_benchmarks(directory)
    if where is None:
        looked = str(directory) if directory is not None else "the checkout or ./benchmarks"
        raise click.ClickException(
            f"no benchmarks found in {looked}: they are scripts in the upbit-ws repository, "
            "not part of the installed package; run this from a checkout or give --dir"
        )
    chosen = names or tuple(BENCHMARKS)
    failed: list[str] = []
    try:
        for name in chosen:
            script, full, short = BENCHMARKS[name]
            args = short if quick else full
            shown = " ".join(["benchmarks/" + script, *args])
            click.secho(f"\n## {name}  ({shown})\n", bold=True)
            started = time.monotonic()
            # Output goes straight to the terminal: the tables appear as each benchmark prints.
            code = subprocess.call([sys.executable, str(where / script), *args], cwd=where.parent)
            took = time.monotonic() - started
            if code != 0:
                failed.append(name)
                click.secho(f"{name} failed (exit {code}) after {took:.0f} s", fg="red", err=True)
            else:
                click.echo(f"\n({name}: {took:.0f} s)")
    except KeyboardInterrupt:
        click.echo("\nstopped", err=True)
        return
    if failed:
        raise click.ClickException(f"{len(failed)} benchmark(s) failed: {', '.join(failed)}")
