"""The decision core: credential + lists + clock + reader state -> verdict and reason code.

Pure and deterministic (no board, no I/O): the same table of cases runs on CPython and on the
MicroPython build. `decide()` allocates nothing, so a tap never waits on the garbage collector.
Order (transit-domain.md §9 R7): lane mode, card clash, credential validity (read error, media,
card type, expiry, concession), list categories, health rule, anti-passback, pass.
"""

from array import array

import reasons as R
from civildate import ymd
from credential import KIND_CODE, KIND_CPU, KIND_MIFARE, KIND_PHONE
from micropython import const

MODE_NORMAL = const(0)
MODE_MANUAL = const(1)  # manual-check lane: health rule off, every other category on
MODE_EMERGENCY = const(2)  # emergency release: gate open, every tap passes
MODE_CLOSED = const(3)  # closed / out of service
MODES = ("normal", "manual", "emergency", "closed")

_ACTIONS = {"deny": R.DENY, "manual": R.MANUAL, "pass": R.PASS}
_NO_SLOT = const(-(1 << 29))


class DecisionError(ValueError):
    """A bad policy value (unknown mode or action name)."""

    def __init__(self, what, value):
        super().__init__("%s: %r" % (what, value))
        self.code = 22  # EINVAL


def mode_number(name):
    for i in range(len(MODES)):
        if MODES[i] == name:
            return i
    raise DecisionError("unknown lane mode", name)


def cred_key(cred):
    """30-bit FNV-1a of namespace + identifier, computed in 16-bit halves so that every
    intermediate stays a small int on a 32-bit port (no allocation)."""
    hi = 0x811C
    lo = 0x9DC5
    b = cred.namespace()
    n = cred.number_len
    num = cred.number
    i = -1
    while i < n:
        if i >= 0:
            b = num[i]
        lo ^= b
        # h * 0x01000193 mod 2**32, split as (hi, lo)
        t = lo * 0x193
        hi = (hi * 0x193 + (lo << 8) + (t >> 16)) & 0xFFFF
        lo = t & 0xFFFF
        i += 1
    key = ((hi & 0x3FFF) << 16) | lo
    return key if key else 1


def _action(value):
    """A category action: the list header's number (1 pass, 2 deny, 3 manual: the verdict
    numbers) or a config name. Anything else denies: a listed category is there to stop
    someone."""
    if value == R.PASS or value == R.DENY or value == R.MANUAL:
        return value
    return _ACTIONS.get(value, R.DENY)


class Decider:
    """One per reader. After `decide()`: `verdict`, `reason`, `category` (list category hit,
    0 = none) and `key` (the credential hash journalled and used for passback)."""

    def __init__(self, cfg, code_errors=None, slots=64):
        if slots < 4 or slots & 3:
            raise DecisionError("passback slots (multiple of 4)", slots)
        self.mode = mode_number(cfg["lane_mode"])
        self.station = cfg["station_id"]
        self.health_rule = cfg["health_rule"]
        self.passback_s = cfg["passback_s"]
        self.mifare_allowed = cfg["mifare_allowed"]
        self.card_types = cfg.get("card_types") or None
        self.offset_s = cfg.get("utc_offset_min", 480) * 60
        self.no_list = _action(cfg.get("no_list_action", "manual"))
        self.code_errors = code_errors or {}
        self.lists = None
        self._policy = {}
        self._stale_health = None
        self._pass_set = False
        self._day_lo = self._day_hi = 0  # UTC seconds the cached date covers: [lo, hi)
        self._today = 0
        self._slots = slots
        self._keys = array("i", [0] * slots)
        self._times = array("i", [0] * slots)
        self._stations = array("i", [0] * slots)
        self.verdict = 0
        self.reason = 0
        self.category = 0
        self.key = 0

    def use_lists(self, lists):
        """Install the active list store (or None) and precompute its category policies."""
        self.lists = lists
        self._policy = {}
        self._stale_health = None
        self._pass_set = False
        if lists is None:
            return
        for cid in sorted(lists.categories):
            _, action, stale_action, health = lists.categories[cid]
            p = (_action(action), _action(stale_action), bool(health))
            self._policy[cid] = p
            if health & 2:  # lib/blocklist fmt.FLAG_PASS_SET: the list names who has info
                self._pass_set = True
            if health and p[1] != R.PASS and self._stale_health is None:
                self._stale_health = p

    def set_mode(self, mode):
        self.mode = mode

    def _set(self, verdict, reason):
        self.verdict = verdict
        self.reason = reason
        return verdict

    def _date(self, now_s):
        """Today (YYYYMMDD) in the station's time zone, recomputed only when now_s leaves the
        cached day: UTC seconds are beyond a 32-bit port's small ints, so arithmetic on them
        allocates there, and a comparison does not."""
        if self._day_lo <= now_s < self._day_hi:
            return self._today
        days = (now_s + self.offset_s) // 86400
        self._today = ymd(days)
        self._day_lo = days * 86400 - self.offset_s
        self._day_hi = self._day_lo + 86400
        return self._today

    def decide(self, cred, now_s, mono_s):
        """now_s: trusted UTC seconds or None; mono_s: monotonic seconds (passback clock)."""
        self.category = 0
        self.key = key = cred_key(cred)
        mode = self.mode
        if mode == MODE_EMERGENCY:
            return self._set(R.PASS, R.EMERGENCY)
        if mode == MODE_CLOSED:
            return self._set(R.DENY, R.CLOSED)
        if cred.clash:
            return self._set(R.DENY, R.MULTI_CARD)
        kind = cred.kind
        if kind == KIND_CODE:
            if cred.error:
                reason = self.code_errors.get(cred.error, R.CODE_INVALID)
                return self._set(R.MANUAL if reason == R.NO_TIME else R.DENY, reason)
            if now_s is None:
                return self._set(R.MANUAL, R.NO_TIME)
        elif cred.error:
            return self._set(R.DENY, R.CARD_FAULT)
        if kind != KIND_CPU and kind != KIND_PHONE and kind != KIND_CODE:
            if kind != KIND_MIFARE or not self.mifare_allowed:
                return self._set(R.DENY, R.CARD_TYPE)
        if cred.number_len == 0:
            return self._set(R.DENY, R.CARD_FAULT)
        if kind != KIND_CODE and self.card_types and cred.card_type not in self.card_types:
            return self._set(R.DENY, R.CARD_TYPE)
        if now_s is not None:
            today = self._date(now_s)
            if cred.valid_to and today > cred.valid_to:
                return self._set(R.DENY, R.EXPIRED)
            if cred.valid_from and today < cred.valid_from:
                return self._set(R.DENY, R.NOT_YET_VALID)
            if cred.concession_to and today > cred.concession_to:
                return self._set(R.DENY, R.CONCESSION_EXPIRED)
        if self._lists(cred, now_s, mode):
            return self.verdict
        if self.passback_s and self._seen(key, mono_s):
            return self._set(R.DENY, R.PASSBACK)
        return self._set(R.PASS, R.OK)

    def _lists(self, cred, now_s, mode):
        """Categories then the health rule; True when they settle the verdict. A hit takes
        its category's action, or its stale action once the list is past its max age (or the
        time is unknown), as the list header says (lib/blocklist ListStore.action)."""
        health_on = self.health_rule and mode == MODE_NORMAL
        lists = self.lists
        if lists is None:
            if health_on:
                return self._set(R.MANUAL, R.NO_HEALTH_INFO)
            if self.no_list != R.PASS:
                return self._set(self.no_list, R.NO_LIST)
            return False
        cat = lists.lookup(cred.namespace(), cred.number, cred.number_len)
        stale = now_s is None or lists.is_stale(now_s)
        p = None
        act = R.PASS
        if cat:
            self.category = cat
            p = self._policy.get(cat)
            if p is None:
                return self._set(R.DENY, R.BLACKLISTED)
            act = p[1] if stale else p[0]
            if not p[2] and act != R.PASS:
                if act == R.DENY:
                    return self._set(R.DENY, R.BLACKLISTED)
                return self._set(R.MANUAL, R.LIST_STALE if stale and p[0] != R.MANUAL
                                 else R.LIST_MANUAL)
        if not health_on:
            return False
        if p is not None and p[2] and act != R.PASS:
            return self._set(act, R.HEALTH_ABNORMAL if act == R.DENY else R.NO_HEALTH_INFO)
        if stale and self._stale_health is not None:
            # health status unknown for everyone while the health list is out of date
            return self._set(self._stale_health[1], R.NO_HEALTH_INFO)
        if self._pass_set and (p is None or not p[2]):
            # the list is the pass-set of credentials with health information: not in it,
            # no information (docs/blocklist.md, "Pass-set or manual-set")
            return self._set(R.MANUAL, R.NO_HEALTH_INFO)
        return False

    def _seen(self, key, mono_s):
        base = (key % (self._slots >> 2)) << 2
        keys = self._keys
        times = self._times
        for i in range(base, base + 4):
            if (keys[i] == key and self._stations[i] == self.station
                    and mono_s - times[i] < self.passback_s):
                return True
        return False

    def admit(self, mono_s):
        """The last decided credential went through: start its passback window."""
        self.admit_key(self.key, mono_s)

    def admit_key(self, key, mono_s):
        """The credential with this hash went through (decided earlier: the fare path)."""
        base = (key % (self._slots >> 2)) << 2
        keys = self._keys
        times = self._times
        slot = base
        oldest = times[base] if keys[base] else _NO_SLOT
        for i in range(base, base + 4):
            if keys[i] == key:
                slot = i
                break
            t = times[i] if keys[i] else _NO_SLOT
            if t < oldest:
                oldest = t
                slot = i
        keys[slot] = key
        times[slot] = mono_s
        self._stations[slot] = self.station
