"""A demo station around one emulated reader: locally generated keys, a signed demo blocklist,
a ride-code issuer, the gate's mechanics, and riders with cards and phones.

Used by `flash.py emulate` (dashboard and scenarios) and by the emulator's tests. Everything
secret is generated on first use under the station directory (default var/emulator, which git
ignores) and never committed.
"""

import json
import textwrap
import zlib
from pathlib import Path

from flashtool.codes import issuer as codes
from flashtool.codes import rider as app
from flashtool.fares import table
from flashtool.fares.lane import terminal_for
from flashtool.lists import blocklist as bl
from flashtool.release import keys, sign
from flashtool.server import keys as reader_keys
from flashtool.server.app import StationServer
from sim import cards, pboc, pn532, psam, scanengine
from sim.runner import HEAPSIZE, Reader
from sim.world import Gate, Scheduler

ISSUER_KID = 1
# The demo lists' hash key: fixed, so a card that is not listed gets the same answer on every
# run. A fresh key per list made each unlisted card a false positive with probability ~4e-10
# (blocklist.design_fp of the demo list): the soak's 10,000 taps and the 2,000-rider scenarios
# under `make check-long` came to a few in a million per run.
DEMO_LIST_HASH_KEY = bytes(range(16))
RIDER_KEYS = 4  # key pairs the emulator's riders share (Station.rider)
CARDS = {
    # name: (factory(issuer keys or None), blocklist category or None, expected verdict with
    # the health rule on, and with fares: what a purchase adds)
    "normal": (lambda k=None: cards.normal("3104000012345678", issuer=k), None, "PASS"),
    "health-hold": (lambda k=None: cards.normal("3104000000000404", issuer=k), "health_hold",
                    "DENY"),
    "no-health-info": (lambda k=None: cards.normal("3104000000000405", issuer=k),
                       "health_unknown", "MANUAL"),
    "lost": (lambda k=None: cards.lost("3104000000000666", issuer=k), "lost_stolen", "DENY"),
    "expired": (lambda k=None: cards.expired("3104000000000099", issuer=k), None, "DENY"),
    "concession": (lambda k=None: cards.concession("3104000000000042", issuer=k), None,
                   "PASS"),
    "phone": (lambda k=None: cards.phone("3104000077777777", issuer=k), None, "PASS"),
    "mifare": (lambda k=None: cards.classic("12345678", expiry=20991231), None, "PASS"),
    # fares (config psam): a clone (a real card's number, no keys), too little money to
    # enter, a card pulled away in the middle of its purchase (press again: it is finished)
    "clone": (lambda k=None: cards.normal("3104000088880001"), None, "DENY"),  # a real
    # card's number (issued, on no list) in a card or phone app without the purse keys
    "low-balance": (lambda k=None: cards.normal("3104000000000123", issuer=k, balance=100),
                    None, "DENY"),
    "pulled": (lambda k=None: cards.normal("3104000000000777", issuer=k), None, "DENY"),
}
FARE_ONLY = ("clone", "low-balance", "pulled")  # PASS on a read-only reader
CODES = ("valid", "expired", "forged", "replayed", "screenshot")

PROVISION = '''
"""Demo provisioning on the emulated reader: config, public keys, key set, blocklist."""
import os
import board


def _mkdir(p):
    try:
        os.mkdir(p)
    except OSError:
        pass


def _copy(src, dst):
    with open(src, "rb") as f, open(dst, "wb") as g:
        g.write(f.read())


def run():
    _mkdir("/keys")
    for name in os.listdir("/extra/put"):
        _copy("/extra/put/" + name, name.replace("__", "/"))
    from blocklist.store import ListStore
    import app
    store = ListStore(board.Partition, app.list_key())
    if os.stat("/extra/list.img")[6] and store.seq < %d:
        inst = store.begin(os.stat("/extra/list.img")[6])
        with open("/extra/list.img", "rb") as f:
            buf = bytearray(4096)
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                inst.write(memoryview(buf)[:n])
        inst.finish()
    print("PROVISIONED list seq", store.seq)
'''


