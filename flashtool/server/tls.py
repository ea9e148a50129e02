"""The station's TLS identity: a key and a self-signed certificate made locally (cryptography),
the server's context, and the DER copy a reader pins (/keys/station.der, flash.py deploy
--station-cert).

The reader trusts exactly what it was given at provisioning: this certificate (or a station CA
an operator already runs, pinned the same way), never a system store. The key is ECDSA P-256:
MicroPython's mbedTLS offers ECDHE-ECDSA on every port (forward secrecy, and the cheapest
handshake it can do); it speaks TLS 1.2, so that is the server's floor.

notBefore is 2000-01-01: the ESP32 port checks certificate dates against the RTC, which reads
2000-01-01 until something sets it, and a reader must still reach its station then (the pin,
not the date, is what authenticates). notAfter is real: an expired station certificate is
refused by every reader whose clock is set, so rotate before `days` run out.
"""

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

KEY = "station.key"  # private key (PEM, mode 0600): stays on the station server
CERT = "station.pem"  # the certificate the server presents
PIN = "station.der"  # the same certificate in DER: what readers pin (/keys/station.der)
EPOCH_2000 = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)


def _san(hosts):
    names = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def make_station_cert(out, hosts, days=1825, not_after=None, name="station"):
    """A new key and self-signed certificate for the names/addresses readers use in sync_url
    (`hosts`), valid until now + days (or `not_after`). Writes KEY, CERT and PIN into `out`;
    returns their paths."""
    if not hosts:
        raise ValueError("give the host names or addresses readers connect to (--host)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    if not_after is None:
        not_after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(EPOCH_2000).not_valid_after(not_after)
            .add_extension(_san(hosts), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    kpath = out / KEY
    fd = os.open(kpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    (out / CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / PIN).write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return kpath, out / CERT, out / PIN


def pin_bytes(path):
    """The DER a reader pins, from a certificate file in PEM or DER (refused if it is not
    one: the reader would only find out at its first connection)."""
    raw = Path(path).read_bytes()
    try:
        cert = (x509.load_pem_x509_certificate(raw) if b"-----BEGIN" in raw
                else x509.load_der_x509_certificate(raw))
    except ValueError as e:
        raise ValueError("%s is not a certificate: %s" % (path, e)) from None
    return cert.public_bytes(serialization.Encoding.DER)


def server_context(cert, key):
    """The server side: TLS 1.2 or later with the station's certificate and key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx
