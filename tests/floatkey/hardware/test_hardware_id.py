from floatkey.hardware.hardware_id import hardware_id

MACHINE = "machine-id"


def test_machine_id_without_key_bound_licenses_or_valid_keys():
    assert hardware_id(MACHINE, {"123"}, []) == MACHINE
    assert hardware_id(MACHINE, set(), ["123"]) == MACHINE


def test_the_valid_bound_key_is_the_identity():
    assert hardware_id(MACHINE, {"123"}, ["123"]) == "123"


def test_with_two_valid_keys_the_earliest_bound_one_wins():
    assert hardware_id(MACHINE, {"123", "456"}, ["456", "123"]) == "456"
    assert hardware_id(MACHINE, {"123"}, ["456", "123"]) == "123"


def test_a_valid_key_no_license_is_bound_to_still_stands_for_the_server():
    assert hardware_id(MACHINE, {"99", "100"}, ["456"]) == "99"
