"""Build the reader's fare table (`fares.bin`, format in firmware/fares.py) from a spec, and
price journeys on the host with the same rules (the reader's code prices on the gate; this is
the back office's independent statement of the same table, used by audits and tests).

Spec (JSON or dict):
    {"lines": {"1": [[101, 0.0], [102, 1.9], ...], ...},   station id, km along the line;
     "bands": [[6, 3], [12, 4], [22, 5], [32, 6]],          up to km -> fare in yuan
     "beyond": [20, 1],                                      +1 yuan per 20 km after that
     "concessions": {"5": 50, "6": 0},                       card type -> percent paid
     "entry_charge": 0, "cap": 0, "penalty": 8, "transfer_min": 0,
     "max_trip_min": 240, "overtime": 3, "flat": 2,          yuan (penalty: no entry record;
     "min_balance": 3}                                       min_balance: needed to enter)
A station on two lines is an interchange; distances are shortest paths over the lines.
"""

import heapq
import json
import struct

MAGIC = b"FAR1"
NO_ROUTE = 0xFFFF

# Beijing subway fares since 2014-12-28 (transit-domain.md §5.1): 3 yuan up to 6 km, 4 up to
# 12, 5 up to 22, 6 up to 32, then +1 per 20 km; 4 h in the paid area. Demo network: three
# short lines crossing at 103 and 202.
DEMO = {
    "lines": {
        "1": [[101, 0.0], [102, 2.1], [103, 4.0], [104, 7.3], [105, 10.2], [106, 14.8]],
        "2": [[201, 0.0], [103, 3.2], [202, 6.0], [203, 11.5], [204, 19.0], [205, 31.0]],
        "3": [[301, 0.0], [202, 2.5], [302, 9.0], [303, 26.0], [304, 48.0]],
    },
    "bands": [[6, 3], [12, 4], [22, 5], [32, 6]],
    "beyond": [20, 1],
    "concessions": {"5": 50, "6": 0},  # student half fare, elderly free
    "entry_charge": 0,
    "cap": 0,
    "penalty": 8,
    "transfer_min": 0,
    "max_trip_min": 240,
    "overtime": 3,
    "flat": 2,
    "min_balance": 3,  # the lowest fare: a card with less cannot pay its way out
}


def fen(yuan):
    return int(round(float(yuan) * 100))


def distances(spec):
    """{(a, b): distance in 100 m units} over every station pair with a route."""
    adj = {}
    for stops in spec["lines"].values():
        for (a, ka), (b, kb) in zip(stops, stops[1:]):
            d = int(round(abs(kb - ka) * 10))
            adj.setdefault(a, []).append((b, d))
            adj.setdefault(b, []).append((a, d))
    out = {}
    for src in adj:
        best = {src: 0}
        q = [(0, src)]
        while q:
            d, s = heapq.heappop(q)
            if d > best.get(s, 1 << 30):
                continue
            for t, w in adj[s]:
                if d + w < best.get(t, 1 << 30):
                    best[t] = d + w
                    heapq.heappush(q, (d + w, t))
        for t, d in best.items():
            out[(src, t)] = d
    return out


def stations(spec):
    return sorted({s for stops in spec["lines"].values() for s, _ in stops})


def build(spec, version):
    """The binary table (bytes)."""
    ids = stations(spec)
    if not ids or len(ids) > 4096 or any(not 0 < s < 0xFFFF for s in ids):
        raise ValueError("station ids must be 1..65534, at most 4096 stations")
    dist = distances(spec)
    bands = [(int(round(km * 10)), fen(y)) for km, y in spec["bands"]]
    if [b[0] for b in bands] != sorted({b[0] for b in bands}) or not 1 <= len(bands) <= 32:
        raise ValueError("bands must ascend (1 to 32 of them)")
    step, add = spec.get("beyond", [0, 0])
    conc = sorted((int(t), int(p)) for t, p in spec.get("concessions", {}).items())
    head = struct.pack(">4sIHBBHHHHHHHHHH", MAGIC, version, len(ids), len(bands), len(conc),
                       fen(spec.get("entry_charge", 0)), fen(spec.get("cap", 0)),
                       fen(spec.get("penalty", 0)), int(spec.get("transfer_min", 0)) * 60,
                       int(spec.get("max_trip_min", 0)), fen(spec.get("overtime", 0)),
                       int(round(step * 10)), fen(add), fen(spec.get("flat", 0)),
                       fen(spec.get("min_balance", 0)))
    body = b"".join(struct.pack(">HH", *b) for b in bands)
    t = b"".join(struct.pack(">BB", *c) for c in conc)
    body += t + (b"\0\0" if len(t) & 2 else b"")
    body += b"".join(struct.pack(">H", s) for s in ids)
    for exit_ in ids:
        body += b"".join(struct.pack(">H", min(dist.get((exit_, s), NO_ROUTE), NO_ROUTE))
                         for s in ids)
    return head + body


def price(spec, origin, dest, card_type=1, journey_s=0):
    """What a reader at `dest` charges for a journey from `origin` (fen), or None."""
    d = distances(spec).get((dest, origin))
    if d is None:
        return None
    fare = None
    for km, y in spec["bands"]:
        if d <= int(round(km * 10)):
            fare = fen(y)
            break
    if fare is None:
        last_km, last = spec["bands"][-1]
        step, add = spec.get("beyond", [0, 0])
        fare = fen(last)
        s = int(round(step * 10))
        if s:
            fare += (d - int(round(last_km * 10)) + s - 1) // s * fen(add)
    pct = dict((int(k), int(v)) for k, v in spec.get("concessions", {}).items())
    fare = fare * pct.get(card_type, 100) // 100
    cap = fen(spec.get("cap", 0))
    if cap and fare > cap:
        fare = cap
    if spec.get("max_trip_min") and journey_s > int(spec["max_trip_min"]) * 60:
        fare += fen(spec.get("overtime", 0))
    return fare


def load_spec(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def publish(out, spec, version, key, board="host", days=365):
    """Build the table and sign it as a `fares` manifest with the list key (the same
    signature and delivery as the lists): out/fares.sm and out/blobs/<sha>. Returns the
    manifest path and the table bytes."""
    from pathlib import Path

    from flashtool.release.sign import sign_files

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = build(spec, version)
    src = out / "fares.bin"
    src.write_bytes(data)
    return sign_files(out, "fares", "fares", version, {"fares.bin": src}, key, board=board,
                      days=days), data
