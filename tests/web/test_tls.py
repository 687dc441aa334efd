"""HTTPS from the configuration, with a self-signed certificate made here."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from floatkey.app.config import Settings
from floatkey.app.users_command import accounts
from tests.support.server import ServerProcess

PW = "correct horse battery"


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def test_https_with_login_verified_against_the_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with accounts(Settings(data_dir=tmp_path / "data")) as acc:
        acc.add_user("alice", PW, "user")
    cfg = tmp_path / "floatkey.yaml"
    cfg.write_text(
        f"userAuthentication: true\ntls:\n  certificate: {cert}\n  privateKey: {key}\n", encoding="utf-8"
    )
    server = ServerProcess(tmp_path / "data", "--config", str(cfg)).start()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        health = requests.get(server.url + "/api/v4/health", verify=str(cert), timeout=30)
        assert health.status_code == 200
        login = requests.get(server.url + "/auth", auth=("alice", PW), verify=str(cert), timeout=30)
        token = login.json()["token"]
        licenses = requests.get(
            server.url + "/api/v4/license",
            headers={"Authorization": f"Bearer {token}"},
            verify=str(cert),
            timeout=30,
        )
        assert licenses.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(server.url + "/api/v4/health", timeout=30)  # not trusted by the system store
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(server.url.replace("https://", "http://") + "/api/v4/health", timeout=30)
    finally:
        server.stop()
