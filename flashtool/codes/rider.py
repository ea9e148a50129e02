"""The rider app's side of RC2 (docs/ride-code.md): a key pair made on the phone (its private
half never leaves it), and dynamic codes signed with it every few seconds. The rider key is
RSA-2048 with e = 3 (the default: a reader verifies it in two modular multiplications) or ECDSA
P-256 (where readers are configured to accept it).

An app would keep the key in the phone's keystore (Android KeyMint signs RSA PKCS#1 v1.5, e = 3
where the keystore offers it; iOS's Secure Enclave only ECDSA P-256); here `cryptography`
stands in for it.
"""

import hashlib
import os
import struct
from pathlib import Path

from flashtool import use_lib
from flashtool.build.p256gen import multiply
from flashtool.codes.rsakeys import seeded_rsa

use_lib("ridecode", "base45")

import base45  # noqa: E402
from ridecode import layout  # noqa: E402

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def rider_key(seed=None, alg=layout.ALG_RSA3):
    """A rider's private key of algorithm `alg`: fresh, or derived from `seed` (benchmarks and
    the emulator, whose riders must come back with the same key)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # only where keys are made

    if alg == layout.ALG_RSA3:
        if seed is None:
            return rsa.generate_private_key(public_exponent=3, key_size=2048)
        return seeded_rsa("rider-%s" % seed)[1]
    if alg != layout.ALG_P256:
        raise ValueError("rider key algorithm %r" % alg)
    if seed is None:
        return ec.generate_private_key(ec.SECP256R1())
    k = int.from_bytes(hashlib.sha256(b"rider-seed" + str(seed).encode()).digest(), "big")
    return ec.derive_private_key(k % (N - 1) + 1, ec.SECP256R1())


def _is_rsa(priv):
    return hasattr(priv.public_key().public_numbers(), "n")


def public_bytes(priv):
    """The public key the issuer certifies: RSA, the 256-byte modulus (e = 3 is implied);
    P-256, the 64-byte point x || y."""
    nums = priv.public_key().public_numbers()
    if _is_rsa(priv):
        if nums.e != 3 or nums.n.bit_length() != 8 * layout.RSA_KEY:
            raise ValueError("an RSA rider key is 2048 bits with e = 3")
        return nums.n.to_bytes(layout.RSA_KEY, "big")
    return nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big")


def alg_of(pub):
    """The rider-key algorithm of a public key as public_bytes() gives it (by its length)."""
    alg = {layout.RSA_KEY: layout.ALG_RSA3, layout.KEY_LEN: layout.ALG_P256}.get(len(pub))
    if alg is None:
        raise ValueError("rider key: 256 bytes (RSA-2048 modulus) or 64 (P-256 x || y)")
    return alg


def key_hi(pub):
    """2**128 times the public key (64 bytes x || y)."""
    x, y = multiply(1 << 128, (int.from_bytes(pub[:32], "big"), int.from_bytes(pub[32:], "big")))
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def save_rider_key(priv, path):
    from cryptography.hazmat.primitives import serialization

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def load_rider_key(path):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(Path(path).read_bytes(), None)


def signed_message(cert, gen_time, counter):
    """What the rider signs: bound to its certificate, so it verifies with no other."""
    return layout.DYN2_DOMAIN + hashlib.sha256(cert).digest() + struct.pack(">IH", gen_time,
                                                                              counter)


def sign_low_s(priv, msg, deterministic=False):
    """ECDSA P-256 / SHA-256 as r || s with s <= n/2: the reader refuses the other half, so a
    copied code cannot be made to look new by replacing s with n - s. `deterministic`: RFC 6979
    nonces (benchmarks whose inputs must be the same on every run)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    algo = ec.ECDSA(hashes.SHA256(), deterministic_signing=deterministic)
    r, s = decode_dss_signature(priv.sign(msg, algo))
    s = min(s, N - s)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sign_rsa(priv, msg):
    """RSA PKCS#1 v1.5 / SHA-256 (deterministic: one signature per message)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return priv.sign(msg, padding.PKCS1v15(), hashes.SHA256())


def dynamic2(priv, cert, gen_time, counter, deterministic=False):
    """gen u32, counter u16, the rider's signature. `deterministic`: RFC 6979 nonces for a
    P-256 key (RSA PKCS#1 v1.5 signatures are deterministic anyway)."""
    dyn = struct.pack(">IH", gen_time, counter)
    msg = signed_message(cert, gen_time, counter)
    if _is_rsa(priv):
        return dyn + sign_rsa(priv, msg)
    return dyn + sign_low_s(priv, msg, deterministic)


def make_code2(cert, priv, gen_time, counter, deterministic=False):
    """The text in the QR code: RC2: + base45(certificate + dynamic part)."""
    return layout.PREFIX2 + base45.encode(cert + dynamic2(priv, cert, gen_time, counter,
                                                          deterministic))
