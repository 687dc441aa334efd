"""Licenses installed the way a vendor's customer gets them: from a signed license file.

``python -m bench.run --license-source vendor`` runs the register and keybound scenarios
on licenses imported from vendor license files instead of licenses added from a policy.
The benchmark plays the vendor (docs/licensing.md): it creates a vendor identity in its
temporary folder (``vendor.init``: a license-signing key, and the CA unless the folder has
one), the server trusts its public key (``vendor.publicKeys``, so ``licenseSource`` is
``vendor``), and each license goes through the real round trip: ``POST
/api/v4/license/generate`` makes the server's activation request, ``vendor.issue`` signs
the license file answering it, ``POST /api/v4/license/upload`` installs it. A key-bound
license is bound by the file to the serial of the key that signed the request; a plain
one is issued for a request that lists no key (bound to the server's hardware ID).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from bench.load import call
from floatkey.licensing import request, signer, vendor

LOCAL, VENDOR = "local", "vendor"
SOURCES = (LOCAL, VENDOR)


def create_vendor(directory: Path) -> Path:
    """A vendor identity in ``directory`` (its CA kept if there is one); its public key file."""
    vendor.init(directory)
    return directory / signer.PUBLIC_KEY_FILE


def config_lines(directory: Path) -> str:
    """Configuration that trusts the vendor of ``directory`` (licenses then come only from files)."""
    return f"vendor:\n  publicKeys: [{directory / signer.PUBLIC_KEY_FILE}]\n"


def import_license(
    url: str, directory: Path, product: str, policy: dict[str, Any], key_bound: bool = False
) -> dict[str, Any]:
    """Ask ``url`` for an activation request, issue its file as the vendor, install it.

    With ``key_bound`` the request must prove a key, whose serial the file binds; without,
    the keys the server listed are left out of the request, so the file binds the server's
    hardware ID only.
    """
    made = call(url, "POST", "/api/v4/license/generate", {"product": product})
    keyless = request.assemble({**made["content"], "keys": []}, {})
    data = json.dumps(made).encode() if key_bound else keyless
    text, asked = vendor.issue(directory, data, policy)
    if key_bound and not asked.key_serials:
        raise RuntimeError(
            f"the activation request proves no hardware key: {asked.unproven or 'none listed'}"
        )
    upload = urllib.request.Request(
        url + "/api/v4/license/upload",
        data=text.encode(),
        method="POST",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(upload, timeout=120) as answer:
        installed: dict[str, Any] = json.loads(answer.read())
    if installed.get("is_hardware_key_auth") != key_bound:
        raise RuntimeError(f"the imported license is {'not ' if key_bound else ''}key-bound: {installed}")
    return installed
