"""`flash.py micropython WHAT...`: the pinned MicroPython source and the interpreters built from
it with the app frozen in (flashtool/build/upstream.py, firmware.py): `source`, `unix32`,
`qemu`, and `esp32 --board B` (the board's frozen modules compiled for xtensawin)."""

WHAT = ("source", "unix32", "qemu", "esp32")


def run(args):
    from flashtool.build import firmware, upstream

    for what in args.what:
        if what == "source":
            print(upstream.source())
        elif what == "unix32":
            print(firmware.unix32(quiet=False))
        elif what == "qemu":
            print(firmware.qemu(quiet=False))
        else:
            mods = firmware.esp32_modules(args.board)
            print("%s: %d frozen modules compiled with mpy-cross -march=xtensawin, %d bytes"
                  % (args.board, len(mods), sum(len(m) for _, _, m in mods)))
    return 0


def register(sub):
    p = sub.add_parser("micropython", help="pinned MicroPython source, 32-bit and QEMU builds")
    p.add_argument("what", nargs="+", choices=WHAT)
    p.add_argument("--board", default="esp32s3_gate", help="for esp32: which board")
    p.set_defaults(func=run)
