"""Reader entry point (frozen, stable): pick the app slot, then config, then the asyncio
application on the board's hardware.

Nothing of the app is imported before the boot selector has put the chosen slot first on
sys.path, so the app, its libs and the updater all come from that slot (or from the frozen
firmware when no slot is valid).
"""

import sys

import board
import bootsel


def run():
    slot, pending = bootsel.select(board.reset_cause() == board.PWRON_RESET)
    if slot is not None:
        sys.path.insert(0, bootsel.slot_dir(slot))
    try:
        _run(slot, pending)
    except Exception as e:
        if not pending:
            raise
        # A new app that dies before its self-test: reset; the selector rolls it back.
        sys.print_exception(e)
        print("E boot crash slot=%s pending -> reset, rollback" % slot)
        board.reset()


def _run(slot, pending):
    import asyncio

    import app
    import config
    import slog

    slog.set_clock(board.clock)
    cfg, err = config.load()
    slog.level = {"debug": slog.DEBUG, "info": slog.INFO, "warn": slog.WARN,
                  "error": slog.ERROR}[cfg["log_level"]]
    slog.Logger("boot").info("app", "slot=%s pending=%d", slot or "factory", pending)
    try:
        asyncio.run(_start(app, cfg, err, pending))
    finally:
        asyncio.new_event_loop()


async def _start(app, cfg, err, pending):
    import asyncio

    if pending or getattr(board, "app_pending", False):
        import selftest

        asyncio.create_task(selftest.confirm_after_self_test(board, cfg))
    await app.main(board, cfg, err)
