"""Reader entry point: config, then the asyncio application on the board's hardware."""

import asyncio

import app
import board
import config
import slog


def run():
    slog.set_clock(board.clock)
    cfg, err = config.load()
    slog.level = {"debug": slog.DEBUG, "info": slog.INFO, "warn": slog.WARN,
                  "error": slog.ERROR}[cfg["log_level"]]
    try:
        asyncio.run(app.main(board, cfg, err))
    finally:
        asyncio.new_event_loop()
