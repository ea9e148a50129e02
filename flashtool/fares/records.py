"""The purchases in readers' journals, for the back office: a purchase is two records (kinds
0x50 and 0x51, consecutive sequence numbers; the second carries the tap's verdict) and takes
its terminal number from the PSAM record (0x53) before it (docs/reader.md); checked and
decoded by the station server's record module (flashtool/server/records.py), paired here."""

import time

from flashtool.server import records as srv

T2020 = 1577836800
F_CAPP, F_RECOVERED, F_UNCHECKED, F_EXIT, F_PENALTY = 1, 2, 4, 8, 16
valid = srv.check  # None when whole, of a known kind, CRC good
seq = srv.seq


def purchases(records):
    """[dict] of every purchase in one journal's `records` (raw, any order): the fields of
    both halves, serial/ttn/tac/terminal as bytes. A half without the other is reported as
    {"seq", "incomplete": True}."""
    by_seq = {seq(r): r for r in records if valid(r) is None}
    out = []
    psam = None
    for s in sorted(by_seq):
        r = by_seq[s]
        if r[0] == 0x53:
            psam = srv.decode(r)
        if r[0] == 0x51 and by_seq.get(s - 1, b"\0")[0] != 0x50:
            out.append({"seq": s, "incomplete": True})
        if r[0] != 0x50:
            continue
        b = by_seq.get(s + 1)
        old = b is not None and b[0] == 0x51 and b[3] == 0xFF  # its terminal in it (0x51)
        if b is None or b[0] != 0x51 or (psam is None and not old):
            out.append({"seq": s, "incomplete": True})
            continue
        p = srv.decode(b)
        p.update(srv.decode(r))
        if not old:
            p["terminal"] = psam["terminal"]
            p["utc_offset_min"] = psam["utc_offset_min"]
        for k in ("serial", "ttn", "tac", "terminal"):
            p[k] = bytes.fromhex(p[k])
        p["type"] = 0x09 if p["flags"] & F_CAPP else 0x06
        out.append(p)
    return out


def debit_time(p):
    """The BCD date (4) and time (3) the reader sent in the DEBIT (its local time)."""
    tm = time.gmtime(T2020 + p["local_s"])
    return (bytes.fromhex("%04d%02d%02d" % (tm.tm_year, tm.tm_mon, tm.tm_mday)),
            bytes.fromhex("%02d%02d%02d" % (tm.tm_hour, tm.tm_min, tm.tm_sec)))


def verdicts(records):
    """Every tap's verdict, by sequence number: the verdict records (0x52) and the purchase
    records that carry one (0x51; time from the purchase's local time and the PSAM record's
    offset; no list version or category: proof "purchase" stands for them)."""
    out = []
    for p in purchases(records):
        if not p.get("incomplete") and p["verdict"]:
            out.append({"seq": p["seq"] + 1, "time": T2020 + p["local_s"]
                        - 60 * p["utc_offset_min"], "key": p["key"], "verdict": p["verdict"],
                        "reason": p["reason"], "mode": p["mode"], "list": None,
                        "kind": p["kind"], "category": None, "ms": p["ms"],
                        "station": p["station"],
                        "proof": "unauthenticated" if p["flags"] & F_UNCHECKED else "purchase"})
    out += [srv.decode(r) for r in records if valid(r) is None and r[0] == 0x52]
    return sorted(out, key=lambda v: v["seq"])


def from_image(image, offset=0xC20000, size=0x230000, sector=4096):
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
            if valid(r) is None:
                recs[seq(r)] = r
    return [recs[k] for k in sorted(recs)]
