"""The e-purse purchase: the card's purse and the PSAM in the simulators (CPython), then the
lib/epurse commands on MicroPython with the PN532 and SAM drivers against them on the emulated
reader: compound and plain purchase, 3DES and SM4, trip record, log, TAC checked with the
issuer's keys, MAC2 checked by the PSAM, refusals by status word, and GET TRANSACTION PROVE
after a debit whose answer was lost."""

import shutil

import pytest

from sim import cards, pboc, pn532, psam
from sim.purse import TRIP_LEN
from sim.runner import WORKLOADS

KEYS = pboc.IssuerKeys.from_seed("epurse-tests")
OTHER = pboc.IssuerKeys.from_seed("another-issuer")
TERMINAL = bytes.fromhex("000011112222")
DATE, TIME = bytes.fromhex("20240315"), bytes.fromhex("081500")


def host_purchase(card, sam, amount, capp=True, record=None):
    """A purchase driven from CPython straight into the simulators' applications."""
    c = card.purse
    card.selected = True
    p1 = 3 if capp else 1
    r = card.apdu(bytes([0x80, 0x50, p1, 2, 0x0B, 1]) + amount.to_bytes(4, "big") + TERMINAL
                  + b"\x0f")
    if r[-2:] != b"\x90\x00":
        return r[-2:].hex()
    bal, ctr, kver, alg, rand = r[0:4], r[4:6], r[9], r[10], r[11:15]
    d = (rand + ctr + amount.to_bytes(4, "big") + bytes([9 if capp else 6]) + DATE + TIME
         + bytes([kver, alg]) + c.serial)
    sam.selected = True
    m, sw, _ = sam.command(bytes([0x80, 0x70, 0, 0, 0x1C]), d)
    assert sw == 0x9000
    ttn, mac1 = m[:4], m[4:]
    if record is not None:
        assert card.apdu(bytes([0x80, 0xDC, 1, 0xD0, TRIP_LEN]) + record) == b"\x90\x00"
    r = card.apdu(bytes([0x80, 0x54, 1, 0, 0x0F]) + ttn + DATE + TIME + mac1 + b"\x08")
    if r[-2:] != b"\x90\x00":
        return r[-2:].hex()
    tac, mac2 = r[:4], r[4:8]
    _, sw, _ = sam.command(bytes([0x80, 0x72, 0, 0, 4]), mac2)
    return (int.from_bytes(bal, "big"), int.from_bytes(ctr, "big"), ttn, tac, "%04x" % sw)


@pytest.mark.parametrize("alg", pboc.ALGS)
def test_genuine_purchase_in_the_simulators(alg):
    card = cards.tunion("3104000012345678", issuer=KEYS, alg=alg, balance=1000)
    sam = psam.Psam(KEYS, TERMINAL, ttn=41)
    rec = bytes(range(TRIP_LEN))
    bal, ctr, ttn, tac, sw = host_purchase(card, sam, 300, record=rec)
    assert (bal, ctr, ttn, sw) == (1000, 0, (41).to_bytes(4, "big"), "9000")
    assert card.purse.balance == 700 and card.purse.counter == 1
    assert bytes(card.purse.trip) == rec
    assert card.purse.log[0][:2] == b"\x00\x00" and card.purse.log[0][5:9] == (300).to_bytes(4,
                                                                                        "big")
    _, dtk = KEYS.card(card.purse.serial, 1, alg)
    assert tac == pboc.tac(alg, dtk, 300, 9, TERMINAL, ttn, DATE, TIME)  # the back office
    assert card.purse.serial == bytes.fromhex("3104000012345678")


def test_refusals_in_the_simulators():
    sam = psam.Psam(KEYS, TERMINAL)
    poor = cards.tunion("3104000000000001", issuer=KEYS, balance=100, overdraft=150)
    assert host_purchase(poor, sam, 300) == "9401"
    assert host_purchase(poor, sam, 250)[4] == "9000" and poor.purse.balance == -150
    assert host_purchase(cards.tunion("3104000000000002"), sam, 0) == "6d00"  # no keys
    wrong = cards.tunion("3104000000000003", issuer=OTHER)
    assert host_purchase(wrong, sam, 100) == "9302" and wrong.purse.balance == 5000
    fake = cards.tunion("3104000000000004", purse_mode="fake")
    assert host_purchase(fake, sam, 100)[4] == "9302"  # the PSAM refuses its MAC2
    tampered = cards.tunion("3104000000000005", issuer=KEYS)
    tampered.purse.mitm_mac1 = True
    assert host_purchase(tampered, sam, 100) == "9302" and tampered.purse.counter == 0


def test_tearing_executes_only_whole_commands():
    card = cards.tunion("3104000000000006", issuer=KEYS)
    card.selected = True
    apdu = bytes.fromhex("805C000204")
    card.tear_at = 4  # cut inside the command: not executed
    assert card.exchange(apdu)[0] == 0x01 and card.torn and card.halted
    card.left_field()
    card.selected = True
    card.tear_at = 6  # the command got in, the answer (6 bytes) is cut after its first byte
    assert card.exchange(apdu)[0] == 0x01
    card.left_field()
    card.selected = True
    card.tear_at = 11
    st, rsp, _ = card.exchange(apdu)
    assert st == 0 and rsp[-2:] == b"\x90\x00" and card.tear_at == 0




