"""Save a screenshot of the ``upbit-ws demo`` dashboard as SVG (for ``docs/dashboard.png``).

Runs the embedded simulator (with market history, so the chart has candles), a manager with
both connections, and the dashboard headless under Textual's pilot; waits until every panel
shows live data and Upbit's LIST_SUBSCRIPTIONS answer, sorts the coin list by 24 h value,
selects a coin (scenario 2), then writes the SVG. Convert it to PNG with any SVG renderer,
e.g. Debian's ``librsvg2-bin``::

    .venv/bin/python tools/dashboard_screenshot.py --out /tmp/dashboard.svg
    rsvg-convert /tmp/dashboard.svg -o docs/dashboard.png

librsvg draws the no-break spaces Textual pads right-aligned cells with narrower than a cell,
so right-aligned numbers drift left; the SVG written here has each text run's leading padding
turned into an x offset instead (the same picture in any renderer).

The PNG is a committed artifact; neither tool is a dependency of the package or its tests.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path

from upbit_ws import Credentials, WebSocketManager
from upbit_ws.cli.dashboard.app import DashboardApp
from upbit_ws.simulator import Simulator


async def shoot(out: Path, *, coin: str, width: int, height: int, history: int) -> None:
    """Run the dashboard headless until it is full, select ``coin`` and save the SVG."""
    async with Simulator(port=0, history_seconds=history * 60.0) as sim:
        credentials = Credentials(*sim.credentials)
        async with WebSocketManager(base_url=sim.url, credentials=credentials) as ws:
            app = DashboardApp(ws, sim=sim, coin="KRW-BTC", history=history)
            async with app.run_test(size=(width, height)) as pilot:

                async def until(done: str) -> None:
                    async with asyncio.timeout(60):
                        while done not in app.shown.get("subs", "") or not app.model.bars:
                            await pilot.pause(0.1)

                await until("upbit  ticker")
                await pilot.press("s")  # sort by 24 h value: the big markets on top
                table = app.query_one("#coins")
                assert hasattr(table, "move_cursor") and hasattr(table, "get_row_index")
                table.focus()
                table.move_cursor(row=table.get_row_index(coin), animate=False)
                await pilot.press("enter")
                await until(f"upbit  orderbook {coin}")
                # Let the chart fill with this coin's history and a few live updates.
                await pilot.pause(3.0)
                app.save_screenshot(filename=out.name, path=str(out.parent))


_RUN = re.compile(
    r'(<text [^>]*?x=")([0-9.]+)(" [^>]*?textLength=")([0-9.]+)("[^>]*>)((?:&#160;)+)([^<]+</text>)'
)
#: Textual's SVG cell width: 0.61 of its 20 px font size.
_CELL = 12.2


def _lead_as_offset(match: re.Match[str]) -> str:
    pad = match.group(6).count("&#160;") * _CELL
    x = float(match.group(2)) + pad
    length = float(match.group(4)) - pad
    return f"{match.group(1)}{x:g}{match.group(3)}{length:g}{match.group(5)}{match.group(7)}"


def pad_as_offsets(svg: str) -> str:
    """Return ``svg`` with each text run's leading no-break spaces moved into its x offset."""
    return _RUN.sub(_lead_as_offset, svg)


def main() -> None:
    """Parse the options and save the screenshot."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("dashboard.svg"))
    parser.add_argument("--coin", default="KRW-ETH", help="the coin to select")
    parser.add_argument("--width", type=int, default=170)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--history", type=int, default=30, help="minutes of market history")
    args = parser.parse_args()
    asyncio.run(
        shoot(args.out, coin=args.coin, width=args.width, height=args.height, history=args.history)
    )
    args.out.write_text(pad_as_offsets(args.out.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
