"""The figures read at scrape time from the actors' state and the storage writer.

Nothing here keeps a copy: each scrape asks the license actors for their license objects
(the same view ``GET /api/v4/license`` shows), the hardware-key actor for its keys, and
the storage for its map use, so the figures cannot drift from what the server enforces.

Labels are what an administrator named (license id, product, feature code) or what the
hardware says (key serial); a user or host name sent by a client never becomes one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from floatkey.errors import FloatkeyError
from floatkey.hardware.states import STATE_BUSY, STATE_INVALID, STATE_VALID
from floatkey.storage import Storage

logger = logging.getLogger(__name__)

KEY_STATES = (STATE_VALID, STATE_INVALID, STATE_BUSY)
LICENSE_LABELS = ["license_id", "product"]
FEATURE_LABELS = ["license_id", "product", "feature"]


class State(Protocol):
    """What the collector reads: the running ``Floatkey``."""

    storage: Storage | None

    def licenses(self, product: str | None = None) -> list[dict[str, Any]]: ...

    def hardware_key_status(self) -> dict[str, Any]: ...

    def hardware_key_verification_ages(self) -> dict[str, float]: ...


class StateCollector(Collector):
    """Licenses, features, hardware keys and storage, as they are at the moment of the scrape."""

    def __init__(self, state: State) -> None:
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        storage = self._state.storage
        if storage is None:  # not running: only the event counters have something to say
            return
        yield from self._storage(storage)
        yield from self._licenses()
        yield from self._hardware_keys()

    def _storage(self, storage: Storage) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "floatkey_storage_map_used_ratio",
            "Share of mapSize the data file has grown to (a high-water mark); alert at 0.8.",
            value=storage.map_used(),
        )
        yield GaugeMetricFamily(
            "floatkey_storage_writable",
            "1 while the latest commit succeeded, 0 while changes are refused (disk or mapSize full).",
            value=1.0 if storage.writable[0] else 0.0,
        )

    def _licenses(self) -> Iterator[GaugeMetricFamily]:
        try:
            licenses = self._state.licenses()
        except FloatkeyError as exc:  # an actor did not answer in time; the scrape goes on
            logger.warning("metrics: license figures left out of this scrape: %s", exc.message)
            return
        actors = GaugeMetricFamily("floatkey_license_actors", "License actors running (one per license).")
        actors.add_metric([], len(licenses))
        yield actors
        families = {
            name: GaugeMetricFamily(name, doc, labels=labels)
            for name, doc, labels in (
                ("floatkey_license_seats_used", "Floating seats held (live or borrowed).", LICENSE_LABELS),
                ("floatkey_license_seats_allowed", "Floating seats the license allows.", LICENSE_LABELS),
                ("floatkey_license_consumptions_used", "Consumptions in the current period.", LICENSE_LABELS),
                (
                    "floatkey_license_consumptions_allowed",
                    "Consumptions allowed per period, overages included (+Inf: unlimited).",
                    LICENSE_LABELS,
                ),
                ("floatkey_feature_seats_used", "Seats held of a floating feature.", FEATURE_LABELS),
                ("floatkey_feature_seats_allowed", "Seats a floating feature allows.", FEATURE_LABELS),
                ("floatkey_feature_consumptions_used", "Feature consumptions this period.", FEATURE_LABELS),
                (
                    "floatkey_feature_consumptions_allowed",
                    "Feature consumptions allowed per period, overages included (+Inf: unlimited).",
                    FEATURE_LABELS,
                ),
            )
        }
        for lic in licenses:
            labels = [str(lic["id"]), str(lic["product_details"]["short_code"])]
            families["floatkey_license_seats_used"].add_metric(labels, lic["floating_in_use_devices"])
            families["floatkey_license_seats_allowed"].add_metric(labels, lic["floating_users"])
            families["floatkey_license_consumptions_used"].add_metric(labels, lic["total_consumptions"])
            families["floatkey_license_consumptions_allowed"].add_metric(
                labels, _allowed(lic["max_consumptions"], lic)
            )
            for feature in lic["product_features"]:
                flabels = [*labels, str(feature["code"])]
                if feature["is_floating"]:
                    families["floatkey_feature_seats_used"].add_metric(
                        flabels, feature["floating_in_use_devices"]
                    )
                    families["floatkey_feature_seats_allowed"].add_metric(flabels, feature["floating_users"])
                if feature["feature_type"] == "consumption":
                    families["floatkey_feature_consumptions_used"].add_metric(
                        flabels, feature["total_consumptions"]
                    )
                    families["floatkey_feature_consumptions_allowed"].add_metric(
                        flabels, _allowed(feature["max_consumption"], feature)
                    )
        yield from families.values()

    def _hardware_keys(self) -> Iterator[GaugeMetricFamily]:
        try:
            status = self._state.hardware_key_status()
            ages = self._state.hardware_key_verification_ages()
        except FloatkeyError as exc:
            logger.warning("metrics: hardware-key figures left out of this scrape: %s", exc.message)
            return
        pcsc = GaugeMetricFamily("floatkey_pcsc_up", "1 while the PC/SC service (pcscd) answers.")
        pcsc.add_metric([], 1.0 if status["pcsc"] == "running" else 0.0)
        yield pcsc
        state = GaugeMetricFamily(
            "floatkey_hardware_key_state",
            "1 for the state each key seen is in (valid, invalid, reader_busy), 0 for the others.",
            labels=["serial", "state"],
        )
        age = GaugeMetricFamily(
            "floatkey_hardware_key_verification_age_seconds",
            "Seconds since the key's last full verification (certificate and signature).",
            labels=["serial"],
        )
        for key in status["keys"]:
            serial = key["serial"]
            if serial is None:  # a card that never told its serial: nothing to name it by
                continue
            for name in KEY_STATES:
                state.add_metric([serial, name], 1.0 if key["state"] == name else 0.0)
            if serial in ages:
                age.add_metric([serial], ages[serial])
        yield state
        yield age


def _allowed(maximum: int, policy: dict[str, Any]) -> float:
    """The most consumptions the rule of rules/consumption.py lets through in a period."""
    if policy["allow_unlimited_consumptions"]:
        return math.inf
    if not policy["allow_overages"]:
        return float(maximum)
    if policy["max_overages"] == 0:  # overages allowed without a cap
        return math.inf
    return float(maximum + policy["max_overages"])
