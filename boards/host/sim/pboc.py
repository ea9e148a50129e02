"""The e-purse purchase cryptography (PBOC / JR/T 0025 shape, as psam-purchase.md §5 states
it), written once for the PSAM and card simulators and the back-office TAC check.

Algorithms by the id the card reports: 0x00 = 3DES (16-byte keys, 8-byte blocks, single-DES
session keys), 0x04 = SM4 (16-byte keys and blocks). Block ciphers come from `cryptography`
(TripleDES from its `decrepit` module, where 3DES now lives).

* Diversified card key: 3DES: E(MK, D) || E(MK, ~D); SM4: E(MK, D || ~D); D = the card's
  8-byte application serial.
* Session key: E(DPK, random(4) || offline counter(2) || terminal transaction number[2:4])
  (SM4 pads the block with 80 00..).
* MAC: ISO 9797-1 padding method 2 (80 00..), CBC with a zero IV, the first 4 bytes of the last
  block. MAC1 = MAC(SK, amount || type || terminal || date || time); MAC2 = MAC(SK, amount);
  TAC = MAC(DTK, amount || type || terminal || TTN || date || time) with DTK = left XOR right
  half of the diversified TAC key (3DES) or that key itself (SM4).
"""

import hashlib
import hmac
import json
import os

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ALG_3DES = 0x00
ALG_SM4 = 0x04
ALGS = (ALG_3DES, ALG_SM4)
TYPE_PURCHASE = 0x06
TYPE_CAPP = 0x09


def block(alg):
    return 16 if alg == ALG_SM4 else 8


def encrypt(alg, key, data):
    """ECB encryption of whole blocks."""
    if alg == ALG_SM4:
        c = algorithms.SM4(bytes(key))
    elif alg == ALG_3DES:
        k = bytes(key)
        c = TripleDES(k * 3 if len(k) == 8 else k + k[:8])
    else:
        raise ValueError("algorithm id %02x" % alg)
    e = Cipher(c, modes.ECB()).encryptor()
    return e.update(bytes(data)) + e.finalize()


def _inv(b):
    return bytes(x ^ 0xFF for x in b)


def diversify(alg, master, factor):
    """The card's key from a 16-byte master key and its 8-byte serial."""
    if alg == ALG_SM4:
        return encrypt(alg, master, bytes(factor) + _inv(factor))
    return encrypt(alg, master, factor) + encrypt(alg, master, _inv(factor))


def session_key(alg, dpk, rand, counter, ttn):
    data = bytes(rand) + bytes(counter) + bytes(ttn)[2:4]
    if alg == ALG_SM4:
        data += b"\x80" + bytes(7)
    return encrypt(alg, dpk, data)


def mac(alg, key, data):
    n = block(alg)
    d = bytes(data) + b"\x80"
    d += bytes(-len(d) % n)
    c = bytes(n)
    for i in range(0, len(d), n):
        c = encrypt(alg, key, bytes(a ^ b for a, b in zip(c, d[i:i + n])))
    return c[:4]


def mac1(alg, sk, amount, ttype, terminal, date, time):
    return mac(alg, sk, amount.to_bytes(4, "big") + bytes([ttype]) + bytes(terminal)
               + bytes(date) + bytes(time))


def mac2(alg, sk, amount):
    return mac(alg, sk, amount.to_bytes(4, "big"))


def tac_key(alg, dtk):
    if alg == ALG_SM4:
        return bytes(dtk)
    return bytes(a ^ b for a, b in zip(dtk[:8], dtk[8:16]))


def tac(alg, dtk, amount, ttype, terminal, ttn, date, time):
    return mac(alg, tac_key(alg, dtk), amount.to_bytes(4, "big") + bytes([ttype])
               + bytes(terminal) + bytes(ttn) + bytes(date) + bytes(time))


class IssuerKeys:
    """The issuer's master keys per (key version, algorithm): `purchase` (also in every PSAM)
    and `tac` (the back office only). Made from a seed (tests, deterministic) or at random
    (the emulator, saved under var/), never committed."""

    def __init__(self, purchase, tac):
        self.purchase = purchase  # {(version, alg): 16 bytes}
        self.tac = tac

    @classmethod
    def from_seed(cls, seed, versions=(1,)):
        def k(what, v, a):
            return hmac.new(str(seed).encode(), ("%s:%d:%d" % (what, v, a)).encode(),
                            hashlib.sha256).digest()[:16]
        return cls({(v, a): k("purchase", v, a) for v in versions for a in ALGS},
                   {(v, a): k("tac", v, a) for v in versions for a in ALGS})

    @classmethod
    def generate(cls, versions=(1,)):
        return cls({(v, a): os.urandom(16) for v in versions for a in ALGS},
                   {(v, a): os.urandom(16) for v in versions for a in ALGS})

    def card(self, serial, version=1, alg=ALG_3DES):
        """(DPK, DTK): the keys personalised into the card with this serial."""
        return (diversify(alg, self.purchase[(version, alg)], serial),
                diversify(alg, self.tac[(version, alg)], serial))

    def to_json(self):
        def enc(d):
            return {"%d:%d" % k: v.hex() for k, v in d.items()}
        return json.dumps({"purchase": enc(self.purchase), "tac": enc(self.tac)}, indent=1)

    @classmethod
    def from_json(cls, text):
        d = json.loads(text)

        def dec(m):
            return {tuple(int(x) for x in k.split(":")): bytes.fromhex(v) for k, v in m.items()}
        return cls(dec(d["purchase"]), dec(d["tac"]))
