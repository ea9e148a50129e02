"""The first boot of a new app or image: run the self-test after the watchdog has had its
chance, then confirm (selector and ESP-IDF otadata) or reset so that the previous release boots
again. The app registers what its self-test covers with add_check()."""

import asyncio

import bootsel
import files
import slog
from ota import STATE_DIR, load_keys

log = slog.Logger("ota")

SELFTEST_DELAY_MS = 3000  # at least: let the app start its tasks and serve a poll or two

_checks = []


def add_check(name, fn):
    """The app registers what its self-test covers (drivers answer, list readable, a decision
    smoke test). fn() returns true when fine; may be a coroutine function."""
    _checks.append((name, fn))


def _updater_ok():
    for k in load_keys().values():
        if k[2] == "app":
            return True
    return False


def _fs_ok():
    files.replace(STATE_DIR + "/probe", "ok")
    return files.read(STATE_DIR + "/probe") == b"ok"


async def self_test():
    """Names of the checks that failed (empty: all passed)."""
    failed = []
    for name, fn in [("updater", _updater_ok), ("fs", _fs_ok)] + _checks:
        try:
            r = fn()
            if hasattr(r, "send"):
                r = await r
        except Exception as e:
            log.error("check", "%s raised %r", name, e)
            r = False
        if not r:
            failed.append(name)
    return failed


async def confirm_after_self_test(board, cfg):
    """Started by main for an app on its first boot. Waits longer than the watchdog period (a
    hung main loop must have reset the reader first), then self-test. Pass: mark it valid
    (selector and, for a full-firmware image, the ESP-IDF otadata). Fail: reset; the selector
    rolls back."""
    await asyncio.sleep_ms(max(SELFTEST_DELAY_MS, cfg["wdt_ms"] * 3 // 2))
    failed = await self_test()
    if failed:
        log.error("selftest", "failed=%s -> reset, rollback", ",".join(failed))
        board.reset()
    rec = bootsel.confirm()
    if getattr(board, "app_pending", False):
        board.Partition.mark_app_valid_cancel_rollback()
        log.info("valid", "firmware partition=%s", board.app_slot)
    log.info("valid", "version=%s slot=%s", rec and rec.get("version"), rec and rec.get("slot"))
