"""The back office's check of what readers charged (`flash.py settle`): every purchase's TAC
verified with the issuer's TAC master keys (the readers and PSAMs never hold them), and a
settlement summary: fares per station and card type, TAC failures, incomplete records,
purchases finished by GET TRANSACTION PROVE.

Records come as the readers uploaded them (32-byte records with their kind and CRC; pairing
by sequence number per reader and journal epoch): from the station server's store (its SQLite
file or a PostgreSQL DSN), from raw record files (`<reader>.bin`: concatenated records), or
from readers' flash images (the journal partition).
"""

from collections import defaultdict
from pathlib import Path

from flashtool import use_host_board
from flashtool.fares import records

use_host_board()

from sim import pboc  # noqa: E402  (the purchase cryptography, written once)

CARD_TYPES = {1: "normal", 5: "student", 6: "elderly"}


def load(db=None, raw=(), images=()):
    """{reader (or reader/epoch): [raw records]} from the given sources."""
    out = defaultdict(list)
    if db:
        from flashtool.server.store import open_store

        store = open_store(db)
        conn = store.connect()
        try:
            for rid in store.fleet(conn):
                for epoch, _seq, rec in store.records_of(conn, rid):
                    out["%s/%d" % (rid, epoch)].append(rec)
        finally:
            conn.close()
    for p in raw:
        data = Path(p).read_bytes()
        out[_name(out, p)] = [data[i:i + 32] for i in range(0, len(data) - 31, 32)]
    for p in images:
        out[_name(out, p)] = records.from_image(p)
    return dict(out)


def _name(have, path):
    """A reader's name from its file (the path itself when two files share a name)."""
    stem = Path(path).stem
    return stem if stem not in have else str(path)


def tac_ok(p, issuer):
    key = issuer.tac.get((p["key_version"], p["alg"]))
    if key is None:
        return False
    dtk = pboc.diversify(p["alg"], key, p["serial"])
    date, time = records.debit_time(p)
    return pboc.tac(p["alg"], dtk, p["amount"], p["type"], p["terminal"], p["ttn"], date,
                    time) == p["tac"]


def settle(by_reader, issuer):
    """The summary as a dict: totals, per (station, card type), failures, incomplete."""
    rows = defaultdict(lambda: [0, 0])
    fails, incomplete = [], []
    n = amount = recovered = unchecked = bad_crc = 0
    for rid, recs in sorted(by_reader.items()):
        bad_crc += sum(1 for r in recs if records.valid(r) is not None)
        for p in records.purchases(recs):
            if p.get("incomplete"):
                incomplete.append((rid, p["seq"]))
                continue
            if not tac_ok(p, issuer):
                fails.append((rid, p["seq"], p["serial"].hex(), p["amount"]))
                continue
            n += 1
            amount += p["amount"]
            recovered += bool(p["flags"] & records.F_RECOVERED)
            unchecked += bool(p["flags"] & records.F_UNCHECKED)
            r = rows[(p["station"], p["card_type"])]
            r[0] += 1
            r[1] += p["amount"]
    return {"readers": len(by_reader), "purchases": n, "amount": amount,
            "by_station": {k: tuple(v) for k, v in sorted(rows.items())},
            "tac_failures": fails, "incomplete": incomplete, "recovered": recovered,
            "unchecked": unchecked, "bad_records": bad_crc}


def report(s):
    """The summary as text lines."""
    lines = ["settlement: %d purchases with a valid TAC from %d readers, %.2f yuan" % (
        s["purchases"], s["readers"], s["amount"] / 100),
        "%-8s %-12s %10s %12s" % ("station", "card type", "purchases", "yuan")]
    for (station, ct), (k, fen) in s["by_station"].items():
        lines.append("%-8d %-12s %10d %12.2f" % (station, "%d %s" % (ct, CARD_TYPES.get(ct, "")),
                                                 k, fen / 100))
    lines.append("TAC failures: %d" % len(s["tac_failures"]))
    for rid, seq, serial, fen in s["tac_failures"][:20]:
        lines.append("  reader %s seq %d card %s amount %.2f" % (rid, seq, serial, fen / 100))
    lines.append("incomplete purchase records: %d; finished by GET TRANSACTION PROVE: %d; "
                 "MAC2 unchecked: %d; records failing their CRC: %d" % (
                     len(s["incomplete"]), s["recovered"], s["unchecked"], s["bad_records"]))
    return lines
