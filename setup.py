import re
from pathlib import Path

from setuptools import setup

# The version lives in one place, floatkey/__init__.py; read it without importing floatkey.
VERSION = re.search(r'^__version__ = "([^"]+)"', Path("floatkey/__init__.py").read_text(), re.M).group(1)

setup(
    name="floatkey",
    version=VERSION,
    description="Floating license server with hardware-key binding, speaking LicenseSpring's V1 protocol",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=[
        "floatkey",
        "floatkey.app",
        "floatkey.auth",
        "floatkey.hardware",
        "floatkey.rules",
        "floatkey.metrics",
        "floatkey.licensing",
        "floatkey.usage",
        "floatkey.console",
        "floatkey.actors",
        "floatkey.web",
        "floatkey.storage",
    ],
    package_dir={
        "floatkey": "floatkey",
        "floatkey.actors": "actors",
        "floatkey.web": "web",
        "floatkey.storage": "storage",
    },
    # The console's HTML, scripts and styles are served from the installed package.
    package_data={"floatkey": ["py.typed"], "floatkey.console": ["static/*"]},
    install_requires=[
        # pykka 4 brings typed proxies and the ActorRegistry listener lookups we use.
        "pykka>=4.0,<5",
        "cherrypy>=18.8,<19",
        # web/connections.py subclasses cheroot's connection manager and uses some of its
        # private members: a new major version must be checked before it is allowed.
        "cheroot>=11.1,<12",
        "pyjwt>=2.8,<3",
        "lmdb>=1.4,<4",
        "msgpack>=1.0.4,<2",
        # The license object inside a register answer (license_json) is encoded on every
        # register: orjson does it several times faster than the json module.
        "orjson>=3.9,<4",
        # The configuration file is YAML; safe_load only.
        "PyYAML>=6.0,<7",
        # argon2id password hashes for authentication mode.
        "argon2-cffi>=23.1,<26",
        # X.509 chains and ECDSA signatures of hardware keys; the vendor CA.
        "cryptography>=42,<49",
        # PC/SC access to hardware keys (built against libpcsclite-dev on Linux).
        "pyscard>=2.0,<3",
        # GET /metrics: the Prometheus text format (escaping, histograms, custom collectors
        # read at scrape time) from the reference client instead of hand-written text.
        "prometheus_client>=0.20,<1",
    ],
    extras_require={
        "test": [
            # pytest 9.1 and later break schemathesis 4.32's pytest plugin (a test item lost `_nodeid`).
            "pytest>=8,<9.1",
            "pytest-timeout>=2.2,<3",
            "ruff>=0.5",
            # The type checker of scripts/typecheck, with the stubs of untyped dependencies.
            "mypy>=1.10,<3",
            "types-PyYAML",
            "schemathesis>=4.0,<5",
            "requests>=2.31,<3",
            # LicenseSpring's Python SDK, driven against a real server by tests/sdk/.
            "licensespring>=4.0,<5",
            # Yubico's ykman (and yubikit), driven against the virtual key by
            # tests/floatkey/hardware/test_virtual_key_provisioning.py.
            "yubikey-manager>=5.4,<6",
            # Drives Debian's chromium through chromedriver in tests/floatkey/console/.
            "selenium>=4.20,<5",
        ],
    },
    entry_points={"console_scripts": ["floatkey = floatkey.app.cli:main"]},
)
