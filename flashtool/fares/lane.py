"""A fare gate on the emulated board, host side: a reader provisioned to charge fares (config
`psam`, the list key, a signed fare table), its PN532 and PSAM simulators, and taps of virtual
cards with the verdict each got. Used by the ticketing tests, `flash.py bench fares` and the
rider scenario."""

import json
import re
import shutil
import time
from pathlib import Path

from flashtool import use_host_board
from flashtool.fares import records, table
from flashtool.lists.blocklist import keygen, load_public

use_host_board()

from sim import pn532, psam  # noqa: E402
from sim.runner import WORKLOADS, Reader  # noqa: E402

_VERDICT = re.compile(r" gate verdict seq=(\d+) kind=(\d+) verdict=(\w+) reason=(\w+) ms=(\d+)"
                      r" mode=\w+(?: fare=(-?\d+) balance=(-?\d+))?")


def list_key(directory):
    """The list-signing key pair in `directory` (made on first use, never committed)."""
    d = Path(directory)
    if not (d / "blocklist.pem").exists():
        keygen(d, "blocklist")
    return d / "blocklist.pem", load_public(d / "blocklist.pub.json")


def terminal_for(station, lane=1):
    """A PSAM terminal number: station and lane in BCD-looking hex."""
    return bytes.fromhex("%06d%06d" % (station, lane))


class Lane:
    def __init__(self, workdir, station, direction, issuer, keydir, spec=table.DEMO,
                 fares_version=1, cfg=None, sam=True, accelerated=True, lane=1, ttn=1,
                 epoch=None, nfc="hsu", heapsize="192k", files=None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.station = station
        self.spec = spec
        self.reader = Reader(workdir=self.dir / "run", accelerated=accelerated, epoch=epoch,
                             nfc=nfc, heapsize=heapsize)
        self.hw = self.reader.hw
        self.nfc = pn532.install(self.hw, nfc)
        self.psam = psam.Psam(issuer, terminal_for(station, lane), ttn=ttn)
        self.slot = psam.install(self.hw, self.psam) if sam else None
        self.taps = []
        pem, (n, e) = list_key(keydir)
        put = self.dir / "put"
        shutil.rmtree(put, ignore_errors=True)
        put.mkdir(parents=True)
        conf = {"station_id": station, "reader_id": "S%dL%d" % (station, lane),
                "direction": direction, "psam": True, "no_list_action": "pass",
                "passback_s": 0}
        conf.update(cfg or {})
        (put / "config.json").write_text(json.dumps(conf))
        (put / "keys__list.pub").write_text(json.dumps({"role": "list", "n": hex(n), "e": e}))
        if spec is not None:
            sm_path, data = table.publish(self.dir / "published", spec, fares_version, pem)
            shutil.copy(sm_path, put / "fares.sm")
            (put / "fares.bin").write_bytes(data)
        for name, data in (files or {}).items():  # "keys__app.pub" -> /keys/app.pub
            (put / name).write_bytes(data)
        shutil.copy(WORKLOADS / "putfiles.py", self.dir / "putfiles.py")
        code, out = self.reader.run(entry="putfiles", extra_path=self.dir, timeout=120)
        if code:
            raise RuntimeError("provisioning failed:\n" + "\n".join(out[-20:]))

    def start(self, timeout=60):
        self.reader.boot(entry="main")
        self.reader.wait_for(lambda s: " app ready " in s, timeout=timeout)
        if self.slot is not None:
            self.reader.wait_for(lambda s: " fare psam terminal=" in s, timeout=timeout)
        return self

    def tap(self, card, timeout=30, before=None):
        """Present `card` until a verdict comes, then take it away. Returns a dict: verdict,
        reason, seq, ms, and fare/balance when a purchase was journalled."""
        r = self.reader
        start = len(r.output)
        if before is not None:
            before(card)
        self.nfc.field.present(card)
        end = time.monotonic() + timeout
        got = None
        while got is None:
            for line in r.output[start:]:
                m = _VERDICT.search(line)
                if m:
                    got = {"seq": int(m.group(1)), "kind": int(m.group(2)),
                           "verdict": m.group(3), "reason": m.group(4), "ms": int(m.group(5))}
                    if m.group(6) is not None:  # a purchase was journalled
                        got.update(fare=int(m.group(6)), balance=int(m.group(7)))
                    break
            if got is None:
                if time.monotonic() > end or r.proc.poll() is not None:
                    raise TimeoutError("no verdict:\n" + r.tail())
                time.sleep(0.005)
        self.nfc.field.remove(card)
        self.taps.append(got)
        return got

    def wait_idle(self, ms=300):
        """Let the reader see an empty field (the next tap is a new one)."""
        t = self.hw.now_us
        end = time.monotonic() + 10
        while self.hw.now_us - t < ms * 1000 and time.monotonic() < end:
            time.sleep(0.005)

    def journal(self):
        return records.from_image(self.reader.image)

    def close(self):
        self.reader.close()