class Station:
    def __init__(self, workdir="var/emulator", nfc="hsu", accelerated=False, health_rule=True,
                 fresh=False, heapsize=HEAPSIZE, fares=True):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if fresh and (self.dir / "flash.img").exists():
            (self.dir / "flash.img").unlink()
        self.keys = self.dir / "keys"
        self.health_rule = health_rule
        self.list_seq = 0
        self.list_max_age_s = 24 * 3600
        self.reader = Reader(workdir=self.dir / "run", image=self.dir / "flash.img",
                             accelerated=accelerated, nfc=nfc, heapsize=heapsize)
        self.hw = self.reader.hw
        self.sched = Scheduler(self.hw)
        self.gate = Gate(self.hw, self.sched)
        self.nfc = pn532.install(self.hw, nfc)
        self.qr = scanengine.install(self.hw)
        self._counter = 0
        self._last_code = None
        self.fares = fares  # a PSAM in the slot and a fare table: every card tap a purchase
        self.psam = None
        self._pulled = None  # the card pulled mid-purchase, until it is presented again
        self.server = None  # the station update server (start_server)
        self.url = None
        self._port = 0
        self._demo_keys()
        if fares:
            self.psam = psam.Psam(self.card_keys, terminal_for(101, 7))
            self.sam_slot = psam.install(self.hw, self.psam)

    # -- demo secrets, generated locally on first run --------------------------------------
    def _demo_keys(self):
        k = self.keys
        if not (k / "blocklist.pem").exists():
            bl.keygen(k, "blocklist")
        self.list_priv = keys.load_private(k / "blocklist.pem")
        for name in ("root", "issuer"):
            if not (k / ("rides-%s.json" % name)).exists():
                codes.save_key(codes.gen_rsa(e=3), k / ("rides-%s.json" % name))
        if not (k / "app.pem").exists():
            keys.keygen(k, "app")  # signs the update server's index
        self.root = codes.load_key(k / "rides-root.json")
        self.issuer = codes.load_key(k / "rides-issuer.json")
        self._certs = {}  # (account, kind) -> RC2 certificate
        self._rider_keys = {}  # slot -> RSA rider key
        if not (k / "issuer.json").exists():  # the card issuer's master keys (back office)
            (k / "issuer.json").write_text(pboc.IssuerKeys.generate().to_json())
        self.card_keys = pboc.IssuerKeys.from_json((k / "issuer.json").read_text())

    def now(self):
        """UTC seconds on the reader's clock (what its RTC says now)."""
        return self.reader.world_time()

    def list_image(self, seq, extra=()):
        entries = [(1, b"3104000000000404", 4), (1, b"3104000000000405", 5),
                   (1, b"3104000000000666", 1), (3, b"R-LOST-0001", 1)]
        entries += list(extra)
        return bl.build_image(entries, self.list_priv, seq, issued=self.now(),
                              max_age_s=self.list_max_age_s, key=DEMO_LIST_HASH_KEY)

    def keyset(self):
        """Issuer keys only: the riders' phones sign their codes (RC2), so no reader holds a
        secret that makes one (RC1's day keys are not issued here)."""
        return codes.make_keyset(self.root, 1, {ISSUER_KID: self.issuer})

    # -- provisioning: what a crew's first install puts on the reader ----------------------
    def provision(self, cfg=None, seq=1, extra=()):
        cfg = dict({"station_id": 101, "reader_id": "G07", "direction": "entry",
                    "health_rule": self.health_rule, "mifare_allowed": True,
                    "no_list_action": "manual", "qr_baud": 115200}, **(cfg or {}))
        if self.server is not None:
            cfg.update(sync_url=self.url, sync_period_s=5)
        if self.fares:
            cfg["psam"] = True
        d = self.dir / "provision"
        put = d / "put"
        put.mkdir(parents=True, exist_ok=True)
        for old in put.iterdir():
            old.unlink()
        n, e = bl.load_public(self.keys / "blocklist.pub.json")
        (put / "config.json").write_text(json.dumps(cfg))
        (put / "keys__list.pub").write_text(json.dumps({"role": "list", "n": hex(n), "e": e}))
        (put / "keys__app.pub").write_text((self.keys / "app.pub").read_text())
        (put / "keys__rides-root.pub").write_text(json.dumps(
            {"role": "rides", "n": hex(self.root["n"]), "e": self.root["e"]}))
        (put / "keys__rides.ks").write_bytes(self.keyset())
        # the reader's own upload key (a new key id at each provisioning: the older ones
        # retire when the reader first signs with it)
        kid, key, _ = reader_keys.issue(self.dir / "server" / "readers.json",
                                        cfg["reader_id"])
        (put / "keys__upload.key").write_text(reader_keys.reader_file(cfg["reader_id"], kid,
                                                                       key))
        (d / "list.img").write_bytes(self.list_image(seq, extra))
        if self.fares:
            sm_path, data = table.publish(self.dir / "fares", table.DEMO, 1,
                                          self.keys / "blocklist.pem")
            (put / "fares.sm").write_bytes(sm_path.read_bytes())
            (put / "fares.bin").write_bytes(data)
        (d / "provision.py").write_text(textwrap.dedent(PROVISION % seq))
        code, out = self.reader.run(entry="provision", extra_path=d, timeout=300)
        if code != 0 or not any("PROVISIONED" in x for x in out):
            raise RuntimeError("provisioning failed (%s):\n%s" % (code, "\n".join(out[-20:])))
        # the reader may already hold a newer list (a station directory used before)
        done = [x for x in out if x.startswith("PROVISIONED")]
        self.list_seq = max(seq, int(done[-1].split()[-1]))
        return out

    def start(self, timeout=60):
        self.reader.boot(entry="main")
        ready = self.reader.wait_for(lambda s: " gate ready " in s or " app ready " in s,
                                     timeout=timeout)
        if self.fares:  # the PSAM activated (ATR, PPS, terminal number): cards can pay
            self.reader.wait_for(lambda s: " fare psam " in s, timeout=timeout)
        return ready

    # -- riders -------------------------------------------------------------------------
    def present(self, name, hold_ms=600, passes=None):
        """A rider taps a card (held `hold_ms`), or "clash" for two cards at once."""
        if name == "clash":
            a, b = cards.normal("3104000011110001"), cards.normal("3104000011110002")
            for c in (a, b):
                self.nfc.field.present(c)
                self.nfc.field.remove(c, delay_ms=hold_ms)
            return "DENY"
        factory, _cat, expect = CARDS[name]
        if not self.health_rule and name in ("health-hold", "no-health-info"):
            expect = "PASS"
        if not self.fares and name in FARE_ONLY:
            expect = "PASS"  # a read-only reader cannot tell
        card = factory(self.card_keys if self.fares else None)
        if name == "pulled" and self.fares:
            if self._pulled is None:  # first press: pulled away while its DEBIT runs
                card.tear_in = (0x54, 22)  # DEBIT (21 bytes) done, its answer lost
                self._pulled = card
            else:  # the same card again: the purchase is finished, the gate opens
                card, self._pulled = self._pulled, None
                expect = "PASS"
        self.nfc.field.present(card)
        self.nfc.field.remove(card, delay_ms=hold_ms)
        if passes if passes is not None else expect == "PASS":
            self.gate.rider_will_pass()
        return expect

    def rider(self, account):
        """A rider's RSA-2048 e = 3 key pair, the same every time for the same account. The
        riders share RIDER_KEYS key pairs (seeded RSA key generation takes ~0.5 s in CPython,
        and rush hour has thousands of riders); each has a certificate of its own."""
        slot = zlib.crc32(account.encode()) % RIDER_KEYS
        key = self._rider_keys.get(slot)
        if key is None:
            key = self._rider_keys[slot] = app.rider_key(seed="emulator-%d" % slot)
        return key

    def code_text(self, kind="valid", account="R-1001"):
        """The RC2 code a rider's phone shows now: its key comes from the account (the same
        rider has the same key every time), its certificate is issued on first use."""
        now = self.now()
        rider = self.rider(account)
        cert = self._certs.get((account, kind == "expired"))
        if cert is None:
            valid_from, valid_to = now - 86400, now + 30 * 86400
            if kind == "expired":
                valid_from, valid_to = now - 60 * 86400, now - 86400
            cert = codes.make_cert2(self.issuer, ISSUER_KID, account, 0, valid_from, valid_to,
                                    app.public_bytes(rider))
            self._certs[(account, kind == "expired")] = cert
        gen = now - 90 if kind == "screenshot" else now
        self._counter += 1
        text = app.make_code2(cert, rider, gen, self._counter & 0xFFFF)
        if kind == "forged":  # flip one character of the certificate's signature area
            t = bytearray(text)
            i = len(t) // 2
            t[i] = ord("A") if t[i] != ord("A") else ord("B")
            text = bytes(t)
        return text

    def show(self, kind="valid", hold_ms=1500, passes=None):
        """A rider shows a ride code on a phone; "replayed" shows the last code again."""
        if kind == "replayed" and self._last_code:
            text = self._last_code
        else:
            text = self.code_text(kind)
            self._last_code = text
        self.qr.show(text)
        self.sched.after(hold_ms * 1000, lambda now: self.qr.hide(text))
        expect = "PASS" if kind == "valid" else "DENY"
        if passes if passes is not None else expect == "PASS":
            self.gate.rider_will_pass()
        return expect

    # -- crew actions -------------------------------------------------------------------
    def mode(self, mode):
        self.hw.maintenance("mode %s" % mode)

    def power_cut_and_reboot(self):
        self.reader.power_cut()
        return self.start()

    # -- the station server (flash.py serve) ----------------------------------------------
    def start_server(self):
        """Serve the published tree on loopback; the reader polls it (sync_url) and uploads
        its journal, signed with the key provisioning gave it."""
        pub = self.dir / "published"
        pub.mkdir(exist_ok=True)
        if not (pub / "index.sm").exists():
            sign.sign_index(pub, 1, self.keys / "app.pem")  # nothing published yet
        srv = StationServer(pub, self.dir / "server", port=self._port)
        srv.start()
        self._port = srv.port
        self.url = srv.url
        self.server = srv
        return self.url

    def stop_server(self):
        if self.server is not None:
            self.server.stop()
            self.server = None

    def publish_list(self, extra=()):
        """Sign the next list and a new index into the published tree; the reader picks it up
        at its next poll (what a back office does)."""
        pub = self.dir / "published"
        self.list_seq += 1
        path = self.dir / ("list%d.bin" % self.list_seq)
        path.write_bytes(self.list_image(self.list_seq, extra))
        sign.sign_files(pub, "list", "list", self.list_seq, {"list.bin": path},
                            self.keys / "blocklist.pem")
        sign.sign_index(pub, sign.published_version(pub) + 1, self.keys / "app.pem")
        return self.list_seq

    def push_list(self, extra=()):
        """A new list: through the update server when it runs, else installed by the crew
        (reader stopped, provisioning run, reader started again)."""
        if self.server is not None:
            return self.publish_list(extra)
        self.reader.stop()
        self.list_seq += 1
        d = self.dir / "provision"
        (d / "list.img").write_bytes(self.list_image(self.list_seq, extra))
        (d / "provision.py").write_text(textwrap.dedent(PROVISION % self.list_seq))
        code, out = self.reader.run(entry="provision", extra_path=d, timeout=300)
        if code != 0:
            raise RuntimeError("list push failed:\n%s" % "\n".join(out[-20:]))
        return self.start()

    def close(self):
        self.stop_server()
        self.reader.close()

