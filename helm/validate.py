#!/usr/bin/env python3
"""Validate rendered manifests (`helm template` output) against Kubernetes' OpenAPI schemas.

Uses the kubernetes-validate package as a library, in strict mode (unknown fields are errors),
for every Kubernetes version given with -k. Unlike its command line, a kind without a schema is an
ERROR here, not a warning: only the custom resources listed in CRD_KINDS are let through, and
those get a small structural check of their own (the PrometheusRule's rules are also checked and
unit-tested by promtool in test.sh).

Usage: validate.py -k 1.31.0 [-k 1.29.0] rendered.yaml...
Exit status: 0 when every document of every file passed, 1 otherwise.
"""

import argparse
import sys

import kubernetes_validate
import yaml
from kubernetes_validate import utils

# Custom resources the chart may render; no Kubernetes schema covers them.
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


def check_service_monitor(doc):
    """The fields prometheus-operator needs, so a typo in the template still fails CI."""
    problems = []
    spec = doc.get("spec") or {}
    if not (spec.get("selector") or {}).get("matchLabels"):
        problems.append("spec.selector.matchLabels is empty")
    endpoints = spec.get("endpoints") or []
    if not endpoints:
        problems.append("spec.endpoints is empty")
    for i, ep in enumerate(endpoints):
        for field in ("port", "path"):
            if not isinstance(ep.get(field), str) or not ep.get(field):
                problems.append(f"spec.endpoints[{i}].{field} must be a non-empty string")
    extra = set(spec) - {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels",
                         "podTargetLabels", "sampleLimit"}
    if extra:
        problems.append(f"unexpected spec fields {sorted(extra)}")
    return problems


def check_prometheus_rule(doc):
    """spec.groups as prometheus-operator reads them: named groups of alerting rules."""
    problems = []
    spec = doc.get("spec") or {}
    extra = set(spec) - {"groups"}
    if extra:
        problems.append(f"unexpected spec fields {sorted(extra)}")
    groups = spec.get("groups") or []
    if not groups:
        problems.append("spec.groups is empty")
    for g, group in enumerate(groups):
        if not isinstance(group.get("name"), str) or not group.get("name"):
            problems.append(f"spec.groups[{g}].name must be a non-empty string")
        for r, rule in enumerate(group.get("rules") or []):
            where = f"spec.groups[{g}].rules[{r}]"
            if not isinstance(rule.get("alert"), str) or not isinstance(rule.get("expr"), str):
                problems.append(f"{where} needs an alert name and an expr string")
            extra = set(rule) - {"alert", "expr", "for", "labels", "annotations"}
            if extra:
                problems.append(f"{where}: unexpected fields {sorted(extra)}")
    return problems


CRD_CHECKS = {"ServiceMonitor": check_service_monitor, "PrometheusRule": check_prometheus_rule}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", "--kubernetes-version", action="append", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    failures = 0
    checked = 0
    for path in args.files:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        if not docs:
            print(f"ERROR {path}: no manifests rendered")
            failures += 1
        for doc in docs:
            name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
            key = (doc.get("apiVersion"), doc.get("kind"))
            if key in CRD_KINDS:
                problems = CRD_CHECKS[key[1]](doc)
                for p in problems:
                    print(f"ERROR {path}: {name}: {p}")
                failures += bool(problems)
                checked += 1
                if not problems:
                    print(f"ok    {path}: {name} (custom resource {key[0]}, structural check only)")
                continue
            for version in args.kubernetes_version:
                checked += 1
                try:
                    utils.validate(doc, version, strict=True)
                    print(f"ok    {path}: {name} against Kubernetes {version}")
                except utils.ValidationError as e:
                    where = ".".join(str(p) for p in e.path)
                    print(f"ERROR {path}: {name} against Kubernetes {version}: {where}: {e.message}")
                    failures += 1
                except (utils.SchemaNotFoundError, utils.InvalidSchemaError) as e:
                    print(f"ERROR {path}: {name}: no schema ({getattr(e, 'message', e)}); "
                          "add it to CRD_KINDS if intended")
                    failures += 1
                except utils.VersionNotSupportedError:
                    print(f"ERROR kubernetes-validate {kubernetes_validate.__version__} "
                          f"does not know Kubernetes {version}")
                    return 1
    print(f"validate.py: {checked} checks, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
