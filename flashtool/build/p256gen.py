"""Writes lib/p256/p256/vm.py: the P-256 field arithmetic as one @micropython.viper function,
the point formulas as programs for it, and the precomputed generator tables.

Why generated: a field product is 400 limb products whose indices must be constants for the
native emitter to load each with one instruction (a loop costs several times as much), and the
programs and tables are easiest to build and check where Python's big integers are at hand.
Run `python -m flashtool.build.p256gen` after changing this file; a test fails when vm.py is stale.

Representation: 20 limbs of 13 bits (uint16 words), Montgomery form with R = 2**260. Every
sum the code forms stays below 2**31 in magnitude, so the same code is right where a machine
word has 32 bits (ESP32, Cortex-M) and where it has 64 (the host). `assemble` tracks a bound on
every value and refuses a program that could break that.
"""

import sys

from flashtool import ROOT

OUT = ROOT / "lib" / "p256" / "p256" / "vm.py"

P = 2**256 - 2**224 + 2**192 + 2**96 - 1
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
NL = 20  # limbs
BITS = 13
MASK = (1 << BITS) - 1
R = 1 << (NL * BITS)
G_WIDTH = 7  # wNAF width for the generator tables (32 affine points each, in flash)
Q_WIDTH = 5  # wNAF width for the key tables (8 Jacobian points each, built per verify)
NAF_LEN = 257  # digit positions 0..256: a scalar below n, plus the recoding carry
LANES = 4  # the joint multiplication adds up to four scalar*point terms

# Workspace, in uint16 words. Scratch and constants first, so native code reaches them with a
# short constant offset from the workspace pointer (Xtensa l16ui reaches 510 bytes).
MM, P2, P4, PP, HDR = 0, 20, 40, 60, 80
H_INF, H_TOP, H_LANES = 0, 1, 2  # header words; lane l: HDR + 4 + 3*l: naf, kind, table
SLOT0 = 100
SLOTS = "ONE R2 B X1 Y1 Z1 X2 Y2 Z2 T0 T1 T2 T3 T4 T5 T6 T7 T8 T9 RX QX QY HX HY".split()
NQ = 1 << (Q_WIDTH - 2)
QT = len(SLOTS)  # (2k+1)Q, k < NQ, three slots each; then the same for H
HT = QT + 3 * NQ
NSLOT = HT + 3 * NQ
NAF = SLOT0 + NL * NSLOT  # LANES digit strings of NAF_LEN bytes
WS_WORDS = NAF + (LANES * NAF_LEN + 1) // 2

OP_MUL, OP_SQR, OP_ADDL, OP_SUBL, OP_COPY, OP_CANON = range(6)
OP_LIN = 0x80  # | ca << 4 | (cb + 8): D = ca*A + cb*B, reduced below 2p
KIND_G, KIND_Q = 0, 1  # a lane's table: affine points in flash, or Jacobian in the workspace
ST_DONE, ST_DBL, ST_LANE, ST_CHK = range(4)


def limbs(x):
    return [(x >> (BITS * i)) & MASK for i in range(NL)]


def words(vals):
    return b"".join(v.to_bytes(2, "little") for v in vals)


def mont(x):
    return x * R % P


# -- point formulas, in a small assembly language ------------------------------------------
# "D = A * B", "D = A ^ 2", "D = A +~ B" and "D = A -~ B" (lazy: below 4p, for products only),
# "D = lin ca A cb B" (ca*A + cb*B below 2p), "D = copy A", "D = canon A" (below p).
# Jacobian coordinates, a = -3 (formulas from the Explicit-Formulas Database).

DBL = """
T0 = Z1 ^ 2
T1 = Y1 ^ 2
T2 = X1 * T1
T3 = X1 -~ T0
T4 = X1 +~ T0
T3 = T3 * T4
T3 = lin 3 T3 0 T3
T4 = Y1 +~ Z1
T4 = T4 ^ 2
T4 = T4 -~ T1
Z1 = lin 1 T4 -1 T0
X1 = T3 ^ 2
X1 = lin 1 X1 -8 T2
T2 = lin 4 T2 -1 X1
T2 = T3 * T2
T1 = T1 ^ 2
Y1 = lin 1 T2 -8 T1
"""  # dbl-2001-b: 3M + 5S

