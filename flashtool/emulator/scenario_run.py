"""Replay a generated scenario on the emulated reader in accelerated time, then audit it.

Riders arrive at exact virtual instants (the world scheduler runs on the reader's clock); each
verdict line the firmware prints is matched to the rider in front of the gate. After the run
the journal is read back from flash by the reader itself (a fresh boot) and every record's CRC
and sequence checked, so "missed records" counts what a back office would really miss.
"""

import bisect
import re
import textwrap
import time

from flashtool.emulator import report, scenarios
from flashtool.emulator.station import Station
from sim import cards
from sim.runner import HEAPSIZE, INTERPRETER

VERDICT = re.compile(r"^I (\d+) gate verdict seq=(\d+) kind=(\d+) verdict=(\w+) reason=(\w+) "
                     r"ms=(\d+)")
AUDIT = '''
import board, app, journal, gc, reasons

def run():
    j = journal.Journal(app.journal_partition(board))
    n = verdicts = 0
    last = 0
    start = 1
    while True:
        batch = j.records(start, 64)
        if not batch:
            break
        for r in batch:
            seq = journal.decode(r)[0]
            if seq != last + 1 and last:
                print("AUDIT gap", last, seq)
            last = seq
            n += 1
            if r[1] != reasons.EVENT:  # mode changes are records too
                verdicts += 1
        start = last + 1
        gc.collect()
    print("AUDIT records", n, "verdicts", verdicts, "last", last)
'''
HEAP = re.compile(r" free=(\d+)")


def _rider_action(st, rider):
    """What this rider does at the gate (called on the reader's clock, in the scheduler)."""
    n = rider.n
    p = rider.profile
    num = "3104%012d" % (100000 + n)
    passes = rider.expect == "PASS"

    def tap(card, hold_ms=600):
        st.nfc.field.present(card)
        st.nfc.field.remove(card, delay_ms=hold_ms)
        if passes:
            st.gate.rider_will_pass()

    if p in ("card", "health_hold", "health_unknown", "lost", "lost_late"):
        return lambda now: tap(cards.normal(num))
    if p == "phone":
        return lambda now: tap(cards.phone(num, seed=n))
    if p == "concession":
        return lambda now: tap(cards.concession(num))
    if p == "mifare":
        return lambda now: tap(cards.classic("%08d" % (10000000 + n), expiry=20991231))
    if p == "expired":
        return lambda now: tap(cards.expired(num))
    if p == "clash":
        return lambda now: (tap(cards.normal(num)), tap(cards.normal("3104%012d" % n)))
    if p in ("code", "expired_code"):
        kind = "valid" if p == "code" else "expired"

        def show(now):
            text = st.code_text(kind, account="R-%06d" % n)
            st.qr.show(text)
            st.sched.after(1200_000, lambda t: st.qr.hide(text))
            if passes:
                st.gate.rider_will_pass()

        return show
    raise ValueError(p)


def listed(sc, late=False):
    """Blocklist entries for the scenario's listed riders (`late`: those of the new list)."""
    cat = {"health_hold": 4, "health_unknown": 5, "lost": 1}
    if late:
        cat["lost_late"] = 1
    return [(1, b"3104%012d" % (100000 + r.n), cat[r.profile]) for r in sc.riders
            if r.profile in cat]


def run_scenario(name, riders=2000, workdir="var/scenario", nfc="hsu", progress=print,
                 max_age_s=24 * 3600):
    sc = scenarios.build(name, riders, max_age_s=max_age_s)
    # the access-control scenarios (fares have their own: flashtool/fares/scenario.py)
    st = Station(workdir, nfc=nfc, accelerated=True, fresh=True, health_rule=sc.health_rule,
                 fares=False)
    st.list_max_age_s = sc.list_max_age_s
    lines = []
    st.reader.listeners.append(lines.append)
    idle = IdleSeries(st.hw)
    try:
        st.provision(extra=listed(sc))
        st.start()
        t0 = st.hw.now_us
        for r in sc.riders:
            st.sched.at(t0 + int(r.t * 1e6), _rider_action(st, r))
        for t, what in sc.events:
            st.sched.at(t0 + int(t * 1e6), lambda now, w=what: _event(st, w))
        results, missed = _collect(st, sc, lines, progress, t0, idle)
        st.reader.stop()
        code, out = st.reader.run(entry="audit", extra_path=_audit_dir(st), timeout=300)
        audit = [x for x in out if x.startswith("AUDIT")]
        records = int(audit[-1].split()[4]) if audit and "records" in audit[-1] else 0  # verdicts
        gaps = [x for x in audit if "gap" in x]
        heap = [int(m[1]) for m in (HEAP.search(x) for x in lines) if m]
        rows = scenarios.summarise(sc, results, records, min(heap) if heap else None)
        rows.append(("journal sequence gaps", len(gaps)))
        if missed:
            rows.append(("unanswered riders", ", ".join("%s@%.0fs" % (r.profile, r.t)
                                                        for r in missed[:10])))
        return sc, results, rows, lines
    finally:
        st.close()


def _event(st, what):
    if what == "hang-pn532":
        st.nfc.faults.hang = True
    # power cuts and list pushes need the reader stopped: _collect performs them between riders
    st.pending_event = what


def _audit_dir(st):
    d = st.dir / "audit"
    d.mkdir(exist_ok=True)
    (d / "audit.py").write_text(textwrap.dedent(AUDIT))
    return d


