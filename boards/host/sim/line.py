"""A UART line between two ends that may disagree on the rate.

Bytes go out 8N1: a start bit (low), eight data bits LSB first, a stop bit (high), the line
idles high. A receiver waits for a falling edge, samples the start bit half a bit-time later
(high: a glitch, ignored), then each data bit and the stop bit in the middle of its own
bit-time, and hands the byte on even when the stop bit was low (a framing error: a raw-mode
Linux tty and the ESP32 UART driver both deliver the byte). With equal rates that gives back the
bytes sent; with different rates it gives what a real UART makes of them, so a side that
switched rate too early or too late reads garbage instead of frames.
"""

from bisect import bisect_right

_BITS = [[0] + [(b >> i) & 1 for i in range(8)] + [1] for b in range(256)]


def resample(frames, tx_baud, rx_baud):
    """`frames`: [(start_us, byte)] sent at `tx_baud` (not overlapping). Returns
    [(edge_us, done_us, byte)] as a receiver at `rx_baud` sees them: the falling edge it
    started on and the time the byte is complete (stop bit sampled)."""
    tx = 1e6 / tx_baud
    rx = 1e6 / rx_baud
    starts = [s for s, _ in frames]
    edges = []
    for s, b in frames:
        prev = 1
        for k, v in enumerate(_BITS[b]):
            if v == 0 and prev == 1:
                edges.append(s + k * tx)
            prev = v

    def level(t):
        i = bisect_right(starts, t) - 1
        if i < 0:
            return 1
        k = int((t - starts[i]) / tx)
        return _BITS[frames[i][1]][k] if k < 10 else 1

    out = []
    free = float("-inf")  # the receiver looks for a start bit again after this
    for e in edges:
        if e < free or level(e + rx / 2):
            continue
        v = 0
        for k in range(8):
            v |= level(e + (k + 1.5) * rx) << k
        free = e + 9.5 * rx
        out.append((e, free, v))
    return out
