"""A throw-away PKI for TLS tests: a CA, a server certificate for 127.0.0.1/localhost and
client certificates, written as PEM files into a directory (generated, never checked in)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True, slots=True)
class Pki:
    ca: Path  # CA certificate that signed server and client
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path  # an unrelated CA
    rogue_client_cert: Path  # a client certificate signed by the rogue CA
    rogue_client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _builder(
    subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _ca(
    common_name: str, directory: Path, stem: str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(common_name, _name(common_name), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert, _write_cert(cert, directory / f"{stem}.crt")


def _leaf(
    common_name: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    usage: x509.ObjectIdentifier,
    *,
    directory: Path,
    stem: str,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(common_name, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return _write_cert(cert, directory / f"{stem}.crt"), _write_key(key, directory / f"{stem}.key")


def make_pki(directory: Path) -> Pki:
    ca_key, ca_cert, ca = _ca("ns_exporter test CA", directory, "ca")
    server_cert, server_key = _leaf(
        "localhost",
        ca_key,
        ca_cert,
        ExtendedKeyUsageOID.SERVER_AUTH,
        directory=directory,
        stem="server",
        sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client_cert, client_key = _leaf(
        "prometheus",
        ca_key,
        ca_cert,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        directory=directory,
        stem="client",
    )
    rogue_key, rogue_cert, rogue_ca = _ca("rogue CA", directory, "rogue-ca")
    rogue_client_cert, rogue_client_key = _leaf(
        "intruder",
        rogue_key,
        rogue_cert,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        directory=directory,
        stem="rogue",
    )
    return Pki(
        ca=ca,
        server_cert=server_cert,
        server_key=server_key,
        client_cert=client_cert,
        client_key=client_key,
        rogue_ca=rogue_ca,
        rogue_client_cert=rogue_client_cert,
        rogue_client_key=rogue_client_key,
    )
