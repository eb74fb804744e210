"""deploy/monitoring: alert rules pass promtool, and every query names a metric the server exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from icapdlp.observability.metrics import READY_CHECKS, Metrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
ALERTS = MONITORING / "alerts.yml"
PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"
ALERT_TESTS = Path(__file__).parent / "promtool" / "alerts_test.yml"

#: series Prometheus itself adds to every target; not exported by icapdlp
PROMETHEUS_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
#: the Grafana variables the dashboard uses, with values that make the query plain PromQL
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$instance": ".*"}

_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                 "bool", "offset", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[match.end():].lstrip()
        if rest.startswith("(") or match.group().lower() in _PROMQL_WORDS:
            continue  # a function or aggregation, or a keyword
        names.add(match.group())
    return names


def exported_names() -> set[str]:
    """Every series name a fresh server registry exposes (histogram _bucket/_sum/_count, counter _total)."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    # the server runs the readiness checks before every /metrics answer (HealthServer.on_readiness)
    metrics.record_readiness(True, {check: {"ok": True} for check in READY_CHECKS})
    return {sample.name for family in registry.collect() for sample in family.samples}


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((f"panel {panel['title']!r}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            queries.append((f"variable {variable['name']}", inner.group(1) if inner else query))
    return queries


def alert_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: install the Debian package 'prometheus' (tools/bootstrap.sh does)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def test_the_metric_name_parser_finds_names_and_only_names():
    expr = ('histogram_quantile(0.99, sum by (method, le) (rate(a_seconds_bucket{job="x",le=~"1e3|b"}[$__rate_interval])))'
            ' / on(instance) group_left(version) b_info + sum without (reason) (increase(c_total[1h] offset 10m))'
            ' > bool 2e-3 unless absent(up{job="icapdlp"}) or d:recorded:rate5m')
    assert metric_names(expr) == {"a_seconds_bucket", "b_info", "c_total", "up", "d:recorded:rate5m"}


def test_promtool_accepts_the_alert_rules():
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_queries())} rules found" in result.stdout


def test_each_alert_fires_on_its_traffic_and_not_on_healthy_traffic():
    result = promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {t["alertname"] for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
              for t in case["alert_rule_test"] if t.get("exp_alerts")}
    assert tested == {name for name, _ in alert_queries()}, "every alert has a firing test"


def test_the_example_prometheus_config_is_valid_and_loads_the_rules():
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["icapdlp:9344"]
    assert config["scrape_configs"][0]["job_name"] == "icapdlp"


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_query_names_only_metrics_the_server_exports(source):
    queries = dashboard_queries() if source == "dashboard" else alert_queries()
    exported = exported_names() | PROMETHEUS_SYNTHETIC
    assert queries
    for where, expr in queries:
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        assert names <= exported, f"{where}: {sorted(names - exported)} not exported by icapdlp"


def test_every_dashboard_query_is_valid_promql(tmp_path):
    """promtool parses each query (Grafana variables substituted) as a recording rule."""
    rules = []
    for n, (_, expr) in enumerate(dashboard_queries()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
        rules.append({"record": f"dashboard:query{n}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_covers_what_operators_need():
    dashboard = json.loads(DASHBOARD.read_text())
    used = set().union(*(metric_names(expr) for _, expr in dashboard_queries()))
    for needed in ("icapdlp_requests_total", "icapdlp_request_duration_seconds_bucket",
                   "icapdlp_stage_duration_seconds_bucket", "icapdlp_blocks_total", "icapdlp_cdr_findings_total",
                   "icapdlp_worker_queue_depth", "icapdlp_workers_busy", "process_resident_memory_bytes",
                   "icapdlp_dicom_objects_total", "icapdlp_body_bytes_total", "icapdlp_ready", "icapdlp_ready_check",
                   "icapdlp_reloads_total", "icapdlp_config_last_reload_successful",
                   "icapdlp_config_last_reload_success_timestamp_seconds", "icapdlp_worker_resident_memory_bytes",
                   "icapdlp_worker_resident_memory_max_bytes", "icapdlp_worker_cpu_seconds_total"):
        assert needed in used, needed
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_the_objects_panel_draws_only_pairs_that_had_traffic(tmp_path):
    """Issue 16.8: "objects by wrapping and verdict" drew a line for every pre-initialised pair, always zero.

    promtool evaluates the panel's query on every pair the server exports, one of them
    counting: exactly that one series comes back.
    """
    (expr,) = [e for where, e in dashboard_queries() if where == "panel 'DICOM objects by wrapping and verdict'"]
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    registry = CollectorRegistry()
    Metrics(registry)
    pairs = [s.labels for f in registry.collect() for s in f.samples if s.name == "icapdlp_dicom_objects_total"]
    assert len(pairs) > 30
    series = [{"series": 'icapdlp_dicom_objects_total{job="icapdlp",instance="a",wrapping="%s",verdict="%s"}'
               % (p["wrapping"], p["verdict"]),
               "values": "0+60x20" if (p["wrapping"], p["verdict"]) == ("compressed>zip", "rewritten") else "0x20"}
              for p in pairs]
    rules = tmp_path / "empty.yml"
    rules.write_text("groups: []\n")
    test = {"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [{"expr": expr, "eval_time": "15m",
                              "exp_samples": [{"labels": '{wrapping="compressed>zip",verdict="rewritten"}', "value": 1}]}]}]}
    path = tmp_path / "panel_test.yml"
    path.write_text(yaml.safe_dump(test))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
