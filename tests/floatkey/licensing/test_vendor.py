"""The vendor's command: init, issue and refresh, on a machine without any server."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from floatkey.app import cli
from floatkey.hardware import ca
from floatkey.licensing import envelope, request, signer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def key_request(vendor: Path, serial: str, *, certified: bool = True) -> bytes:
    """A request signed the way a hardware key's slot 9A signs (ECDSA over the digest)."""
    card_key = ec.generate_private_key(ec.SECP256R1())
    if certified:
        ca_key, ca_cert = ca.load_ca(vendor)
        cert = ca.issue(ca_key, ca_cert, card_key.public_key(), serial)
    else:
        cert = ca.self_signed(card_key, serial)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    body = request.content("cad", "machine-a", [request.KeyProof(serial, pem)], "nonce-1", NOW)
    signature = card_key.sign(request.digest(body), ec.ECDSA(Prehashed(hashes.SHA256())))
    return request.assemble(body, {serial: signature})


@pytest.fixture
def vendor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "vendor"
    assert cli.main(["vendor", "init", "--dir", str(directory)]) == 0
    out = capsys.readouterr()
    private = (directory / signer.SIGNING_KEY_FILE).read_text()
    body = private.splitlines()[1]
    assert body not in out.out + out.err  # never printed
    return directory


def test_init_writes_an_owner_only_signing_key_and_the_ca(vendor: Path) -> None:
    assert stat.S_IMODE((vendor / signer.SIGNING_KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((vendor / ca.CA_KEY_FILE).stat().st_mode) == 0o600
    signer.load_public_key(vendor / signer.PUBLIC_KEY_FILE)
    ca.load_ca(vendor)


def test_init_refuses_to_overwrite_a_vendor_key(vendor: Path) -> None:
    before = (vendor / signer.SIGNING_KEY_FILE).read_bytes()
    assert cli.main(["vendor", "init", "--dir", str(vendor)]) == 1
    assert (vendor / signer.SIGNING_KEY_FILE).read_bytes() == before


def test_init_keeps_a_ca_made_by_ca_init(tmp_path: Path) -> None:
    ca.create_ca(tmp_path)
    before = (tmp_path / ca.CA_CERT_FILE).read_bytes()
    assert cli.main(["vendor", "init", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / ca.CA_CERT_FILE).read_bytes() == before


def run_issue(vendor: Path, tmp_path: Path, req: bytes, *extra: str) -> int:
    (tmp_path / "req.json").write_bytes(req)
    (tmp_path / "policy.json").write_text(json.dumps({"floating_users": 5, "max_consumptions": 10}))
    return cli.main(
        [
            "vendor", "issue", "--dir", str(vendor), "--request", str(tmp_path / "req.json"),
            "--policy", str(tmp_path / "policy.json"), "--out", str(tmp_path / "lic.txt"), *extra,
        ]
    )  # fmt: skip


def test_issue_binds_the_file_to_the_key_the_request_proves_and_to_extra_keys(
    vendor: Path, tmp_path: Path
) -> None:
    assert run_issue(vendor, tmp_path, key_request(vendor, "1234"), "--key", "5678") == 0
    trusted = signer.trusted_keys([vendor / signer.PUBLIC_KEY_FILE])
    claims = envelope.open_file((tmp_path / "lic.txt").read_bytes(), trusted)
    assert claims.key_serials == ("1234", "5678")
    assert claims.hardware_id is None
    assert (claims.nonce, claims.sequence, claims.product) == ("nonce-1", 1, "cad")
    assert claims.policy == {"floating_users": 5, "max_consumptions": 10}


def test_issue_binds_a_keyless_request_to_the_hardware_id(vendor: Path, tmp_path: Path) -> None:
    body = request.content("cad", "machine-a", [], "nonce-2", NOW)
    assert run_issue(vendor, tmp_path, request.assemble(body, {})) == 0
    trusted = signer.trusted_keys([vendor / signer.PUBLIC_KEY_FILE])
    claims = envelope.open_file((tmp_path / "lic.txt").read_bytes(), trusted)
    assert (claims.hardware_id, claims.key_serials) == ("machine-a", ())


@pytest.mark.parametrize("tamper", ["other_ca", "edited"])
def test_issue_refuses_a_request_whose_key_proof_does_not_hold(
    vendor: Path, tmp_path: Path, tamper: str, capsys: pytest.CaptureFixture[str]
) -> None:
    req = key_request(vendor, "1234", certified=tamper != "other_ca")
    if tamper == "edited":
        req = req.replace(b"machine-a", b"machine-b")
    assert run_issue(vendor, tmp_path, req) == 1
    assert "proves none" in capsys.readouterr().err
    assert not (tmp_path / "lic.txt").exists()


def test_refresh_keeps_the_license_and_raises_the_sequence(vendor: Path, tmp_path: Path) -> None:
    assert run_issue(vendor, tmp_path, key_request(vendor, "1234")) == 0
    (tmp_path / "more.json").write_text(json.dumps({"floating_users": 9}))
    argv = ["vendor", "refresh", "--dir", str(vendor), "--license", str(tmp_path / "lic.txt")]
    argv += ["--policy", str(tmp_path / "more.json"), "--out", str(tmp_path / "lic2.txt")]
    assert cli.main(argv) == 0
    trusted = signer.trusted_keys([vendor / signer.PUBLIC_KEY_FILE])
    old = envelope.open_file((tmp_path / "lic.txt").read_bytes(), trusted)
    new = envelope.open_file((tmp_path / "lic2.txt").read_bytes(), trusted)
    assert (new.license_uid, new.sequence, new.nonce) == (old.license_uid, 2, None)
    assert new.key_serials == old.key_serials
    assert new.policy == {"floating_users": 9}


def test_issue_refuses_a_policy_a_server_would_refuse(vendor: Path, tmp_path: Path) -> None:
    body = request.content("cad", "machine-a", [], "n", NOW)
    (tmp_path / "req.json").write_bytes(request.assemble(body, {}))
    (tmp_path / "policy.json").write_text(json.dumps({"floating_users": -1}))
    argv = ["vendor", "issue", "--dir", str(vendor), "--request", str(tmp_path / "req.json")]
    argv += ["--policy", str(tmp_path / "policy.json"), "--out", str(tmp_path / "lic.txt")]
    assert cli.main(argv) == 1
    assert not (tmp_path / "lic.txt").exists()
