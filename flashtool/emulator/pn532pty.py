"""The simulated PN532 (`flash.py pn532-pty`) as an HSU PN532 (115200 8N1) on a pseudo-terminal,
so real PN532 hosts (libnfc's nfc-list, nfcpy, another board's driver) can talk to it.

    python flash.py pn532-pty --card normal:3104000012345678 --card classic:12345678
    LIBNFC_DEVICE=pn532_uart:/dev/pts/N nfc-list

The simulator runs on the real clock here (monotonic µs): bytes leave at their wire times at
the chip's rate (115200 after reset; SetSerialBaudRate changes it once the host has ACKed the
answer), the chip and the cards take their modelled times. The host's rate is the speed it set
on the pty (termios): what the chip sends is garbled for a host at another rate, as on a real
line. A pty carries bytes without timing, so what the host sends is taken at the chip's rate
(there is no telling whether a write came before or after the host's own speed change).
Cards: normal|expired|concession|lost|phone|tunion[:NUMBER], classic[:NUMBER], ultralight,
foreign, blank.
"""

import os
import select
import sys
import termios
import time
import tty

from flashtool import use_host_board


def make_card(spec):
    use_host_board()
    from sim import cards

    name, _, arg = spec.partition(":")
    fn = getattr(cards, name, None)
    if name not in ("normal", "expired", "concession", "lost", "phone", "tunion", "classic",
                    "ultralight", "foreign", "blank") or fn is None:
        raise SystemExit("unknown card %r" % spec)
    return fn(arg) if arg else fn()


def open_pty(link=None):
    """A raw pseudo-terminal; returns (master fd, slave path). The slave stays open here so
    the master does not see EIO between two host programs."""
    master, slave = os.openpty()
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[4] = attrs[5] = termios.B115200
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    path = os.ttyname(slave)
    if link:
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(path, link)
    return master, slave, path


SPEEDS = {getattr(termios, n): int(n[1:]) for n in dir(termios)
          if n[0] == "B" and n[1:].isdigit() and int(n[1:])}


def host_baud(slave, default):
    """The speed the host program set on the pty (`default` for one termios cannot name)."""
    return SPEEDS.get(termios.tcgetattr(slave)[5], default)


def serve(sim, master, slave, stop_at=None, stop=None):
    """Shuttle bytes between the pty and the simulator in real time."""
    from sim.pn532 import ACK

    port = sim.port
    port.host_untimed = True

    def follow_host(now):
        rate = host_baud(slave, port.baud)
        if rate != port.host_baud and rate == sim.baud_next:
            # The host took the new speed after the chip's SetSerialBaudRate answer: its
            # confirming ACK had left a UART by then, but on a pty a host that flushes its
            # output as it reopens the port (nfcpy) drops it. Put it back.
            port.receive(now, ACK)
        port.configure(rate)

    while not (stop and stop.is_set()):
        now = int(time.monotonic() * 1_000_000)
        if stop_at and now >= stop_at:
            return
        with sim.lock:
            follow_host(now)
            out, _, nxt = port.read(now, 4096)
        if out:
            os.write(master, out)
        wait = 0.005
        if nxt:
            wait = max(0.0, min(wait, (nxt - now) / 1e6))
        r, _, _ = select.select([master], [], [], wait)
        if r:
            try:
                data = os.read(master, 4096)
            except OSError:
                time.sleep(0.01)
                continue
            now = int(time.monotonic() * 1_000_000)
            with sim.lock:
                follow_host(now)
                port.receive(now, data)


def run(args):
    use_host_board()
    from sim import pn532

    sim = pn532.PN532Sim("hsu")
    sim.port = pn532.HsuPort(sim)
    sim.record = args.trace
    for spec in args.card or ["normal"]:
        if spec != "none":
            sim.field.present(make_card(spec), at_us=0)
    master, slave, path = open_pty(args.link)
    print(path, flush=True)
    print("PN532 (HSU 115200) on %s; cards: %s; e.g. LIBNFC_DEVICE=pn532_uart:%s nfc-list" % (
        path, ", ".join(args.card or ["normal"]), path), file=sys.stderr, flush=True)
    stop_at = int((time.monotonic() + args.seconds) * 1e6) if args.seconds else None
    try:
        serve(sim, master, slave, stop_at)
    except KeyboardInterrupt:
        pass
    finally:
        if args.trace:
            for t, d, b in sim.trace:
                print("%12d %-3s %s" % (t, d, b.hex(" ")), file=sys.stderr)
        os.close(master)
        os.close(slave)
    return 0
