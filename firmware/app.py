"""The composition root: build everything from the board and the config, run the tasks, feed
the watchdog from the main loop."""

import asyncio

import slog

log = slog.Logger("app")


async def main(board, cfg, cfg_error=None):
    wdt = board.watchdog(cfg["wdt_ms"])
    mode = "closed" if cfg_error else cfg["lane_mode"]
    if cfg_error:
        log.error("config", "%s -> out of service until fixed", cfg_error)
    log.info("ready", "board=%s station=%d reader=%s dir=%s mode=%s",
             board.NAME, cfg["station_id"], cfg["reader_id"], cfg["direction"], mode)
    while True:
        wdt.feed()
        await asyncio.sleep_ms(cfg["wdt_ms"] // 4)