JADD = """
T0 = Z2 ^ 2
T1 = X1 * T0
T0 = T0 * Z2
T2 = Y1 * T0
T0 = Z1 ^ 2
T3 = X2 * T0
T0 = T0 * Z1
T4 = Y2 * T0
T5 = lin 1 T3 -1 T1
T6 = lin 1 T4 -1 T2
Z1 = Z1 * Z2
Z1 = Z1 * T5
T7 = T5 ^ 2
T8 = T7 * T5
T7 = T1 * T7
X1 = T6 ^ 2
T9 = lin 1 T8 2 T7
X1 = lin 1 X1 -1 T9
T7 = T7 -~ X1
T7 = T6 * T7
T8 = T2 * T8
Y1 = lin 1 T7 -1 T8
"""  # add-1998-cmo-2: 12M + 4S; H in T5, R in T6 for the special cases

MADD = """
T0 = Z1 ^ 2
T3 = X2 * T0
T0 = T0 * Z1
T4 = Y2 * T0
T5 = lin 1 T3 -1 X1
T6 = lin 1 T4 -1 Y1
Z1 = Z1 * T5
T7 = T5 ^ 2
T8 = T7 * T5
T7 = X1 * T7
X1 = T6 ^ 2
T9 = lin 1 T8 2 T7
X1 = lin 1 X1 -1 T9
T7 = T7 -~ X1
T7 = T6 * T7
T8 = Y1 * T8
Y1 = lin 1 T7 -1 T8
"""  # madd-2004-hmv shape (Z2 = 1): 8M + 3S; H in T5, R in T6

# A key into Montgomery form, and the curve equation: y^2 (T0) against x^3 - 3x + b (T1).
KEY = """
QX = QX * R2
QY = QY * R2
T0 = QY ^ 2
T1 = QX ^ 2
T1 = T1 * QX
T1 = lin 1 T1 -3 QX
T1 = lin 1 T1 1 B
T0 = canon T0
T1 = canon T1
"""

# x(R) = X/Z^2 against r without an inversion: T1 = r*Z^2 and T2 = X, both below p. RX
# holds r (or r + n) as loaded.
FINAL = """
T0 = Z1 ^ 2
RX = RX * R2
T1 = RX * T0
T1 = canon T1
T2 = canon X1
"""


def rename(src, names):
    """The program `src` with slot names replaced (a formula applied to other points)."""
    return "\n".join(" ".join(names.get(t, t) for t in line.split())
                     for line in src.strip().splitlines())


def precomp(t):
    """(2k+1)K for k < NQ into table t ("Q" or "H") from the key K in tX, tY (Montgomery
    form), with 2K left in X2, Y2, Z2. No special case can arise: K has prime order n, so
    (2k+1)K is never +-2K."""
    lines = ["%s0X = copy %sX" % (t, t), "%s0Y = copy %sY" % (t, t), "%s0Z = copy ONE" % t,
             "X2 = copy %sX" % t, "Y2 = copy %sY" % t, "Z2 = copy ONE",
             rename(DBL, {"X1": "X2", "Y1": "Y2", "Z1": "Z2"})]
    for k in range(1, NQ):
        for c in "XYZ":
            lines.append("%s%d%s = copy %s%d%s" % (t, k, c, t, k - 1, c))
        lines.append(rename(JADD, {"X1": "%s%dX" % (t, k), "Y1": "%s%dY" % (t, k),
                                   "Z1": "%s%dZ" % (t, k)}))
    return "\n".join(lines)


PROGRAMS = (("J_DBL", DBL), ("J_JADD", JADD), ("J_MADD", MADD), ("J_KEY", KEY),
            ("J_KEY_H", rename(KEY, {"QX": "HX", "QY": "HY"})), ("J_PRE_Q", precomp("Q")),
            ("J_PRE_H", precomp("H")), ("J_FINAL", FINAL))
J_DBL, J_JADD, J_MADD = 0, 1, 2


def slot_of(name):
    if name[0] in "QH" and name[1:-1].isdigit():
        return (QT if name[0] == "Q" else HT) + 3 * int(name[1:-1]) + "XYZ".index(name[-1])
    return SLOTS.index(name)


