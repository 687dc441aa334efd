"""The states a hardware key can be in, as ``GET /api/v4/hardware_key`` shows them."""

STATE_VALID = "valid"
STATE_INVALID = "invalid"
STATE_BUSY = "reader_busy"