class IdleSeries:
    """The reader's skipped (idle) virtual time as it reported it on each request: the part of a
    tap spent waiting for wire and RF, as opposed to running firmware code."""

    def __init__(self, hw):
        self.t = [0]
        self.v = [0]
        self.hw = hw
        hw.hooks.append(self._note)

    def _note(self, now):
        if self.hw.idle_us != self.v[-1]:
            self.t.append(now)
            self.v.append(self.hw.idle_us)

    def at(self, t_us):
        return self.v[max(0, bisect.bisect_right(self.t, t_us) - 1)]

    def split(self, end_ms, ms):
        """(cpu_ms, wait_ms) of a latency of `ms` ending at virtual `end_ms`."""
        wait = (self.at(end_ms * 1000) - self.at((end_ms - ms) * 1000)) / 1000.0
        wait = min(max(wait, 0.0), ms)
        return ms - wait, wait


STALL_S = 120


def _collect(st, sc, lines, progress, t0_us, idle):
    """Match each verdict line to the rider at the gate: the earliest unanswered rider who
    arrived before it (within 5 s). Crew events run between lines. Returns the results and
    the riders who never got an answer."""
    results = []
    waiting = list(sc.riders)  # in arrival order
    missed = []
    seen = 0
    span = sc.riders[-1].t if sc.riders else 0
    # A reader that stops making progress (no line, no virtual time) for STALL_S of wall time is
    # hung: give up. A slow host only stretches the wall time, never the verdicts (the virtual
    # clock follows the reader's CPU time), so the limit is on stalls, not on the whole run.
    stall_at = time.monotonic() + STALL_S
    progress_mark = None
    end_ms = t0_us / 1000 + span * 1000 + 5000
    st.pending_event = None
    last_ms = 0
    drain = None  # len(lines) when the reader was asked for its status after the last rider
    while waiting and time.monotonic() < stall_at:
        mark = (len(lines), st.hw.now_us)
        if mark != progress_mark:
            progress_mark, stall_at = mark, time.monotonic() + STALL_S
        ev, st.pending_event = st.pending_event, None
        if ev == "power-cut":
            st.power_cut_and_reboot()
        elif ev == "push-list":
            st.push_list(extra=listed(sc, late=True))
        new = lines[seen:]
        seen += len(new)
        for line in new:
            m = VERDICT.match(line)
            if not m:
                continue
            v_ms = int(m[1])
            last_ms = max(last_ms, v_ms)
            while waiting and t0_us / 1000 + waiting[0].t * 1000 < v_ms - 5000:
                missed.append(waiting.pop(0))
            if waiting and t0_us / 1000 + waiting[0].t * 1000 <= v_ms:
                ms = int(m[6])
                cpu, _wait = idle.split(v_ms, ms)
                results.append((waiting.pop(0), m[4], m[5], ms, cpu))
                if progress and len(results) % 250 == 0:
                    progress("  %d/%d riders" % (len(results), len(sc.riders)))
        if max(last_ms, st.hw.now_us / 1000) > end_ms:
            if new:
                continue
            # Past the last rider. The reader's lines reach us after an unknown number of its
            # link requests (more on a loaded host), so a verdict may still be in the pipe: ask
            # for its status on the console and end once the answer's log line is in, as every
            # line printed before it is then in too (one pipe keeps their order).
            if drain is None:
                st.hw.maintenance("status")
                drain = len(lines)
            elif any(" maint status -> " in x for x in lines[drain:]):
                break
        if not new:
            if st.reader.proc.poll() is not None and ev is None:
                st.start()  # the reader reset itself (watchdog): the world boots it again
            time.sleep(0.01)
    return results, missed + waiting


def main(args):
    t = time.time()
    print("scenario %s: %d riders, accelerated time" % (args.scenario, args.riders))
    sc, results, rows, lines = run_scenario(args.scenario, args.riders,
                                            workdir=args.dir + "-" + args.scenario, nfc=args.nfc)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print("%s  %s" % (k.ljust(width), v))
    print("(host wall time %.0f s)" % (time.time() - t))
    if args.report:
        write_report(args.report, sc, results, rows, lines)
        print("report: %s" % args.report)
    return 0


def write_report(path, sc, results, rows, lines):
    lat = [r[3] for r in results]
    per_min = {}
    for r in results:
        m = int(r[0].t // 60)
        per_min[m] = per_min.get(m, 0) + 1
    mix = {}
    for r in results:
        key = "%s %s" % (r[1], r[2])
        mix[key] = mix.get(key, 0) + 1
    heap = []
    for x in lines:
        m = HEAP.search(x)
        if m and x[2:].split()[0].isdigit():
            heap.append((int(x.split()[1]) / 1000.0, int(m[1])))
    if heap:
        h0 = heap[0][0]
        heap = [(t - h0, v) for t, v in heap]
    figs = [
        report.histogram(lat, "tap → verdict latency (virtual ms: CPU + wire/RF)", "ms"),
        report.lines({"taps": sorted(per_min.items())}, "taps per minute", "minute", "taps"),
        report.bars(dict(sorted(mix.items(), key=lambda x: -x[1])), "verdict mix"),
        report.lines({"gc.mem_free": heap}, "heap free over time", "s", "bytes"),
    ]
    notes = ["Replayed on the MicroPython unix port (%s, app heap %s) running the "
             "firmware on the emulated board in accelerated virtual time. ESP32 estimates: host "
             "CPU x 50 + modelled wire/RF time (the old rule; counted figures: flash.py bench "
             "device)." % (INTERPRETER, HEAPSIZE)]
    with open(path, "w", encoding="utf-8") as f:
        f.write(report.page("Scenario %s" % sc.name, rows, figs, notes))