def assemble(src):
    """Program text -> bytes (4 per op: code, dest, a, b). Tracks an upper bound, in units of
    p, on every slot and refuses a program that could overflow the limb arithmetic."""
    bounds = {}

    def bound(name):
        # constants and loaded inputs are below p; points come out of a formula below 2p
        return bounds.get(name, 1 if name in ("ONE", "R2", "B") else 2)

    out = bytearray()
    for line in src.strip().splitlines():
        d, expr = (x.strip() for x in line.split("=", 1))
        w = expr.split()
        if w[0] == "lin":
            ca, a, cb, b = int(w[1]), w[2], int(w[3]), w[4]
            if not (0 <= ca <= 7 and -8 <= cb <= 7 and bound(a) <= 4 and bound(b) <= 4):
                raise ValueError("lin out of range: " + line)
            op, args, res = OP_LIN | ca << 4 | (cb + 8), (a, b), 2
        elif w[0] == "copy":
            op, args, res = OP_COPY, (w[1], w[1]), bound(w[1])
        elif w[0] == "canon":
            if bound(w[1]) > 2:
                raise ValueError("canon needs a value below 2p: " + line)
            op, args, res = OP_CANON, (w[1], w[1]), 1
        else:
            a, sym, b = w
            op = {"*": OP_MUL, "^": OP_SQR, "+~": OP_ADDL, "-~": OP_SUBL}[sym]
            args = (a, a) if sym == "^" else (a, b)
            if op in (OP_MUL, OP_SQR):
                if bound(a) > 4 or bound(args[1]) > 4:
                    raise ValueError("product input above 4p: " + line)
                res = 2
            elif op == OP_ADDL:
                res = bound(a) + bound(b)
            else:
                if bound(b) > 2:
                    raise ValueError("lazy subtraction of a value above 2p: " + line)
                res = bound(a) + 2
            if res > 4:
                raise ValueError("lazy result above 4p: " + line)
        bounds[d] = res
        out += bytes([op, slot_of(d), slot_of(args[0]), slot_of(args[1])])
    return bytes(out)


def programs():
    """A directory of uint16 offsets (program j runs from entry j to entry j+1), then ops."""
    codes = [assemble(src) for _, src in PROGRAMS]
    offs = [2 * (len(codes) + 1)]
    for c in codes:
        offs.append(offs[-1] + len(c))
    return words(offs) + b"".join(codes)


