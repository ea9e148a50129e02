"""The shipped entry point (`main`) on the emulated board with the real NFC and QR tasks: a
T-Union card on the PN532 simulator and a code on the scan-engine simulator reach the one
decision path; a dead PN532 does not stop ride codes, a silent scan engine does not stop cards.
"""

import json

from test_reader_e2e import VERDICT, Rider

from sim import pn532, scanengine
from sim.cards import TUnionCard

PUTCFG = '''
import json


def run():
    with open("/extra/cfg.json") as f:
        body = f.read()
    with open("/config.json", "w") as f:
        f.write(body)
    print("CFG written")
'''


def boot_main(reader, tmp_path, cfg, nfc=True, qr=True):
    d = tmp_path / "w"
    d.mkdir()
    (d / "putcfg.py").write_text(PUTCFG)
    (d / "cfg.json").write_text(json.dumps(cfg))
    code, out = reader.run(entry="putcfg", extra_path=d)
    assert code == 0 and "CFG written" in out, out
    sims = (pn532.install(reader.hw) if nfc else None,
            scanengine.install(reader.hw) if qr else None)
    Rider(reader.hw)
    reader.boot(entry="main")
    reader.wait_for(lambda x: " app ready " in x)
    return sims


def next_verdict(reader):
    line = reader.wait_for(lambda x: VERDICT.match(x) is not None, timeout=60)
    reader.boot_line = len(reader.output)  # the next wait starts after this line
    m = VERDICT.match(line)
    return int(m[3]), m[4], m[5]


CFG = {"station_id": 3, "no_list_action": "pass", "gate_open_ms": 3000}


def test_card_and_code_reach_one_decision_path(reader, tmp_path):
    nfc, qr = boot_main(reader, tmp_path, CFG)
    card = TUnionCard(b"\x04\x11\x22\x33", "3104000012345678")
    nfc.field.present(card)
    assert next_verdict(reader) == (1, "PASS", "OK")
    nfc.field.remove(card)
    qr.show("NOT A RIDE CODE")
    assert next_verdict(reader) == (4, "DENY", "CODE_INVALID")
    qr.hide()
    expired = TUnionCard(b"\x04\x11\x22\x44", "3104000099999999", expiry=20200101)
    nfc.field.present(expired)
    assert next_verdict(reader) == (1, "DENY", "EXPIRED")
    reader.stop()


def test_dead_pn532_does_not_stop_ride_codes(reader, tmp_path):
    _, qr = boot_main(reader, tmp_path, CFG, nfc=False)
    qr.show("STILL NOT A CODE")
    assert next_verdict(reader) == (4, "DENY", "CODE_INVALID")
    reader.stop()


def test_silent_scan_engine_does_not_stop_cards(reader, tmp_path):
    nfc, qr = boot_main(reader, tmp_path, CFG)
    qr.set_silent(True)
    card = TUnionCard(b"\x04\x11\x22\x55", "3104000055555555")
    nfc.field.present(card)
    assert next_verdict(reader) == (1, "PASS", "OK")
    reader.stop()
