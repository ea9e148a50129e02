"""Journal records as they arrive from readers: the one host-side checker and decoder.

A journal is a sequence of 32-byte records, each with its own magic byte (its kind) and a
CRC-32 of bytes 0..27 at 28 (firmware/journal.py, docs/reader.md). The server checks magic and
CRC generically and stores the raw bytes; only the fleet page and audits decode the fields, all
through `decode()`, so a new record kind is one entry in KINDS.
"""

import struct
import zlib
from pathlib import Path

REC = 32
SEQ_OFF = 4  # every kind carries its journal sequence here (u32, little-endian)

# Refusal reasons (what the reader is told; it keeps the record)
PARTIAL = "partial record"
BAD_MAGIC = "unknown record kind"
BAD_CRC = "bad CRC"


def _verdict(raw):
    (magic, verdict, reason, mode, seq, t, key, list_seq, kind, category, ms,
     station) = struct.unpack_from("<BBBBIIIIBBHH", raw)
    return {"seq": seq, "time": t, "key": key, "verdict": _name(VERDICTS, verdict),
            "reason": _name(reason_names(), reason), "mode": _name(MODES, mode),
            "list": list_seq, "kind": kind, "category": category, "ms": ms,
            "station": station, "proof": _name(PROOFS, raw[26])}


def _purchase(raw):
    """An e-purse purchase, first half (0x50): what the TAC covers besides the amount."""
    return {"seq": seq(raw), "flags": raw[1], "alg": raw[2], "key_version": raw[3],
            "serial": raw[8:16].hex(), "ttn": raw[16:20].hex(), "tac": raw[20:24].hex(),
            "local_s": int.from_bytes(raw[24:28], "little")}


def _purchase2(raw):
    """Its second half (0x51, the next sequence number), which carries the tap's verdict
    when it is the tap's last purchase (verdict 0: an earlier one, e.g. a recovered debit).
    Byte 3 0xFF: written by the app before the PSAM record (a journal migrated by an update,
    docs/ota.md), with the terminal number at 8 and the tap's verdict in a 0x52 after it."""
    bal = int.from_bytes(raw[17:20], "little")
    key, ms = struct.unpack_from("<IH", raw, 8)
    if raw[3] == 0xFF:
        tap = {"verdict": None, "terminal": raw[8:14].hex()}
    else:
        tap = {"verdict": _name(VERDICTS, raw[3] & 15) if raw[3] & 15 else None,
               "mode": _name(MODES, raw[3] >> 4), "key": key, "ms": ms,
               "reason": _name(reason_names(), raw[26])}
    return {"seq": seq(raw), "card_type": raw[1], "kind": raw[2], **tap,
            "amount": int.from_bytes(raw[14:17], "little"),
            "balance_after": bal - (1 << 24) if bal & 0x800000 else bal,
            "counter": int.from_bytes(raw[20:22], "little"),
            "station": int.from_bytes(raw[22:24], "little"),
            "origin": int.from_bytes(raw[24:26], "little")}


def _psam(raw):
    """The PSAM a reader uses from here on (0x53): its terminal number, which the purchase
    records after it leave out, the station and the UTC offset of their local times."""
    station, offset = struct.unpack_from("<Hh", raw, 14)
    return {"seq": seq(raw), "terminal": raw[8:14].hex(), "station": station,
            "utc_offset_min": offset}


KINDS = {0x52: ("verdict", _verdict), 0x50: ("purchase", _purchase),
         0x51: ("purchase2", _purchase2), 0x53: ("psam", _psam)}
PROOFS = {0xFF: "-", 0: "unauthenticated", 1: "purchase"}  # verdict byte 26
VERDICTS = {1: "PASS", 2: "DENY", 3: "MANUAL", 4: "EVENT"}
MODES = {0: "normal", 1: "manual", 2: "emergency", 3: "closed"}


def check(raw):
    """None when `raw` is one whole record of a known kind with a good CRC, else the reason."""
    if len(raw) != REC:
        return PARTIAL
    if raw[0] not in KINDS:
        return BAD_MAGIC
    if zlib.crc32(raw[:28]) != int.from_bytes(raw[28:32], "little"):
        return BAD_CRC
    return None


def seq(raw):
    return int.from_bytes(raw[SEQ_OFF:SEQ_OFF + 4], "little")


def decode(raw):
    """A checked record -> dict of its fields (with "type": the kind's name)."""
    name, fn = KINDS[raw[0]]
    d = fn(raw)
    d["type"] = name
    return d


def _name(table, v):
    return table.get(v, str(v))


_REASONS = {}


def reason_names():
    """Reason code -> name, read from the firmware's own table (firmware/reasons.py) so the
    back office never keeps a second copy of the numbers."""
    if not _REASONS:
        src = Path(__file__).resolve().parents[2] / "firmware" / "reasons.py"
        ns = {}
        code = src.read_text(encoding="utf-8").replace("from micropython import const", "")
        exec(compile(code, str(src), "exec"), {"const": lambda x: x}, ns)  # noqa: S102
        skip = set(VERDICTS.values())
        _REASONS.update({v: k for k, v in ns.items()
                         if k.isupper() and isinstance(v, int) and k not in skip})
    return _REASONS


def make(seq_no, verdict=1, reason=0, mode=0, t=0, key=0, list_seq=0, kind=1, category=0,
         ms=0, station=0):
    """A verdict record exactly as firmware/journal.py writes it (for tests, bench, tools)."""
    body = struct.pack("<BBBBIIIIBBHH", 0x52, verdict, reason, mode, seq_no, t, key, list_seq,
                       kind, category, min(ms, 0xFFFF), station) + b"\xff\xff"
    return body + zlib.crc32(body).to_bytes(4, "little")