def run_ops(make_reader, tmp_path, card, ops, sam_keys=KEYS, ttn=1, on_line=None):
    r = make_reader()
    nfc = pn532.install(r.hw, "hsu")
    nfc.field.present(card)
    p = psam.Psam(sam_keys, TERMINAL, ttn=ttn)
    psam.install(r.hw, p)
    extra = tmp_path / "extra"
    extra.mkdir(exist_ok=True)
    shutil.copy(WORKLOADS / "pursewl.py", extra / "pursewl.py")
    (extra / "ops.txt").write_text("\n".join(ops))
    if on_line:
        r.listeners.append(lambda line: on_line(line, nfc))
    code, lines = r.run(entry="pursewl", extra_path=extra, timeout=120)
    assert code == 0, "\n".join(lines[-20:])
    return [ln.split() for ln in lines if ln.split()[:1] in (["TAP"], ["OK"], ["ERR"], ["REC"],
                                                               ["PROVE"], ["TERMINAL"])], p


@pytest.mark.parametrize("alg", pboc.ALGS)
def test_compound_purchase_on_micropython(make_reader, tmp_path, alg):
    card = cards.tunion("3104000012345678", issuer=KEYS, alg=alg, balance=2000, counter=7)
    rec = bytes([1, 1]) + bytes(range(22))
    out, sam = run_ops(make_reader, tmp_path, card, [
        "tap", "purchase 1 0 20240315 081500 " + rec.hex(),
        "purchase 1 400 20240315 090000", "record 26 1 24", "record 24 1 23"])
    assert out[0] == ["TERMINAL", TERMINAL.hex()]
    assert out[1] == ["TAP", "3104000012345678"]
    assert out[2][:4] == ["OK", "2000", "2000", "7"] and out[2][4] == "00000001"
    assert out[3][:4] == ["OK", "2000", "1600", "8"] and out[3][4] == "00000002"
    assert out[2][6:] == ["1", str(alg)]
    assert out[4] == ["REC", rec.hex()]  # written with the entry's debit, kept by the second
    assert out[5][1][:4] == "0008" and bytes.fromhex(out[5][1])[5:9] == (400).to_bytes(4, "big")
    assert card.purse.balance == 1600 and card.purse.counter == 9 and sam.checks == [True, True]
    _, dtk = KEYS.card(card.purse.serial, 1, alg)
    for (_, amount, ttype, ttn, date, time, tac), line in zip(card.purse.debits, out[2:4]):
        assert line[5] == tac.hex() == pboc.tac(alg, dtk, amount, ttype, TERMINAL, ttn, date,
                                                 time).hex()


def test_refusals_by_status_word_on_micropython(make_reader, tmp_path):
    card = cards.tunion("3104000000000010", issuer=KEYS, balance=100)
    out, _ = run_ops(make_reader, tmp_path, card, [
        "tap", "purchase 0 300 20240315 081500", "purchase 0 100 20240315 081500",
        "prove 6 0", "prove 6 5"])
    assert out[2][:2] == ["ERR", "CardRefused"] and out[2][-1] == "9401"
    assert out[3][:2] == ["OK", "100"] and card.purse.balance == 0
    tac = card.purse.debits[0][6].hex()
    assert out[4][2] == tac  # the last debit proven again
    assert out[5][-1] == "9406"
    clone = cards.tunion("3104000000000011")  # right number, no keys
    out, _ = run_ops(make_reader, tmp_path, clone, ["tap", "purchase 1 0 20240315 081500"])
    assert out[2][1:] == ["CardRefused", "initialize", "6d00"]
    fake = cards.tunion("3104000000000012", purse_mode="fake")
    out, sam = run_ops(make_reader, tmp_path, fake, ["tap", "purchase 1 0 20240315 081500"])
    assert out[2][1:] == ["SamRefused", "MAC2", "9302"] and sam.checks == [False]
    noise = cards.tunion("3104000000000013", purse_mode="garbage")
    out, _ = run_ops(make_reader, tmp_path, noise, ["tap", "purchase 1 0 20240315 081500"])
    assert out[2][1] == "BadResponse"


def test_debit_answer_lost_then_proven(make_reader, tmp_path):
    """The card is torn in the DEBIT answer: the debit happened. On the next tap GET
    TRANSACTION PROVE gives the same TAC; a debit torn before its command completed did not
    happen and the prove is refused."""
    card = cards.tunion("3104000000000020", issuer=KEYS, balance=1000)
    card.tear_in = (0x54, 21 + 4)  # the DEBIT command in, 4 bytes of its answer out

    def on_line(line, nfc):
        if line.startswith("ERR"):
            nfc.field.remove(card)
            nfc.field.present(card, delay_ms=50)

    out, _ = run_ops(make_reader, tmp_path, card, [
        "tap", "purchase 0 250 20240315 081500", "tap", "prove 6 0"], on_line=on_line)
    assert out[2][:2] == ["ERR", "CardGone"]
    assert card.purse.balance == 750
    assert out[4][2] == card.purse.debits[0][6].hex()
    card2 = cards.tunion("3104000000000021", issuer=KEYS, balance=1000)
    card2.tear_in = (0x54, 20)  # the DEBIT command's last byte never arrives

    def on_line2(line, nfc):
        if line.startswith("ERR") and "CardGone" in line:
            nfc.field.remove(card2)
            nfc.field.present(card2, delay_ms=50)

    out, _ = run_ops(make_reader, tmp_path, card2, [
        "tap", "purchase 0 250 20240315 081500", "tap", "prove 6 0"], on_line=on_line2)
    assert out[2][:2] == ["ERR", "CardGone"] and card2.purse.balance == 1000
    assert out[4][-1] == "9406"
