"""Fare bench workload (entry "farewl"), used by `flash.py bench fares`: the reader's own fare
path (faretap: App, NfcReader, Ticketing, as app.main wires them, config and fare table as
provisioned) timing each tap: the poll that finds the card to the verdict (virtual µs) and how
much of that the accelerated clock skipped (modelled wire, RF and chip time, and polling
waits). The host presents card i on "fare:present i" and clears the field on "fare:remove"."""

import asyncio

import app
import board
import config
import faretap
import slog


def run():
    slog.set_clock(board.clock)
    cfg = config.load()[0]
    a, nfc, t = faretap.build(board, cfg, app.load_fares(board, cfg))
    asyncio.run(bench(a, nfc, t, board.settings.get("taps", 10)))


async def bench(a, nfc, t, n):
    m = board.maintenance()
    if not await faretap.start(nfc, t):
        print("NO PSAM")
        return
    for i in range(n):
        m.write("fare:present %d" % i)
        el, idle = await faretap.tap(a, nfc, board.clock)
        print("TAP %d el_us=%d idle_us=%d" % (i, el, idle))
        m.write("fare:remove")
        await faretap.gone(a, nfc)
