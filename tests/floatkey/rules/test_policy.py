from datetime import UTC, datetime

import pytest

from floatkey.errors import FloatkeyError
from floatkey.rules.policy import policy_from_fields


def test_defaults_and_loose_types():
    p = policy_from_fields(
        {
            "product": "cad",
            "floating_users": "3",
            "allowOverages": "true",
            "max_overages": 2,
            "isHWKeyReq": "false",
            "unknown_key": 1,
        }
    )
    assert p.floating_users == 3
    assert p.consumption.allow_overages is True
    assert p.consumption.max_overages == 2
    assert p.is_hardware_key_auth is False
    assert p.floating_timeout == 30
    assert p.product_name == "cad"
    assert len(p.license_key) == 19


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, "missing_parameters"),
        ({"product": ""}, "missing_parameters"),
        ({"product": "no spaces"}, "validation_error"),
        ({"product": "p", "floating_users": 0}, "validation_error"),
        ({"product": "p", "floating_users": "many"}, "validation_error"),
        ({"product": "p", "floating_users": True}, "validation_error"),
        ({"product": "p", "floating_users": 1.5}, "validation_error"),
        ({"product": "p", "license_type": "forever"}, "validation_error"),
        ({"product": "p", "license_type": "time-limited"}, "missing_parameters"),
        ({"product": "p", "validity_period": "next tuesday"}, "validation_error"),
        ({"product": "p", "reset_consumption": True}, "missing_parameters"),
        ({"product": "p", "consumption_period": "hourly"}, "validation_error"),
        ({"product": "p", "features": [{"code": "a"}, {"code": "a"}]}, "validation_error"),
        ({"product": "p", "features": [{"name": "no code"}]}, "missing_parameters"),
        ({"product": "p", "features": "not json"}, "validation_error"),
        ({"product": "p", "metadata": [1, 2]}, "validation_error"),
        ({"product": "p", "metadata": {"n": 2**64}}, "validation_error"),
        ({"product": "p", "customer": {"ids": [-(2**63) - 1]}}, "validation_error"),
        ({"product": "p", "features": [{"code": "f", "metadata": {"\ud800": 1}}]}, "validation_error"),
        ({"product": "p", "max_consumptions": -1}, "validation_error"),
        ({"product": "p", "max_consumptions": 10**30}, "validation_error"),
    ],
)
def test_bad_policies_are_refused(fields, code):
    with pytest.raises(FloatkeyError) as err:
        policy_from_fields(fields)
    assert err.value.code == code


def test_features_and_record_round_trip():
    p = policy_from_fields(
        {
            "product": "cad",
            "license_type": "subscription",
            "validity_period": "2027-01-01",
            "features": [
                {"code": "render", "is_floating": True, "floating_users": 2},
                {
                    "code": "export",
                    "feature_type": "consumption",
                    "max_consumption": 5,
                    "reset_consumption": True,
                    "consumption_period": "monthly",
                },
            ],
            "metadata": {"tier": "gold"},
        }
    )
    assert p.validity_period == datetime(2027, 1, 1, tzinfo=UTC)
    assert p.feature("render").floating_users == 2
    assert p.feature("export").consumption.max_consumptions == 5
    assert p.feature("nope") is None


def test_features_may_come_as_a_json_string_from_a_query():
    p = policy_from_fields({"product": "cad", "features": '[{"code": "x"}]'})
    assert p.features[0].code == "x"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"validity_period": "9999-12-31T23:59:59-05:00"}, "validity_period"),
        ({"start_date": "9999-12-31T23:59:59-05:00"}, "start_date"),
        (
            {"features": [{"code": "a", "expiry_date": "9999-12-31T23:59:59-05:00"}]},
            "features[0].expiry_date",
        ),
        ({"start_date": "2027-01-02", "validity_period": "2027-01-01"}, "start_date"),
        ({"start_date": "2027-01-01", "validity_period": "2027-01-01"}, "start_date"),
    ],
)
def test_dates_out_of_range_or_out_of_order_are_refused_naming_the_field(fields, named):
    with pytest.raises(FloatkeyError) as err:
        policy_from_fields({"product": "p", **fields})
    assert err.value.code == "validation_error"
    assert named in err.value.message


def test_start_date_before_validity_period_is_fine():
    p = policy_from_fields(
        {"product": "p", "start_date": "2027-01-01", "validity_period": "2027-01-01T00:00:01Z"}
    )
    assert p.start_date < p.validity_period
