"""Fare bench workload (entry "farewl"), used by `flash.py bench fares`: the reader's own fare
path (App, NfcReader, Ticketing, as app.main wires them, config and fare table as provisioned)
timing each tap: the poll that finds the card to the verdict (virtual µs) and how much of that
the accelerated clock skipped (modelled wire, RF and chip time, and polling waits). The host
presents card i on "fare:present i" and clears the field on "fare:remove"."""

import asyncio

import app
import board
import config
import slog
from nfc_task import NfcReader
from ticketing import Ticketing


def run():
    slog.set_clock(board.clock)
    cfg = config.load()[0]
    a = app.App(board, cfg)
    nfc = NfcReader(board.nfc_bus(), board.nfc_reset(), board.clock, cfg, board.nfc_irq())
    t = Ticketing(board, cfg, app.load_fares(board, cfg), nfc)
    t.app = a
    t.restore()  # the torn log: one program per purchase before its DEBIT, as in the app
    nfc.on_card = t.charge
    asyncio.run(bench(a, nfc, t, board.settings.get("taps", 10)))


async def bench(a, nfc, t, n):
    clock = board.clock
    m = board.maintenance()
    if not await t.activate():
        print("NO PSAM")
        return
    await nfc.init()
    for i in range(n):
        m.write("fare:present %d" % i)
        k = a.taps
        while a.taps == k:
            t0 = clock.ticks_us()
            k0 = clock.skipped_us
            await nfc.poll_once(a.on_credential)
        el = clock.ticks_diff(clock.ticks_us(), t0)
        print("TAP %d el_us=%d idle_us=%d" % (i, el, clock.skipped_us - k0))
        m.write("fare:remove")
        await nfc.poll_once(a.on_credential)
