"""RSA-2048 keys made from a seed: the same key on every run (benchmarks whose instruction
counts depend a little on the modulus, the emulator's riders, `codes rider-key --seed`).

Written here because `cryptography` generates keys only from the system's randomness; the
primes come from a seeded generator and Miller-Rabin, with trial division first so that one key
takes a fraction of a second in CPython. These keys sign nothing but test and demo input.
"""

import random

_SMALL = [q for q in range(3, 2000, 2) if all(q % d for d in range(3, int(q ** 0.5) + 1, 2))]


def _probable_prime(n, rng, rounds=8):  # random candidates, not adversarial ones
    for q in _SMALL:
        if n % q == 0:
            return n == q
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng, bits, e):
    while True:
        p = rng.getrandbits(bits) | (3 << (bits - 2)) | 1  # two top bits: n has 2 * bits bits
        if (p - 1) % e and _probable_prime(p, rng):  # gcd(e, p - 1) = 1 for prime e
            return p


def seeded_rsa(seed, e=3, bits=2048):
    """(dict of ints n, e, d, p, q for the code issuer, the `cryptography` private key)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    rng = random.Random("reader-bench-%s" % seed)
    p, q = _prime(rng, bits // 2, e), _prime(rng, bits // 2, e)
    n, d = p * q, pow(e, -1, (p - 1) * (q - 1))
    key = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p),
                                rsa.RSAPublicNumbers(e, n)).private_key()
    return {"n": n, "e": e, "d": d, "p": p, "q": q}, key
