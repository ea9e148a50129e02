"""The fare gate's taps as the reader makes them (App, NfcReader, Ticketing wired as app.main
wires them, the torn log restored), shared by the fare workloads: `farewl` (bench fares, timed
on the emulated board), `farerec` (one session recorded there) and `hotpaths.fare_taps` (the
same session replayed on the QEMU Cortex-M3 build and counted). One code path for all three,
so the replay counts what the emulated reader did.

`LaneBoard` is the board API with the two chips' UARTs, the PSAM's pins and the clock handed
in (the recorder's and the replay's stand-ins); everything else is the board's own.
"""

import app
from nfc_task import NfcReader
from ticketing import Ticketing


class LaneBoard:
    def __init__(self, board, clock, nfc, sam_slot):
        """nfc: (the PN532's UART, its reset pin); sam_slot: as board.sam_slot() gives it."""
        self._b = board
        self.clock = clock
        self.Partition = board.Partition
        self.NAME = board.NAME
        self._nfc = nfc
        self._sam = sam_slot

    def nfc_bus(self):
        return ("hsu", self._nfc[0])

    def nfc_reset(self):
        return self._nfc[1]

    def nfc_irq(self):
        return None  # HSU: the wait is on the UART

    def sam_slot(self):
        return self._sam

    def gate_lock(self):
        return self._b.gate_lock()

    def passage_sensor(self):
        return self._b.passage_sensor()

    def led_green(self):
        return self._b.led_green()

    def led_red(self):
        return self._b.led_red()

    def buzzer(self):
        return self._b.buzzer()

    def display(self):
        return self._b.display()

    def maintenance(self):
        return self._b.maintenance()


def build(board, cfg, fares):
    """(App, NfcReader, Ticketing) as app.main wires them for a fare gate."""
    a = app.App(board, cfg)
    nfc = NfcReader(board.nfc_bus(), board.nfc_reset(), board.clock, cfg, board.nfc_irq())
    t = Ticketing(board, cfg, fares, nfc)
    t.app = a
    t.restore()  # the torn log: one program per purchase before its DEBIT, as in the app
    nfc.on_card = t.charge
    return a, nfc, t


async def start(nfc, t):
    """PSAM activation and PN532 initialisation; False when the PSAM did not answer."""
    if not await t.activate():
        return False
    await nfc.init()
    return True


async def tap(a, nfc, clock):
    """Poll until the card in the field has been charged and its verdict given; the last poll
    (the one that found the card: read, purchase, journal, gate, release) timed on `clock`
    (µs) and the virtual time the clock skipped meanwhile (modelled wire, RF and chip time)."""
    k = a.taps
    while a.taps == k:
        t0 = clock.ticks_us()
        k0 = getattr(clock, "skipped_us", 0)
        await nfc.poll_once(a.on_credential)
    t1 = clock.ticks_us()
    return clock.ticks_diff(t1, t0), clock.ticks_diff(getattr(clock, "skipped_us", 0), k0)


async def gone(a, nfc):
    """The poll that finds the field empty again (the next card is a new tap)."""
    await nfc.poll_once(a.on_credential)
