#!/usr/bin/env python3
"""Report (and optionally check) where the trustly-sidecar Secret goes in rendered manifests.

Reads `helm template` output (a file, or - for stdin) and prints JSON:

  {"workloads": [{"kind", "name", "podSecurityContext", "volumes": [...],
                  "containers": [{"name", "init", "restartPolicy", "volumeMounts", "env",
                                  "envFrom", "securityContext", "livenessProbe",
                                  "readinessProbe"}]}],
   "configMaps": [{"name", "data"}],
   "secrets": [{"name", "keys"}]}          # key names only, never values

tests/ops/helm.rs asserts on this JSON. With --check the script asserts the same invariants itself
(so helm/test.sh checks them without cargo) and exits 1 listing every violation:

  * the volume carrying the private key (a Secret volume projecting private-key.pem) exists once,
    with defaultMode 0400, and is mounted read-only by the sidecar container and no other;
  * no environment variable of any container carries the key or the password: no inline value
    with PEM material or a --forbid string, no secretKeyRef to the key's or password's Secret key;
  * the sidecar container runs hardened (non-root 65532, read-only root, no privilege escalation,
    all capabilities dropped, RuntimeDefault seccomp) and the pod sets an fsGroup;
  * probes: liveness GET /healthz, readiness GET /readyz;
  * no ConfigMap value holds PEM material, and no --forbid string appears anywhere in the text.

Needs PyYAML (helm/test.sh installs it into .ci/.tools/py).
"""

import argparse
import json
import sys

try:
    import yaml
except ImportError:  # pragma: no cover - environment problem, reported plainly
    sys.exit("check_mounts.py needs PyYAML: run .ci/run or helm/test.sh (they install it into "
             ".ci/.tools/py), or put it on PYTHONPATH")

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "Pod"}
KEY_FILE = "private-key.pem"
PASSWORD_FILE = "password"
PEM_MARKER = "PRIVATE KEY"


def pod_spec(doc):
    if doc["kind"] == "Pod":
        return doc.get("spec") or {}
    return ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}


def summarize(docs):
    out = {"workloads": [], "configMaps": [], "secrets": []}
    for doc in docs:
        kind = doc.get("kind")
        name = (doc.get("metadata") or {}).get("name")
        if kind in WORKLOAD_KINDS:
            spec = pod_spec(doc)
            containers = []
            for init, key in ((True, "initContainers"), (False, "containers")):
                for c in spec.get(key) or []:
                    containers.append({
                        "name": c.get("name"),
                        "init": init,
                        "restartPolicy": c.get("restartPolicy"),
                        "volumeMounts": c.get("volumeMounts") or [],
                        "env": c.get("env") or [],
                        "envFrom": c.get("envFrom") or [],
                        "securityContext": c.get("securityContext") or {},
                        "livenessProbe": c.get("livenessProbe"),
                        "readinessProbe": c.get("readinessProbe"),
                    })
            out["workloads"].append({
                "kind": kind,
                "name": name,
                "podSecurityContext": spec.get("securityContext") or {},
                "volumes": spec.get("volumes") or [],
                "containers": containers,
            })
        elif kind == "ConfigMap":
            out["configMaps"].append({"name": name, "data": doc.get("data") or {}})
        elif kind == "Secret":
            keys = sorted(set(doc.get("data") or {}) | set(doc.get("stringData") or {}))
            out["secrets"].append({"name": name, "keys": keys})
    return out


def secret_items(volume):
    """(key, path) pairs a Secret volume projects."""
    secret = volume.get("secret") or {}
    return [(i.get("key"), i.get("path")) for i in secret.get("items") or []]