# -- generator tables ----------------------------------------------------------------------
def affine_add(p1, p2):
    """Textbook affine addition (None is the point at infinity): the reference for tables
    and for the host tools."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    x1, y1 = p1
    x2, y2 = p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        lam = (3 * x1 * x1 - 3) * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


def multiply(k, pt):
    """k * pt by double-and-add (host side only)."""
    acc = None
    while k:
        if k & 1:
            acc = affine_add(acc, pt)
        pt = affine_add(pt, pt)
        k >>= 1
    return acc


def g_tables():
    """(2k+1)G and (2k+1)(2**128 G) for k < 2**(G_WIDTH-2): affine x then y in Montgomery
    form, 20 words each."""
    out = []
    for base in ((GX, GY), multiply(1 << 128, (GX, GY))):
        two = affine_add(base, base)
        pt = base
        for _ in range(1 << (G_WIDTH - 2)):
            out += limbs(mont(pt[0])) + limbs(mont(pt[1]))
            pt = affine_add(pt, two)
    return words(out)


# -- the viper function --------------------------------------------------------------------
class Src:
    """Indented source lines."""

    def __init__(self):
        self.lines = []
        self.ind = 1

    def __call__(self, s):
        self.lines.append("    " * self.ind + s)

    def block(self, head):
        self(head)
        self.ind += 1

    def end(self):
        self.ind -= 1


def slot_word(name):
    return SLOT0 + NL * slot_of(name)


def emit_sum(w, head, terms):
    """`head(t0 + t1 - ...)` wrapped to the line length; terms are (sign, text)."""
    text = " ".join((s + " " if i or s == "-" else "") + t for i, (s, t) in enumerate(terms))
    head += "("
    room = 99 - len("    " * w.ind) - len(head)
    if len(text) <= room - 1:
        w(head[:-1] + text)
        return
    lines, cur = [], ""
    for word in text.split(" "):
        if cur and len(cur) + 1 + len(word) > room - 1:
            lines.append(cur)
            cur = word
        else:
            cur = (cur + " " + word) if cur else word
    lines.append(cur)
    w(head + lines[0])
    for line in lines[1:-1]:
        w(" " * len(head) + line)
    w(" " * len(head) + lines[-1] + ")")


def emit_product(w, square):
    """Montgomery product of A and B (or A squared) into D, one statement per column (FIPS
    order). -1/p = 1 mod 2**13, so column k's digit of m is its own low 13 bits, and m*p
    adds four shifted terms: p = 2**256 - 2**224 + 2**192 + 2**96 - 1."""
    for k in range(2 * NL - 1):
        lo, hi = max(0, k - NL + 1), min(k, NL - 1)
        terms = []
        if square:
            cross = ["int(A[%d]) * int(A[%d])" % (i, k - i) for i in range(lo, hi + 1)
                     if i < k - i]
            if cross:
                terms.append(("+", "((" + " + ".join(cross) + ") << 1)"))
            if k % 2 == 0:
                terms.append(("+", "int(A[%d]) * int(A[%d])" % (k // 2, k // 2)))
        else:
            terms += [("+", "int(A[%d]) * int(Bp[%d])" % (i, k - i)) for i in range(lo, hi + 1)]
        # m_j at limb j: +m<<5 at j+7 (2**96), +m<<10 at j+14 (2**192), -m<<3 at j+17
        # (2**224), +m<<9 at j+19 (2**256); the -m at j cancels the digit itself.
        for off, sh, sign in ((7, 5, "+"), (14, 10, "+"), (17, 3, "-"), (19, 9, "+")):
            if 0 <= k - off < NL:
                terms.append((sign, "(int(ws[%d]) << %d)" % (MM + k - off, sh)))
        emit_sum(w, "acc = " if k == 0 else "acc += ", terms)
        w(("ws[%d] = acc & 0x1FFF" % (MM + k)) if k < NL else ("D[%d] = acc & 0x1FFF" % (k - NL)))
        w("acc >>= 13")
    w("D[19] = acc")


def emit_lin(w):
    """D = ca*A + cb*B (+ |cb|*4p when cb < 0), then the bits from 2**256 up folded back in
    with 2**256 = 2**224 - 2**192 - 2**96 + 1 (mod p): below 2**256 + 2**230 < 2p."""
    w("ca = (op >> 4) & 7")
    w("cb = (op & 15) - 8")
    w("nb = 0")
    w.block("if cb < 0:")
    w("nb = 0 - cb")
    w.end()
    w("acc = 0")
    for i in range(NL):
        w("acc += ca * int(A[%d]) + cb * int(Bp[%d]) + nb * int(ws[%d])" % (i, i, P4 + i))
        if i < NL - 1:
            w("D[%d] = acc & 0x1FFF" % i)
            w("acc >>= 13")
    w("q = acc >> 9")
    w("top = acc & 0x1FF")
    w("acc = int(D[0]) + q")
    for i in range(1, NL):
        w("D[%d] = acc & 0x1FFF" % (i - 1))
        w("acc >>= 13")
        extra = {7: " - (q << 5)", 14: " - (q << 10)", 17: " + (q << 3)"}.get(i, "")
        w("acc += %s%s" % ("int(D[%d])" % i if i < NL - 1 else "top", extra))
    w("D[19] = acc")


def emit_pass(w, expr):
    """One carried pass over the 20 limbs: D[i] = expr(i)."""
    w("acc = 0")
    for i in range(NL):
        w("acc += " + expr(i))
        w("D[%d] = acc & 0x1FFF" % i)
        w("acc >>= 13")


def emit_start(w, job):
    """Start program `job` (offsets from the directory at the head of progs)."""
    w("pc = int(progs[%d]) | (int(progs[%d]) << 8)" % (2 * job, 2 * job + 1))
    w("end = int(progs[%d]) | (int(progs[%d]) << 8)" % (2 * job + 2, 2 * job + 3))


def emit_copy(w, dst, src, n):
    w("j = 0")
    w.block("while j < %d:" % n)
    w("ws[%s + j] = ws[%s + j]" % (dst, src))
    w("j += 1")
    w.end()


def emit_zero_test(w, slot, flag):
    """flag = 1 when the slot (below 2p) is 0 mod p: all zero, or equal to p."""
    w("z = 0")
    w("e = 0")
    w("j = 0")
    w.block("while j < %d:" % NL)
    w("z |= int(ws[%d + j])" % slot_word(slot))
    w("e |= int(ws[%d + j]) ^ int(ws[%d + j])" % (slot_word(slot), PP))
    w("j += 1")
    w.end()
    w("%s = 1" % flag)
    w.block("if z != 0 and e != 0:")
    w("%s = 0" % flag)
    w.end()


def emit_driver(w):
    """The joint multiplication: for each digit position from the top, double, then for each
    lane with a nonzero digit add (or subtract) the table point."""
    w.block("if state == %d:" % ST_DONE)
    w("break")
    w.end()
    w.block("elif state == %d:" % ST_DBL)
    w.block("if i < 0:")
    w("break")
    w.end()
    w.block("if inf == 0:")
    emit_start(w, J_DBL)
    w.end()
    w("lane = 0")
    w("state = %d" % ST_LANE)
    w.end()
    w.block("elif state == %d:" % ST_LANE)
    w.block("if lane >= nlanes:")
    w("i -= 1")
    w("state = %d" % ST_DBL)
    w("continue")
    w.end()
    w("hd = %d + 3 * lane" % (HDR + 4))
    w("lane += 1")
    w("d = int(naf[int(ws[hd]) + i])")
    w.block("if d == 0:")
    w("continue")
    w.end()
    w("k = (d & 0x7F) >> 1")
    w.block("if d >= 0x80:")
    w("k = (0x100 - d) >> 1")
    w.end()
    w("kind = int(ws[hd + 1])")
    w.block("if kind == %d:" % KIND_G)
    w("S = ptr16(uint(gt) + %d * (int(ws[hd + 2]) + k))" % (4 * NL))
    w("j = 0")
    w.block("while j < %d:" % (2 * NL))
    w("ws[%d + j] = S[j]" % slot_word("X2"))
    w("j += 1")
    w.end()
    emit_copy(w, slot_word("Z2"), slot_word("ONE"), NL)
    w.end()
    w.block("else:")
    emit_copy(w, slot_word("X2"), "int(ws[hd + 2]) + %d * k" % (3 * NL), 3 * NL)
    w.end()
    w.block("if d >= 0x80:")  # -P: y = 2p - y (never 0 mod p: P-256 has no point of order 2)
    w("acc = 0")
    w("j = 0")
    w.block("while j < %d:" % NL)
    w("acc += int(ws[%d + j]) - int(ws[%d + j])" % (P2, slot_word("Y2")))
    w("ws[%d + j] = acc & 0x1FFF" % slot_word("Y2"))
    w("acc >>= 13")
    w("j += 1")
    w.end()
    w.end()
    w.block("if inf:")
    emit_copy(w, slot_word("X1"), slot_word("X2"), 3 * NL)
    w("inf = 0")
    w.end()
    w.block("elif kind == %d:" % KIND_G)
    emit_start(w, J_MADD)
    w("state = %d" % ST_CHK)
    w.end()
    w.block("else:")
    emit_start(w, J_JADD)
    w("state = %d" % ST_CHK)
    w.end()
    w.end()
    # after an addition: H = 0 means the addend was +-the accumulator. R = 0 too: equal, so
    # double it instead; otherwise the sum is the point at infinity.
    w.block("else:")
    emit_zero_test(w, "T5", "hz")
    w("state = %d" % ST_LANE)
    w.block("if hz:")
    emit_zero_test(w, "T6", "rz")
    w.block("if rz:")
    emit_copy(w, slot_word("X1"), slot_word("X2"), 3 * NL)
    emit_start(w, J_DBL)
    w.end()
    w.block("else:")
    w("inf = 1")
    w.end()
    w.end()
    w.end()


def emit_vm():
    w = Src()
    w.ind = 0
    w("@micropython.viper")
    w.block("def _vm(ws: ptr16, progs: ptr8, gt: ptr16, job: int):")
    w('"""Run program `job`; or with job -1, the joint multiplication over the lanes in the')
    w("header into X1, Y1, Z1 (header INF set if the result is the point at infinity).\"\"\"")
    w("acc = 0")
    w("base = uint(ws)")
    w("naf = ptr8(base + %d)" % (2 * NAF))
    w("pc = 0")
    w("end = 0")
    w("state = %d" % ST_DONE)
    w("i = int(ws[%d])" % (HDR + H_TOP))
    w("nlanes = int(ws[%d])" % (HDR + H_LANES))
    w("lane = 0")
    w("inf = 1")
    w.block("if job >= 0:")
    w("pc = int(progs[2 * job]) | (int(progs[2 * job + 1]) << 8)")
    w("end = int(progs[2 * job + 2]) | (int(progs[2 * job + 3]) << 8)")
    w.end()
    w.block("else:")
    w("state = %d" % ST_DBL)
    w.end()
    w.block("while True:")
    w.block("if pc < end:")
    w("op = int(progs[pc])")
    for reg, k in (("D", 1), ("A", 2), ("Bp", 3)):
        w("%s = ptr16(base + %d + %d * int(progs[pc + %d]))" % (reg, 2 * SLOT0, 2 * NL, k))
    w("pc += 4")
    w.block("if op == %d:" % OP_MUL)
    emit_product(w, False)
    w.end()
    w.block("elif op == %d:" % OP_SQR)
    emit_product(w, True)
    w.end()
    w.block("elif op >= %d:" % OP_LIN)
    emit_lin(w)
    w.end()
    w.block("elif op == %d:" % OP_ADDL)
    emit_pass(w, lambda i: "int(A[%d]) + int(Bp[%d])" % (i, i))
    w.end()
    w.block("elif op == %d:" % OP_SUBL)
    emit_pass(w, lambda i: "int(A[%d]) - int(Bp[%d]) + int(ws[%d])" % (i, i, P2 + i))
    w.end()
    w.block("else:")
    w("j = 0")
    w.block("while j < %d:" % NL)
    w("D[j] = A[j]")
    w("j += 1")
    w.end()
    w.block("if op == %d:" % OP_CANON)  # D below 2p: subtract p if D >= p
    w("j = 19")
    w.block("while j > 0 and int(D[j]) == int(ws[%d + j]):" % PP)
    w("j -= 1")
    w.end()
    w.block("if int(D[j]) >= int(ws[%d + j]):" % PP)
    w("acc = 0")
    w("j = 0")
    w.block("while j < %d:" % NL)
    w("acc += int(D[j]) - int(ws[%d + j])" % PP)
    w("D[j] = acc & 0x1FFF")
    w("acc >>= 13")
    w("j += 1")
    w.end()
    w.end()
    w.end()
    w.end()
    w("continue")
    w.end()
    emit_driver(w)
    w.end()
    w("ws[%d] = inf" % (HDR + H_INF))
    return "\n".join(w.lines)


