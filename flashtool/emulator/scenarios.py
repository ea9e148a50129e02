"""Generated gate traffic for the emulator's scenarios, and the summary of a run.

A scenario is a list of riders with arrival times (virtual seconds), the credential each one
presents, and the verdict the rider *should* get from the world's truth (their card's dates and
the lists the operator published). The run then compares that with what the reader decided
and recorded.
"""

import random
from dataclasses import dataclass, field

# rider profiles: (name, share of riders, credential kind, expected verdict with the health
# rule on, expected verdict with it off)
PROFILES = [
    ("card", 0.50, "cpu", "PASS", "PASS"),
    ("phone", 0.15, "phone", "PASS", "PASS"),
    ("code", 0.22, "code", "PASS", "PASS"),
    ("concession", 0.05, "cpu", "PASS", "PASS"),
    ("mifare", 0.02, "mifare", "PASS", "PASS"),
    ("health_hold", 0.010, "cpu", "DENY", "PASS"),
    ("health_unknown", 0.005, "cpu", "MANUAL", "PASS"),
    ("lost", 0.003, "cpu", "DENY", "DENY"),
    ("expired", 0.004, "cpu", "DENY", "DENY"),
    ("expired_code", 0.004, "code", "DENY", "DENY"),
    ("clash", 0.004, "cpu", "DENY", "DENY"),
]


@dataclass
class Rider:
    n: int
    t: float  # arrival, virtual seconds from the start
    profile: str
    kind: str
    expect: str


@dataclass
class Scenario:
    name: str
    riders: list
    health_rule: bool = True
    events: list = field(default_factory=list)  # (t, action) e.g. power cut, list push
    list_max_age_s: int = 24 * 3600


def riders(n, per_min=40.0, seed=2022, health_rule=True, start=5.0):
    rng = random.Random(seed)
    weights = [p[1] for p in PROFILES]
    out = []
    t = start
    for i in range(n):
        t += max(1.2, rng.expovariate(per_min / 60.0))  # nobody taps within 1.2 s of the last
        p = rng.choices(PROFILES, weights)[0]
        out.append(Rider(i, t, p[0], p[2], p[3] if health_rule else p[4]))
    return out


# Once the list is past its max age with the health rule on, nobody's health status is
# known: riders go to the manual check, except those refused before the health rule (card
# clash, expiry) or by a category whose stale action still denies (lost/stolen).
STALE_KEEPS = ("lost", "expired", "expired_code", "clash")


def build(name, n=2000, per_min=40.0, seed=2022, max_age_s=24 * 3600):
    """rush-hour: a peak at ~40/min. list-update: mid-peak a new list names riders who come
    later. power-cut: the supply fails twice mid-peak. hung-pn532: the NFC chip hangs a
    quarter of the way in. offline-day: no server for 26 hours at a quiet gate, so the list
    passes its max age and listed riders get the stale policy (`max_age_s` shortens the day
    for a quick run: the run lasts 26/24 of it)."""
    if name == "offline-day":
        rs = riders(n, per_min=n / (max_age_s * 26 / 24 / 60.0), seed=seed)
        # nobody in the minute either side of the list's expiry: the verdict there depends
        # on seconds of boot and provisioning time, not on the policy under test
        rs = [r for r in rs if abs(r.t - max_age_s) > 60]
        for r in rs:
            if r.t > max_age_s + 60 and r.profile not in STALE_KEEPS:
                r.expect = "MANUAL"
        return Scenario(name, rs, list_max_age_s=max_age_s)
    rs = riders(n, per_min, seed)
    sc = Scenario(name, rs)
    end = rs[-1].t if rs else 0
    if name == "list-update":
        sc.events.append((end / 2, "push-list"))
        late = [r for r in rs if r.t > end / 2 + 30 and r.profile == "card"]
        for r in late[:: max(1, len(late) // max(1, n // 100))]:
            r.profile, r.expect = "lost_late", "DENY"  # reported lost in the new list
    elif name == "power-cut":
        sc.events += [(end / 3, "power-cut"), (2 * end / 3, "power-cut")]
    elif name == "hung-pn532":
        sc.events.append((end / 4, "hang-pn532"))
    elif name != "rush-hour":
        raise ValueError("unknown scenario %r" % name)
    return sc


NAMES = ("rush-hour", "offline-day", "list-update", "power-cut", "hung-pn532")


def percentile(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarise(sc, results, records, heap_low=None):
    """results: [(rider, verdict, reason, latency_ms, cpu_ms)]; records: journal records found
    after the run (count). Returns ordered (label, value) rows."""
    by_reason = {}
    wrongful = 0
    for rider, verdict, reason, _lat, _cpu in results:
        by_reason[(verdict, reason)] = by_reason.get((verdict, reason), 0) + 1
        if rider.expect == "PASS" and verdict != "PASS":
            wrongful += 1
    lat = [r[3] for r in results if r[3] is not None]
    cpu = [r[4] for r in results if r[4] is not None]
    wire = [a - b for a, b in zip(lat, cpu)]
    rows = [
        ("scenario", sc.name),
        ("riders", len(sc.riders)),
        ("verdicts", len(results)),
        ("missed verdicts (no answer to a tap)", len(sc.riders) - len(results)),
        ("journal records", records),
        ("missed records", max(0, len(results) - records)),
        ("wrongful denials (should pass, did not)", wrongful),
    ]
    for (v, reason), c in sorted(by_reason.items(), key=lambda x: -x[1]):
        rows.append(("  %s / %s" % (v, reason), c))
    est = [c * 50 + w for c, w in zip(cpu, wire)]
    for p in (50, 95, 99):
        rows.append(("tap→verdict p%d host: CPU + modelled wire/RF (ms)" % p,
                     "%.1f (CPU %.1f)" % (percentile(lat, p), percentile(cpu, p))))
    for p in (50, 95, 99):
        rows.append(("tap→verdict p%d ESP32 est. (CPU×50 + wire/RF, ms)" % p,
                     "%.1f" % percentile(est, p)))
    if heap_low is not None:
        rows.append(("heap low-water mark (gc.mem_free, bytes)", heap_low))
    return rows
