"""The vendor CA: it certifies which hardware keys a floatkey server trusts.

``floatkey ca init --dir D`` makes an EC P-256 CA (``D/ca.key``, owner-only, and
``D/ca.pem``); ``floatkey ca issue`` certifies the public key of a key's slot 9A, with the
key's serial in the subject. Configure the server with ``hardwareKey.caCertificate: D/ca.pem``
and keep ``ca.key`` off the server.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.pem"
CA_LIFETIME = datetime.timedelta(days=20 * 365)
KEY_CERT_LIFETIME = datetime.timedelta(days=10 * 365)

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def _name(common_name: str, serial: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if serial is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    return x509.Name(attributes)


def make_ca(
    common_name: str = "floatkey vendor CA",
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new CA key and its self-signed certificate, in memory."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .sign(key, hashes.SHA256())
    )
    return key, cert


def create_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Write a new CA into ``directory``; refuses to overwrite an existing one."""
    directory = Path(directory)
    key_path, cert_path = directory / CA_KEY_FILE, directory / CA_CERT_FILE
    for path in (key_path, cert_path):
        if path.exists():
            raise FileExistsError(f"{path} already exists; not overwriting a CA")
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = make_ca()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Read the CA written by :func:`create_ca`."""
    directory = Path(directory)
    key = serialization.load_pem_private_key((directory / CA_KEY_FILE).read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{directory / CA_KEY_FILE}: not an EC private key")
    cert = x509.load_pem_x509_certificate((directory / CA_CERT_FILE).read_bytes())
    return key, cert


def load_certificate(path: Path) -> x509.Certificate:
    """A PEM (or DER) certificate from a file."""
    data = Path(path).read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public_key: PublicKey,
    serial: int | str,
) -> x509.Certificate:
    """Certify the slot-9A ``public_key`` of the hardware key with serial number ``serial``."""
    serial = str(int(serial))
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(f"floatkey key {serial}", serial))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + KEY_CERT_LIFETIME, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )


def self_signed(private_key: ec.EllipticCurvePrivateKey, serial: int | str) -> x509.Certificate:
    """A key certificate signed by its own key: what a PIV key has without a vendor CA."""
    serial = str(int(serial))
    now = datetime.datetime.now(datetime.UTC)
    name = _name(f"floatkey key {serial}", serial)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + KEY_CERT_LIFETIME)
        .sign(private_key, hashes.SHA256())
    )


def _load_public_key(path: Path) -> PublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise TypeError(f"{path}: not an EC or RSA public key")
    return key


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="floatkey ca", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create a CA key and certificate")
    init.add_argument("--dir", type=Path, required=True, help="folder for ca.key and ca.pem")
    issue_cmd = sub.add_parser("issue", help="certify a hardware key's slot-9A public key")
    issue_cmd.add_argument("--dir", type=Path, required=True, help="folder of the CA")
    issue_cmd.add_argument(
        "--public-key",
        type=Path,
        required=True,
        help="PEM public key, as `ykman piv keys generate` writes it",
    )
    issue_cmd.add_argument("--serial", type=int, required=True, help="the key's serial number")
    issue_cmd.add_argument("--out", type=Path, required=True, help="PEM certificate to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "init":
            create_ca(args.dir)
            print(
                f"CA written: {args.dir / CA_CERT_FILE} (certificate), "
                f"{args.dir / CA_KEY_FILE} (private key, keep it off the server)"
            )
            return 0
        ca_key, ca_cert = load_ca(args.dir)
        cert = issue(ca_key, ca_cert, _load_public_key(args.public_key), args.serial)
        args.out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        print(f"certificate for key {args.serial} written to {args.out}")
        return 0
    except (OSError, ValueError, TypeError) as exc:
        print(f"floatkey ca: {exc}", file=sys.stderr)
        return 1
