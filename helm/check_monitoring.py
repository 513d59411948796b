#!/usr/bin/env python3
"""Check the alerts and the dashboard the chart ships, as rendered (`helm template` output).

  - every rendered PrometheusRule's spec is files/alerts.yaml exactly (the file promtool checks);
  - every rendered dashboard ConfigMap carries files/dashboard.json exactly, with the Grafana
    sidecar's label grafana_dashboard: "1";
  - the dashboard itself: unique panel ids, every panel placed (gridPos) and reading the
    ${datasource} variable, every target with an expr;
  - with --queries-out FILE: writes every dashboard query as a recording rule (Grafana's variables
    replaced by sample values) so `promtool check rules FILE` parses each one as PromQL.

Which metric names the queries may use is checked against a live scrape by tests/ops/monitoring.rs.

Usage: check_monitoring.py --chart helm/trustly-sidecar [--queries-out F] rendered.yaml...
Exit status: 0 when everything passed, 1 otherwise.
"""

import argparse
import json
import os
import sys

import yaml

ALERTS = "files/alerts.yaml"
DASHBOARD = "files/dashboard.json"
# Sample values for Grafana's variables, so each query parses as PromQL.
VARIABLES = {"$__rate_interval": "5m", "$namespace": "payments", "$job": ".*"}


def panels(dashboard):
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard):
    """(where, PromQL) of every target and every query variable."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('id')} {target.get('refId')}", target.get("expr")
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            yield f"variable {variable['name']}", variable["query"]["query"]


def check_dashboard(dashboard):
    problems = []
    ids = [p.get("id") for p in panels(dashboard)]
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")
    for panel in panels(dashboard):
        name = f"panel {panel.get('id')} ({panel.get('title')})"
        if not {"h", "w", "x", "y"} <= set(panel.get("gridPos") or {}):
            problems.append(f"{name}: no gridPos")
        if panel.get("type") == "row":
            continue
        if (panel.get("datasource") or {}).get("uid") != "${datasource}":
            problems.append(f"{name}: datasource is not ${{datasource}}")
        if not panel.get("targets"):
            problems.append(f"{name}: no targets")
    for where, expr in queries(dashboard):
        if not isinstance(expr, str) or not expr.strip():
            problems.append(f"{where}: no expr")
    return problems


def promql(expr):
    """A dashboard query as plain PromQL; label_values(metric, label) becomes its metric."""
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    if expr.startswith("label_values("):
        expr = expr[len("label_values("):].rsplit(",", 1)[0]
    return expr


def check_rendered(path, alerts, dashboard_text):
    problems, seen = [], set()
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for doc in docs:
        kind, meta = doc.get("kind"), doc.get("metadata") or {}
        name = f"{path}: {kind}/{meta.get('name')}"
        if kind == "PrometheusRule":
            seen.add("rule")
            if doc.get("spec") != alerts:
                problems.append(f"{name}: spec is not {ALERTS}")
        data = doc.get("data") or {}
        if kind == "ConfigMap" and "trustly-sidecar.json" in data:
            seen.add("dashboard")
            if (meta.get("labels") or {}).get("grafana_dashboard") != "1":
                problems.append(f'{name}: no label grafana_dashboard: "1"')
            if json.loads(data["trustly-sidecar.json"]) != json.loads(dashboard_text):
                problems.append(f"{name}: data is not {DASHBOARD}")
    return problems, seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", required=True)
    parser.add_argument("--queries-out")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()

    with open(os.path.join(args.chart, ALERTS), encoding="utf-8") as f:
        alerts = yaml.safe_load(f)
    with open(os.path.join(args.chart, DASHBOARD), encoding="utf-8") as f:
        dashboard_text = f.read()
    dashboard = json.loads(dashboard_text)
    problems = [f"{DASHBOARD}: {p}" for p in check_dashboard(dashboard)]
    for path in args.files:
        found, seen = check_rendered(path, alerts, dashboard_text)
        problems += found
        if not seen:
            problems.append(f"{path}: renders neither the PrometheusRule nor the dashboard")
        print(f"ok    {path}: {', '.join(sorted(seen))}" if not found else f"ERROR {path}")
    if args.queries_out:
        rules = [{"record": f"dashboard:query_{i}", "expr": promql(expr)}
                 for i, (_, expr) in enumerate(queries(dashboard))]
        with open(args.queries_out, "w", encoding="utf-8") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f)
    for p in problems:
        print(f"ERROR {p}")
    print(f"check_monitoring.py: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
