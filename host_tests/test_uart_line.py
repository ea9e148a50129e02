"""The emulated UART line (CPython, host side): each end has its own rate, and a receiver at
the wrong rate gets garbage, as a real UART does; the chip side can change its rate at a
given time; the host's flush() knows when its last byte has left."""

from sim.hw import UartDevice
from sim.line import resample

FRAME = bytes.fromhex("0000ff02fed4022a00")


def sent(data, baud, t0=0.0):
    per = 1e7 / baud
    return [(t0 + i * per, b) for i, b in enumerate(data)]


def test_equal_rates_give_back_the_bytes_at_their_wire_times():
    got = resample(sent(FRAME, 115200), 115200, 115200)
    assert bytes(b for _, _, b in got) == FRAME
    assert [round(e) for e, _, _ in got] == [round(i * 1e7 / 115200) for i in range(len(FRAME))]
    assert round(got[-1][1]) == round(8 * 1e7 / 115200 + 9.5 * 1e6 / 115200)  # stop bit


def test_a_receiver_at_another_rate_reads_garbage():
    fast = resample(sent(FRAME, 921600), 921600, 115200)
    slow = resample(sent(FRAME, 115200), 115200, 921600)
    assert bytes(b for _, _, b in fast) != FRAME and len(fast) < len(FRAME)
    assert bytes(b for _, _, b in slow) != FRAME and len(slow) >= len(FRAME)
    # deterministic: the same waveform always reads the same
    assert resample(sent(FRAME, 921600), 921600, 115200) == fast


class Echo(UartDevice):
    def receive(self, now_us, data):
        self.got = self.heard(now_us, data)


def test_device_and_host_rates_and_a_timed_switch():
    d = Echo(115200)
    d.receive(0, FRAME)
    assert bytes(b for _, _, b in d.got) == FRAME
    assert d.tx_idle_us() == round(len(FRAME) * 1e7 / 115200)
    d.configure(921600)  # the host switched, the chip did not
    d.receive(10_000, FRAME)
    assert bytes(b for _, _, b in d.got) != FRAME
    d.switch_baud(20_000, 921600)  # the chip follows at 20 ms
    d.send(19_000, FRAME)  # still at 115200 on the chip's side: garbage for the host
    d.send(30_000, FRAME)
    out, _, _ = d.read(40_000, 100)
    assert not out.startswith(FRAME) and out.endswith(FRAME)
    d.receive(40_000, FRAME)
    assert bytes(b for _, _, b in d.got) == FRAME and d.baud == 921600
