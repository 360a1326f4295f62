"""Throwaway certificates for TLS tests, made with the `openssl` command at test time.

`make_pki(directory)` writes a private certificate authority, a server
certificate it signs for localhost and 127.0.0.1, one it signs for another
name only, a self-signed certificate, and an unrelated authority. Keys are
EC P-256: quick to make. Nothing here is ever trusted outside a test.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import WAIT, Wire

OPENSSL = shutil.which("openssl")

_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[localhost]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[elsewhere]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:chat.invalid
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


@dataclass(frozen=True, slots=True)
class Pki:
    ca: Path  # the test authority's certificate: what clients trust
    cert: Path  # signed by `ca`, for DNS:localhost and IP:127.0.0.1
    key: Path
    elsewhere_cert: Path  # signed by `ca`, for DNS:chat.invalid only
    elsewhere_key: Path
    self_signed_cert: Path  # for localhost and 127.0.0.1, signed by itself
    self_signed_key: Path
    other_ca: Path  # an authority that signed none of these


def _openssl(directory: Path, *args: str) -> None:
    assert OPENSSL is not None, "needs the openssl command"
    subprocess.run([OPENSSL, *args], cwd=directory, capture_output=True, check=True, timeout=30)


_NEW_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _authority(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        directory,
        *("req", "-x509", "-config", "openssl.cnf", "-extensions", "ca", *_NEW_KEY),
        *("-keyout", key.name, "-out", cert.name, "-days", "2", "-subj", f"/CN={name}"),
    )
    return cert, key


def _signed(directory: Path, name: str, section: str, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    cert, key, request = (directory / f"{name}.{ext}" for ext in ("pem", "key", "csr"))
    _openssl(
        directory,
        *("req", "-new", "-config", "openssl.cnf", *_NEW_KEY),
        *("-keyout", key.name, "-out", request.name, "-subj", f"/CN={name}"),
    )
    _openssl(
        directory,
        *("x509", "-req", "-in", request.name, "-CA", ca[0].name, "-CAkey", ca[1].name),
        *("-set_serial", f"0x{secrets.token_hex(8)}", "-days", "2"),
        *("-extfile", "openssl.cnf", "-extensions", section, "-out", cert.name),
    )
    return cert, key


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "openssl.cnf").write_text(_CONFIG)
    authority = _authority(directory, "test-ca")
    other_ca, _ = _authority(directory, "other-ca")
    cert, key = _signed(directory, "localhost", "localhost", authority)
    elsewhere_cert, elsewhere_key = _signed(directory, "elsewhere", "elsewhere", authority)
    self_signed_cert, self_signed_key = directory / "self.pem", directory / "self.key"
    _openssl(
        directory,
        *("req", "-x509", "-config", "openssl.cnf", "-extensions", "localhost", *_NEW_KEY),
        *("-keyout", self_signed_key.name, "-out", self_signed_cert.name),
        *("-days", "2", "-subj", "/CN=localhost"),
    )
    return Pki(
        ca=authority[0],
        cert=cert,
        key=key,
        elsewhere_cert=elsewhere_cert,
        elsewhere_key=elsewhere_key,
        self_signed_cert=self_signed_cert,
        self_signed_key=self_signed_key,
        other_ca=other_ca,
    )


def tls_settings(pki: Pki) -> dict[str, Any]:
    """Server settings for TLS with the localhost certificate."""
    return {"tls_cert": str(pki.cert), "tls_key": str(pki.key)}


class TlsWire(Wire):
    """The raw wire client over a plain `ssl`-wrapped socket (one thread only)."""

    def __init__(self, address: tuple[str, int], ca: Path, hostname: str = "localhost") -> None:
        super().__init__(address)
        context = ssl.create_default_context(cafile=str(ca))
        plain: socket.socket = self.sock
        self.sock = context.wrap_socket(plain, server_hostname=hostname)
        self.sock.settimeout(WAIT)
