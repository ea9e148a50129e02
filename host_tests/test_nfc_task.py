"""The reader's NFC task (firmware/nfc_task.py) on the emulated reader (MicroPython, compiled
firmware, simulated PN532 on HSU): every kind of card, clash, no re-trigger while a card stays,
a card pulled away mid-read, MIFARE opt-in."""

import copy
import time

import pytest

from flashtool.bench.nfc import write_workload
from sim import cards, pn532


def start(make_reader, tmp_path, *present, transport="hsu", **settings):
    r = make_reader(nfc=transport)
    sim = pn532.install(r.hw, transport)
    for c in present:
        sim.field.present(c)
    extra = write_workload(tmp_path / "extra")
    r.boot(entry="nfcload", extra_path=extra, settings=settings)
    return r, sim


def creds(r, n, timeout=30):
    """The first n credentials handed on since boot (waits for them)."""
    end = time.monotonic() + timeout
    while True:
        done = r.proc.poll() is not None
        if done:
            r.wait(10)  # every line the process printed is in r.output now
        out = [x for x in r.output[r.boot_line:] if x.startswith("CRED")]
        if len(out) >= n:
            return [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in out[:n]]
        if time.monotonic() > end or done:
            raise AssertionError("%d of %d credentials:\n%s" % (len(out), n, r.tail()))
        time.sleep(0.01)


def let_pass(r, ms):
    """Until `ms` of the reader's virtual time have passed (its link requests carry it): what
    the reader does in that time does not depend on how busy the host is, as a sleep's would."""
    end = r.hw.now_us + ms * 1000
    while r.hw.now_us < end:
        assert r.proc.poll() is None, r.tail()
        time.sleep(0.01)


def finish(r):
    assert r.wait(60) == 0, r.tail()
    stats = next(x for x in reversed(r.output) if x.startswith("STATS"))
    return dict(x.split("=") for x in stats.split()[1:])


@pytest.mark.parametrize("card,want", [
    (cards.normal("3104000012345678"),
     dict(kind="1", num="3104000012345678", type="1", to="20301231", conc="0", err="0")),
    (cards.expired("3104000000000099"), dict(kind="1", to="20200101", **{"from": "20150101"})),
    (cards.concession("3104000000000042"), dict(type="6", conc="20991231", err="0")),
    (cards.tunion("3104000000000007", uid_len=10), dict(num="3104000000000007", uid="10")),
    (cards.tunion("3104000000000004", uid_len=4), dict(num="3104000000000004", uid="4")),
    (cards.foreign(), dict(kind="1", num="", err="2")),
    (cards.ultralight(), dict(num="", err="2", uid="7")),
    (cards.classic("12345678"), dict(kind="3", weak="1", err="4", num="")),
])
@pytest.mark.parametrize("baud", [115200, 921600])
def test_card_kinds(make_reader, tmp_path, card, want, baud):
    """Every kind, with the PN532's HSU at its reset rate and moved to 921600 (nfc_baud)."""
    card = copy.deepcopy(card)  # the table's card ends halted by the read: a fresh one per run
    r, sim = start(make_reader, tmp_path, card, nfc_taps=1, nfc_baud=baud)
    got = creds(r, 1)[0]
    assert {k: got[k] for k in want} == want, got
    st = finish(r)
    assert st["taps"] == "1" and st["errors"] == "0" and sim.port.baud == baud
    if want.get("kind") == "1" and want.get("err", "0") == "0":
        # identity came from the application: SELECT + READ BINARY went over the air
        assert sim.commands.count(0x40) >= 3


