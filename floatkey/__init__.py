"""floatkey: a floating license server whose licenses can be bound to a hardware key.

The embedding API: start floatkey's actors inside your own process, check out and
release seats through them, and stop them, without HTTP::

    import floatkey

    settings = floatkey.load_settings(None, {"data_dir": Path("licenses")})
    with floatkey.Floatkey(settings) as fk:
        fk.add_license({"product": "cad", "floating_users": 5})
        answer = fk.register("cad", "alice")
        fk.unregister("cad", "alice")
"""

__version__ = "0.1.0"

from floatkey.app.config import Settings
from floatkey.app.config import load as load_settings
from floatkey.app.system import EXIT_NO_HARDWARE_KEY, Floatkey
from floatkey.errors import FloatkeyError
from floatkey.rules.seats import ClientInfo

__all__ = [
    "EXIT_NO_HARDWARE_KEY",
    "ClientInfo",
    "Floatkey",
    "FloatkeyError",
    "Settings",
    "__version__",
    "load_settings",
]
