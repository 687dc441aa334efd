"""Route handlers: read the fields, call the actor system, return the answer.

No business rule lives here. Each handler takes the running ``Floatkey``, the request
fields (the JSON body of a POST, the query of a GET) and the path parameters.
"""

from __future__ import annotations

from typing import Any

from floatkey import inputs
from floatkey.app.system import Floatkey
from floatkey.console import assets
from floatkey.errors import FloatkeyError
from floatkey.hardware import doctor
from floatkey.usage import query as usage_query
from floatkey.web import fields as f
from floatkey.web import pages

Fields = dict[str, Any]


def register(fk: Floatkey, body: Fields, _: Fields) -> Any:
    return fk.register(
        f.product(body), f.user(body), license_id=inputs.license_id(body), client=f.client(body)
    )


def unregister(fk: Floatkey, body: Fields, _: Fields) -> Any:
    return fk.unregister(f.product(body), f.user(body), license_id=inputs.license_id(body))


def unregister_all(fk: Floatkey, _: Fields, __: Fields) -> Any:
    fk.unregister_all()
    return ""


def borrow(fk: Floatkey, body: Fields, _: Fields) -> Any:
    product, user = f.product(body), f.user(body)
    return fk.borrow(
        product,
        user,
        license_id=inputs.license_id(body),
        client=f.client(body),
        borrowed_until=f.borrowed_until(body, "borrowed_until"),
    )


def add_consumption(fk: Floatkey, body: Fields, _: Fields) -> Any:
    product = f.product(body)
    inputs.text(body, "user")
    return fk.add_consumption(product, f.consumptions(body), license_id=inputs.license_id(body))


def add_feature_consumption(fk: Floatkey, body: Fields, _: Fields) -> Any:
    product, feature = f.product(body), f.feature(body)
    inputs.text(body, "user")
    return fk.add_feature_consumption(
        product, feature, f.consumptions(body), license_id=inputs.license_id(body)
    )


def feature_register(fk: Floatkey, body: Fields, _: Fields) -> Any:
    product, feature, user = f.product(body), f.feature(body), f.user(body)
    return fk.feature_register(
        product,
        feature,
        user,
        license_id=inputs.license_id(body),
        client=f.client(body),
        borrow_until=f.borrowed_until(body, "borrow_until", "borrowed_until"),
    )


def feature_release(fk: Floatkey, body: Fields, _: Fields) -> Any:
    product, feature, user = f.product(body), f.feature(body), f.user(body)
    return fk.feature_release(product, feature, user, license_id=inputs.license_id(body))


def feature_release_all(fk: Floatkey, _: Fields, __: Fields) -> Any:
    fk.feature_release_all()
    return ""


def front_page(fk: Floatkey, _: Fields, __: Fields) -> Any:
    return assets.asset(assets.INDEX)


def console_file(fk: Floatkey, _: Fields, path: Fields) -> Any:
    return assets.asset(path["name"])


def health(fk: Floatkey, _: Fields, __: Fields) -> Any:
    return fk.health()


def live(fk: Floatkey, _: Fields, __: Fields) -> Any:
    if not fk.running:
        raise FloatkeyError("service_unavailable", "floatkey is not running.")
    return {"status": "alive"}


def ready(fk: Floatkey, _: Fields, __: Fields) -> Any:
    reasons = fk.readiness()
    if reasons:
        raise FloatkeyError("service_unavailable", f"Not ready: {'; '.join(reasons)}.", reasons=reasons)
    return {"status": "ready"}


def licenses(fk: Floatkey, query: Fields, _: Fields) -> Any:
    return fk.licenses(inputs.text(query, "product"))


def add_license(fk: Floatkey, body: Fields, _: Fields) -> Any:
    return fk.add_license(body)


def activation_request(fk: Floatkey, body: Fields, _: Fields) -> Any:
    return fk.activation_request(f.product(body))


def upload_license(fk: Floatkey, body: Fields, _: Fields) -> Any:
    return fk.import_license(body["file"])


def remove_license(fk: Floatkey, _: Fields, path: Fields) -> Any:
    fk.remove_license(license_id=_path_id(path))
    return ""


def remove_product(fk: Floatkey, query: Fields, _: Fields) -> Any:
    fk.remove_license(f.product(query), inputs.license_id(query))
    return "product_removed"


def registrations(fk: Floatkey, query: Fields, _: Fields) -> Any:
    return {"registrations": fk.registrations(inputs.license_id(query))}


def force_release(fk: Floatkey, _: Fields, path: Fields) -> Any:
    fk.force_release(_path_id(path), path["user"])
    return ""


def usage(fk: Floatkey, query: Fields, _: Fields) -> Any:
    license_id = inputs.integer(query, "license_id", minimum=1, maximum=2**63 - 1, required=True)
    assert license_id is not None
    return fk.usage(license_id, query.get("from"), query.get("to"), query.get("step"))


def usage_report(fk: Floatkey, query: Fields, _: Fields) -> Any:
    license_id = inputs.integer(query, "license_id", minimum=1, maximum=2**63 - 1, required=True)
    assert license_id is not None
    return fk.usage_report(license_id, query.get("from"), query.get("to"))


def usage_csv(fk: Floatkey, query: Fields, path: Fields) -> Any:
    return pages.Csv(usage_query.to_csv(usage(fk, query, path)))


def hardware_key(fk: Floatkey, _: Fields, __: Fields) -> Any:
    return fk.hardware_key_status()


def hardware_doctor(fk: Floatkey, _: Fields, __: Fields) -> Any:
    return doctor.findings(fk.settings.hardware_key.ignore_readers)


def _path_id(path: Fields) -> int:
    value = inputs.integer(path, "license_id", minimum=1, maximum=2**63 - 1, required=True)
    assert value is not None
    return value
