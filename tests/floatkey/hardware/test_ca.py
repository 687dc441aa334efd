"""Vendor CA provisioning."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from floatkey.hardware import ca


def test_create_ca_writes_owner_only_key_and_ca_certificate(tmp_path: Path) -> None:
    key, cert = ca.create_ca(tmp_path / "vendor")
    key_file = tmp_path / "vendor" / ca.CA_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    loaded_key, loaded_cert = ca.load_ca(tmp_path / "vendor")
    assert loaded_cert == cert
    assert loaded_key.private_numbers() == key.private_numbers()
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(cert)


def test_create_ca_refuses_to_overwrite(tmp_path: Path) -> None:
    ca.create_ca(tmp_path)
    with pytest.raises(FileExistsError):
        ca.create_ca(tmp_path)


def test_issue_puts_the_serial_in_the_subject_and_chains() -> None:
    ca_key, ca_cert = ca.make_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue(ca_key, ca_cert, key.public_key(), 987654)
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "987654"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ("floatkey key 987654")
    cert.verify_directly_issued_by(ca_cert)
    _, other_cert = ca.make_ca()
    with pytest.raises(InvalidSignature):
        cert.verify_directly_issued_by(other_cert)


def test_cli_init_and_issue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ca"
    assert ca.main(["init", "--dir", str(folder)]) == 0
    key = ec.generate_private_key(ec.SECP256R1())
    pub = tmp_path / "pub.pem"
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    out = tmp_path / "cert.pem"
    args = ["issue", "--dir", str(folder), "--public-key", str(pub), "--serial", "42", "--out", str(out)]
    assert ca.main(args) == 0
    cert = x509.load_pem_x509_certificate(out.read_bytes())
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(ca.load_certificate(folder / ca.CA_CERT_FILE))
    assert ca.main(["init", "--dir", str(folder)]) == 1
    assert "already exists" in capsys.readouterr().err
