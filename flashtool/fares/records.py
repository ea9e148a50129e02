"""The purchase records of a reader's journal (two 32-byte records, kinds 0x50 and 0x51, after
which the verdict record 0x52 follows; docs/reader.md), decoded for the back office."""

import zlib

T2020 = 1577836800
KINDS = (0x50, 0x51, 0x52)
F_CAPP, F_RECOVERED, F_UNCHECKED, F_EXIT, F_PENALTY = 1, 2, 4, 8, 16


def valid(rec):
    """A whole record of a known kind (magic and CRC-32 of bytes 0..27)."""
    return (len(rec) == 32 and rec[0] in KINDS
            and zlib.crc32(rec[:28]) == int.from_bytes(rec[28:32], "little"))


def seq(rec):
    return int.from_bytes(rec[4:8], "little")


def _s24(b):
    v = int.from_bytes(b, "little")
    return v - (1 << 24) if v & 0x800000 else v


def purchases(records):
    """[dict] of every purchase in `records` (raw, any order): a 0x50 record and the 0x51 that
    follows it by sequence number. A half without the other is reported with "incomplete"."""
    by_seq = {seq(r): r for r in records if valid(r)}
    out = []
    for s in sorted(by_seq):
        a = by_seq[s]
        if a[0] == 0x51 and (by_seq.get(s - 1) or b"\0")[0] != 0x50:
            out.append({"seq": s, "incomplete": True})
        if a[0] != 0x50:
            continue
        b = by_seq.get(s + 1)
        if b is None or b[0] != 0x51:
            out.append({"seq": s, "incomplete": True})
            continue
        local = int.from_bytes(a[24:28], "little")
        out.append({
            "seq": s, "flags": a[1], "alg": a[2], "key_version": a[3], "serial": a[8:16],
            "ttn": a[16:20], "tac": a[20:24], "local_s": local,
            "card_type": b[1], "kind": b[2], "terminal": b[8:14],
            "amount": int.from_bytes(b[14:17], "little"), "balance_after": _s24(b[17:20]),
            "counter": int.from_bytes(b[20:22], "little"),
            "station": int.from_bytes(b[22:24], "little"),
            "origin": int.from_bytes(b[24:26], "little"),
            "type": 0x09 if a[1] & F_CAPP else 0x06,
        })
    return out


def debit_time(p):
    """The BCD date (4) and time (3) the reader sent in the DEBIT (its local time)."""
    import time

    tm = time.gmtime(T2020 + p["local_s"])
    d = "%04d%02d%02d" % (tm.tm_year, tm.tm_mon, tm.tm_mday)
    t = "%02d%02d%02d" % (tm.tm_hour, tm.tm_min, tm.tm_sec)
    return bytes.fromhex(d), bytes.fromhex(t)


def verdicts(records):
    """[dict] of the verdict records (kind 0x52): seq, verdict, reason, time, key, kind,
    station, proof (byte 26: 0xFF not stated, 0 unauthenticated, 1 proven by a purchase)."""
    out = []
    for r in sorted((r for r in records if valid(r) and r[0] == 0x52), key=seq):
        out.append({"seq": seq(r), "verdict": r[1], "reason": r[2], "mode": r[3],
                    "time": int.from_bytes(r[8:12], "little"),
                    "key": int.from_bytes(r[12:16], "little"), "kind": r[20],
                    "station": int.from_bytes(r[24:26], "little"), "proof": r[26]})
    return out


def from_image(image, offset=0xC20000, size=0x200000, sector=4096):
    """Every valid record in a flash image's journal partition (a reader's flash dump, or the
    emulated reader's image file), by sequence number."""
    recs = {}
    with open(image, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    for base in range(0, size - 2 * sector, sector):
        if data[base:base + 4] != b"JRN1":
            continue
        for slot in range(1, sector // 32):
            r = data[base + slot * 32:base + slot * 32 + 32]
            if valid(r):
                recs[seq(r)] = r
    return [recs[k] for k in sorted(recs)]
