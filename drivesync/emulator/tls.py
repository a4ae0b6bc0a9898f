"""A private certificate authority for the emulator's intercepting proxy.

Clients that cannot be pointed at another base URL (rclone) reach the emulator through an HTTPS
CONNECT proxy that terminates TLS for the Google hostnames. For that the client must trust a CA of
ours: `ensure_ca` creates one once per directory (cached on disk, key mode 0600) and `leaf_context`
returns a server-side `ssl.SSLContext` whose certificate, signed by that CA, names the Google hosts.

Nothing here touches the system trust store: the client is given the CA file explicitly
(`rclone --ca-cert FILE`, `httpx.Client(verify=FILE)`, ...).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import ipaddress
import os
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca-key.pem"

#: Hosts the proxy intercepts; every leaf certificate names them.
GOOGLE_HOSTS: tuple[str, ...] = (
    "www.googleapis.com",
    "oauth2.googleapis.com",
    "content.googleapis.com",
    "accounts.google.com",
)

_VALIDITY = _dt.timedelta(days=365)
_BACKDATE = _dt.timedelta(days=1)
_lock = threading.RLock()


@contextlib.contextmanager
def _dir_lock(d: Path):
    """Serialise CA/leaf creation across threads and processes sharing `d`."""
    with _lock:
        fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically with mode 0600 from the start."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write_public(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _ca_is_usable(cert_path: Path, key_path: Path) -> bool:
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError):
        return False
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        return False
    # Regenerate if it expires within a day: a leaf cannot outlive its CA.
    return cert.not_valid_after_utc - _now() > _dt.timedelta(days=1)


def ensure_ca(ca_dir: str | os.PathLike[str]) -> tuple[str, str]:
    """Create (once) or reuse the CA in `ca_dir`; return `(ca_cert_path, ca_key_path)`.

    The key is written with mode 0600. A missing, unreadable, mismatched or nearly expired pair is
    replaced.
    """
    d = Path(ca_dir)
    d.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = d / CA_CERT_NAME, d / CA_KEY_NAME
    with _dir_lock(d):
        if _ca_is_usable(cert_path, key_path):
            if key_path.stat().st_mode & 0o077:
                os.chmod(key_path, 0o600)
            return str(cert_path), str(key_path)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "drivesync emulator"),
                x509.NameAttribute(NameOID.COMMON_NAME, "drivesync emulator test CA"),
            ]
        )
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return str(cert_path), str(key_path)


def _san_entries(hostnames: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    seen: set[str] = set()
    for h in (*GOOGLE_HOSTS, *hostnames):
        h = h.strip().lower()
        if not h or h in seen:
            continue
        seen.add(h)
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def _leaf_files(ca_dir: Path, hostnames: Iterable[str]) -> tuple[Path, Path]:
    """Issue (or reuse) a leaf certificate for the hosts; return `(chain_path, key_path)`."""
    cert_path, key_path = ensure_ca(ca_dir)
    ca_cert_pem = Path(cert_path).read_bytes()
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    sans = _san_entries(hostnames)
    tag = hashlib.sha256(
        ca_cert.fingerprint(hashes.SHA256()) + "|".join(sorted(map(str, sans))).encode()
    ).hexdigest()[:16]
    chain_file = ca_dir / f"leaf-{tag}.pem"
    leaf_key_file = ca_dir / f"leaf-{tag}-key.pem"
    with _dir_lock(ca_dir):
        if chain_file.is_file() and leaf_key_file.is_file():
            try:
                leaf = x509.load_pem_x509_certificate(chain_file.read_bytes())
                if leaf.not_valid_after_utc - _now() > _dt.timedelta(days=1):
                    return chain_file, leaf_key_file
            except ValueError:
                pass
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        not_after = min(now + _VALIDITY, ca_cert.not_valid_after_utc)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GOOGLE_HOSTS[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(
            leaf_key_file,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        # Leaf first, then the CA: clients that only know the CA can still build the chain.
        _write_public(chain_file, leaf.public_bytes(serialization.Encoding.PEM) + ca_cert_pem)
        return chain_file, leaf_key_file


def leaf_context(
    ca_dir: str | os.PathLike[str], hostnames: Iterable[str] = ()
) -> ssl.SSLContext:
    """A server-side TLS context presenting a CA-signed certificate for the Google hosts + `hostnames`.

    HTTP/1.1 only (ALPN `http/1.1`): the proxy pipes the decrypted bytes to a plain HTTP/1.1 server.
    """
    chain_file, key_file = _leaf_files(Path(ca_dir), hostnames)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(chain_file), str(key_file))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