def const_block(name, data):
    """A bytes constant (sits in flash when the module is frozen)."""
    out = ["%s = (" % name]
    for i in range(0, len(data), 19):
        out.append('    b"%s"' % "".join("\\x%02x" % c for c in data[i:i + 19]))
    out.append(")")
    return "\n".join(out)


def source():
    head = [
        '"""P-256 field arithmetic, point formulas and generator tables for lib/p256.',
        "",
        "GENERATED by flashtool/build/p256gen.py -- do not edit: change the generator and run",
        "`python -m flashtool.build.p256gen`. The representation and bounds are explained there.",
        '"""',
        "",
        "import micropython",
        "from micropython import const",
        "",
    ]
    names = dict(NL=NL, WS_WORDS=WS_WORDS, SLOT0=SLOT0, HDR=HDR, H_INF=H_INF, H_TOP=H_TOP,
                 H_LANES=H_LANES, NAF=NAF, NAF_LEN=NAF_LEN, G_WIDTH=G_WIDTH, Q_WIDTH=Q_WIDTH,
                 G_HALF=1 << (G_WIDTH - 2), KIND_G=KIND_G, KIND_Q=KIND_Q, CONSTS_AT=P2)
    names.update(("S_" + s, i) for i, s in enumerate(SLOTS))
    names.update(S_QT=QT, S_HT=HT)
    names.update((name, j) for j, (name, _) in enumerate(PROGRAMS))
    head += ["%s = const(%d)" % kv for kv in names.items()]
    head.append("# 2p, 4p and p at CONSTS_AT; 1, R**2 and b (Montgomery form) in slots ONE..B")
    head.append(const_block("CONSTS", words(limbs(2 * P) + limbs(4 * P) + limbs(P))))
    head.append(const_block("SLOT_CONSTS", words(limbs(R % P) + limbs(R * R % P)
                                                 + limbs(mont(B)))))
    head.append("# programs: uint16 offsets, then 4-byte ops (code, dest, a, b)")
    head.append(const_block("PROGS", programs()))
    head.append("# (2k+1)G then (2k+1)(2**128 G), k < G_HALF: affine x, y, Montgomery form")
    head.append(const_block("GTAB", g_tables()))
    return "\n".join(head) + "\n\n\n" + emit_vm() + "\n"


def main(argv=None):
    OUT.write_text(source())
    print("wrote", OUT.relative_to(ROOT))


if __name__ == "__main__":
    sys.exit(main())
