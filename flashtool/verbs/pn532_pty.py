"""`flash.py pn532-pty`: the simulated PN532 (HSU) on a pseudo-terminal for real PN532 hosts
(libnfc nfc-list, nfcpy, another board's driver); see flashtool/emulator/pn532pty.py."""

from flashtool.emulator.pn532pty import run


def register(sub):
    p = sub.add_parser("pn532-pty", help="simulated PN532 (HSU) on a pseudo-terminal")
    p.add_argument("--card", action="append", help="card in the field (repeatable)")
    p.add_argument("--link", help="also make a symlink to the pty at this path")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0: Ctrl-C)")
    p.add_argument("--trace", action="store_true", help="print every byte both ways at the end")
    p.set_defaults(func=run)