def check(summary, text, sidecar, forbidden):
    problems = []
    for needle in forbidden:
        if needle and needle in text:
            problems.append(f"forbidden string {needle[:12]!r}... appears in the rendered output")
    for cm in summary["configMaps"]:
        for k, v in cm["data"].items():
            if PEM_MARKER in str(v):
                problems.append(f"ConfigMap {cm['name']}: {k} holds PEM key material")

    with_sidecar = [w for w in summary["workloads"]
                    if any(c["name"] == sidecar for c in w["containers"])]
    if not with_sidecar:
        problems.append(f"no workload runs a container named {sidecar!r}")
    for w in with_sidecar:
        where = f"{w['kind']}/{w['name']}"
        key_volumes = [v for v in w["volumes"]
                       if any(path == KEY_FILE for _, path in secret_items(v))]
        if len(key_volumes) != 1:
            problems.append(f"{where}: expected one Secret volume projecting {KEY_FILE}, "
                            f"found {len(key_volumes)}")
            continue
        vol = key_volumes[0]
        if vol["secret"].get("defaultMode") != 0o400:
            problems.append(f"{where}: volume {vol['name']} defaultMode is "
                            f"{vol['secret'].get('defaultMode')}, expected 256 (0400)")
        protected = {key for key, path in secret_items(vol) if path in (KEY_FILE, PASSWORD_FILE)}
        if not any(path == PASSWORD_FILE for _, path in secret_items(vol)):
            problems.append(f"{where}: volume {vol['name']} does not project {PASSWORD_FILE}")
        secret_name = vol["secret"].get("secretName")
        for c in w["containers"]:
            mounts = [m for m in c["volumeMounts"] if m.get("name") == vol["name"]]
            if c["name"] == sidecar:
                if len(mounts) != 1:
                    problems.append(f"{where}: {sidecar} mounts {vol['name']} {len(mounts)} times")
                for m in mounts:
                    if m.get("readOnly") is not True:
                        problems.append(f"{where}: {sidecar} mounts {vol['name']} read-write")
                    if m.get("subPath"):
                        problems.append(f"{where}: {sidecar} mounts {vol['name']} with subPath")
            elif mounts:
                problems.append(f"{where}: container {c['name']} mounts the key volume "
                                f"{vol['name']}; only {sidecar} may")
            for e in c["env"]:
                value = str(e.get("value", ""))
                if PEM_MARKER in value or any(s and s in value for s in forbidden):
                    problems.append(f"{where}: {c['name']} env {e.get('name')} carries a secret")
                ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
                if ref and ref.get("name") == secret_name and ref.get("key") in protected:
                    problems.append(f"{where}: {c['name']} env {e.get('name')} reads the "
                                    f"{ref.get('key')} key from the Secret")
            for src in c["envFrom"]:
                if (src.get("secretRef") or {}).get("name") == secret_name:
                    problems.append(f"{where}: {c['name']} envFrom imports the whole Secret")
        if not w["podSecurityContext"].get("fsGroup"):
            problems.append(f"{where}: pod has no fsGroup; the sidecar cannot read 0400 files")
        side = next(c for c in w["containers"] if c["name"] == sidecar)
        sc = side["securityContext"]
        expected = {"runAsNonRoot": True, "runAsUser": 65532, "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False}
        for field, want in expected.items():
            if sc.get(field) != want:
                problems.append(f"{where}: {sidecar} securityContext.{field} is "
                                f"{sc.get(field)!r}, expected {want!r}")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{where}: {sidecar} does not drop ALL capabilities")
        if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: {sidecar} seccompProfile is not RuntimeDefault")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            got = ((side.get(probe) or {}).get("httpGet") or {}).get("path")
            if got != path:
                problems.append(f"{where}: {sidecar} {probe} path is {got!r}, expected {path}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="rendered manifests, or - for stdin")
    parser.add_argument("--check", action="store_true", help="assert the invariants, exit 1 if broken")
    parser.add_argument("--sidecar", default="trustly-sidecar", help="name of the sidecar container")
    parser.add_argument("--forbid", action="append", default=[],
                        help="a string (e.g. a test password) that must not appear in the output")
    args = parser.parse_args()

    text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
    docs = [d for d in yaml.safe_load_all(text) if d]
    summary = summarize(docs)
    if not args.check:
        json.dump(summary, sys.stdout, indent=1, sort_keys=True)
        print()
        return 0
    problems = check(summary, text, args.sidecar, args.forbid)
    for p in problems:
        print(f"ERROR {args.file}: {p}")
    if not problems:
        n = sum(1 for w in summary["workloads"]
                if any(c["name"] == args.sidecar for c in w["containers"]))
        print(f"ok    {args.file}: key volume mounted read-only (0400) in {args.sidecar} only, "
              f"no secret in env or ConfigMap ({n} workload(s))")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
