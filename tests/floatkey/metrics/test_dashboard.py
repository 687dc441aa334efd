"""conf/grafana-dashboard.json queries only metrics that a real server exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import ServerProcess

DASHBOARD = Path(__file__).resolve().parents[3] / "conf" / "grafana-dashboard.json"
METRIC = re.compile(r"\bfloatkey_[a-zA-Z0-9_]+")


def queries(node: Any) -> list[str]:
    """Every PromQL text of the dashboard: panel targets and template variables."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("expr", "definition") and isinstance(v, str)]
        return found + [q for v in node.values() for q in queries(v)]
    if isinstance(node, list):
        return [q for v in node for q in queries(v)]
    return []


def test_every_metric_the_dashboard_queries_is_in_a_real_scrape(server: ServerProcess) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = {name for query in queries(dashboard) for name in METRIC.findall(query)}
    assert len(used) >= 15, used  # the panels of the brief: seats, refusals, HTTP, keys, storage

    server.add_license(product="cad", floating_users=1, features=[{"code": "f", "is_floating": True}])
    assert server.post("/api/v4/register", {"product": "cad", "user": "alice"}).status_code == 200
    assert server.post("/api/v4/register", {"product": "cad", "user": "bob"}).status_code == 400
    answer = server.get("/metrics")
    assert answer.status_code == 200
    exposed: set[str] = set()
    for family in text_string_to_metric_families(answer.text):
        exposed.add(family.name)  # a family is listed even while it has no sample (no key seen)
        exposed.update(sample.name for sample in family.samples)
    assert sorted(used - exposed) == []


def test_every_panel_reads_the_chosen_data_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