def test_mifare_allowed_reads_sector_and_blank_card_is_refused(make_reader, tmp_path):
    r, sim = start(make_reader, tmp_path, cards.classic("87654321", uid_len=7), nfc_taps=2,
                   nfc_mifare=1)
    got = creds(r, 1)[0]
    assert (got["kind"], got["num"], got["weak"], got["err"], got["to"]) == (
        "3", "87654321", "1", "0", "20301231")
    sim.field.clear()  # the field is empty for 300 ms of the reader's time (3 polls)
    sim.field.present(cards.blank(), delay_ms=300)
    got = creds(r, 2)[1]
    assert (got["kind"], got["err"], got["num"]) == ("3", "5", "")  # key rejected
    finish(r)


def test_phone_random_uid_reads_application_number_once(make_reader, tmp_path):
    """A phone re-answers every poll with a new random UID; the number read over APDUs is the
    identity, and it is handed on once while the phone stays."""
    phone = cards.phone("3104000077777777", seed=5)
    r, sim = start(make_reader, tmp_path, phone, nfc_stop_ms=3000)
    got = creds(r, 1)[0]
    assert (got["kind"], got["num"], got["uid"]) == ("2", "3104000077777777", "4")
    st = finish(r)
    assert st["taps"] == "1" and int(st["held"]) >= 5, st


def test_card_staying_in_field_does_not_retrigger_but_new_tap_does(make_reader, tmp_path):
    c = cards.normal("3104000012345678")
    c.halts = False  # a card that keeps answering after InRelease
    r, sim = start(make_reader, tmp_path, c, nfc_taps=2)
    creds(r, 1)
    let_pass(r, 1000)  # ten polls with the card still there
    assert sum(1 for x in r.output if x.startswith("CRED")) == 1
    sim.field.clear()  # then an empty field for 300 ms of the reader's time, and a new tap
    sim.field.present(cards.normal("3104000012345678"), delay_ms=300)
    creds(r, 2)
    st = finish(r)
    assert int(st["held"]) >= 3 and st["taps"] == "2"


def test_two_cards_are_a_clash_reported_once(make_reader, tmp_path):
    r, sim = start(make_reader, tmp_path, cards.normal("3104000000000001"),
                   cards.phone("3104000000000002", seed=1), nfc_stop_ms=2000)
    got = creds(r, 1)[0]
    assert (got["clash"], got["num"]) == ("1", "")
    st = finish(r)
    assert st["clashes"] == "1" and st["taps"] == "1"
    assert 0x40 not in sim.commands  # neither card was read


def test_card_pulled_away_mid_read(make_reader, tmp_path):
    c = cards.normal("3104000012345678")
    c.gone_after = 1  # answers SELECT, then leaves the field
    r, sim = start(make_reader, tmp_path, c, nfc_taps=2)
    got = creds(r, 1)[0]
    assert got["err"] == "1" and got["num"] == ""
    sim.field.present(cards.normal("3104000012345679"))
    got = creds(r, 2)[1]
    assert got["err"] == "0" and got["num"] == "3104000012345679"
    finish(r)


def test_poll_cadence_and_event_loop_not_blocked(make_reader, tmp_path):
    """With no card, the task polls about every nfc_poll_ms (100) and the workload's own
    20 ms loop keeps running (it ends the run on time)."""
    r, sim = start(make_reader, tmp_path, nfc_stop_ms=5000)
    st = finish(r)
    assert 40 <= int(st["polls"]) <= 52, st


def test_missing_chip_backs_off_and_never_blocks_the_loop(make_reader, tmp_path):
    """No PN532 answers at all: the task keeps trying with the reset line, less and less often
    (not a log line every poll), and the event loop runs on (ride codes are still served)."""
    r = make_reader(nfc="hsu")  # nothing installed on the UART
    r.boot(entry="nfcload", extra_path=write_workload(tmp_path / "extra"), settings={
        "nfc_stop_ms": 20000})
    st = finish(r)
    assert 5 <= int(st["resets"]) <= 12 and st["taps"] == "0", st
    gap = next(x for x in r.output if x.startswith("LOOP"))
    assert int(gap.split("=")[1]) < 60, gap
    assert sum(1 for x in r.output if " nfc reset " in x) == int(st["resets"])
