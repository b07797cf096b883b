"""Checks the deployment files without Docker or a cluster (neither is
available where the tests run): the Kubernetes manifests against the
Kubernetes API's JSON schemas (kubernetes-validate, strict: unknown fields
are errors), the kustomization's files, the compose files' structure, and
that every variable they use is given by their example env files.
Run by tests/it/deploy.rs; exits 1 naming each problem.

usage: check.py [REPO_ROOT]
"""
import os
import re
import sys

import kubernetes_validate
import yaml

root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
problems = []
K8S_VERSION = "1.30.0"


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def env_keys(path):
    keys = set()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                keys.add(line.split("=", 1)[0])
    return keys


def required_vars(path):
    """${VAR} references without a default in a file."""
    with open(path) as f:
        text = f.read()
    return {m.group(1) for m in re.finditer(r"\$\{([A-Za-z0-9_]+)\}", text)}


# --- Kubernetes ---------------------------------------------------------
k8s = os.path.join(root, "deploy", "kubernetes")
kustomization = load_all(os.path.join(k8s, "kustomization.yaml"))[0]
for res in kustomization["resources"]:
    path = os.path.join(k8s, res)
    if not os.path.exists(path):
        problems.append(f"kustomization: {res} does not exist")
        continue
    for doc in load_all(path):
        kind = doc.get("kind")
        if doc.get("apiVersion", "").startswith("monitoring.coreos.com/"):
            # A CRD the Kubernetes schemas do not have: its required shape.
            ep = (doc.get("spec") or {}).get("endpoints") or []
            if kind != "ServiceMonitor" or not ep or not all("port" in e for e in ep):
                problems.append(f"{res}: not a ServiceMonitor with endpoints and ports")
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            problems.append(f"{res} ({kind}): {e.message} at {list(e.path)}")
        except Exception as e:  # noqa: BLE001 (schema lookups and the like)
            problems.append(f"{res} ({kind}): {e}")
        if kind == "Deployment":
            c = doc["spec"]["template"]["spec"]["containers"][0]
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if port not in ports:
                    problems.append(f"{res}: {probe} names port {port!r}, not one of {sorted(ports)}")
            if not c.get("lifecycle", {}).get("preStop"):
                problems.append(f"{res}: no preStop (graceful drain)")
for gen in kustomization.get("configMapGenerator", []):
    for f in gen.get("files", []):
        src = f.split("=", 1)[-1]
        if not os.path.exists(os.path.join(k8s, src)):
            problems.append(f"configMapGenerator: {src} does not exist")
secrets_example = os.path.join(k8s, "secrets.env.example")
given = env_keys(secrets_example)
missing = required_vars(os.path.join(root, "deploy", "sluice-fleet.yaml")) - given
if missing:
    problems.append(f"secrets.env.example lacks {sorted(missing)} (deploy/sluice-fleet.yaml needs them)")

# --- Compose -------------------------------------------------------------
compose = os.path.join(root, "deploy", "compose")
env_example = env_keys(os.path.join(compose, "env.example"))
for name, config in [("docker-compose.yml", "sluice.yaml"), ("docker-compose.prod.yml", "sluice-fleet.yaml")]:
    path = os.path.join(compose, name)
    doc = load_all(path)[0]
    services = doc.get("services") or {}
    if not services:
        problems.append(f"{name}: no services")
    for sname, svc in services.items():
        if "image" not in svc and "build" not in svc:
            problems.append(f"{name}: {sname} has neither image nor build")
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                if not os.path.exists(os.path.join(compose, src)):
                    problems.append(f"{name}: {sname} mounts {src}, which does not exist")
            elif src not in (doc.get("volumes") or {}):
                problems.append(f"{name}: {sname} mounts volume {src!r}, not declared")
        for dep in svc.get("depends_on", []) if isinstance(svc.get("depends_on"), list) else (svc.get("depends_on") or {}):
            if dep not in services:
                problems.append(f"{name}: {sname} depends on {dep!r}, not a service")
    with open(path) as f:
        used = {m.group(1) for m in re.finditer(r"(?<!\$)\$\{([A-Za-z0-9_]+)", f.read())}
    if used - env_example:
        problems.append(f"{name} uses {sorted(used - env_example)}, not in env.example")
    # What the gateway's config needs: env.example, plus what compose sets.
    set_here = set()
    for svc in services.values():
        env = svc.get("environment") or {}
        set_here |= set(env if isinstance(env, dict) else [e.split("=", 1)[0] for e in env])
    need = required_vars(os.path.join(root, "deploy", config)) - env_example - set_here
    if need:
        problems.append(f"{name}: deploy/{config} needs {sorted(need)}, given by neither env.example nor the file")

if problems:
    for p in problems:
        print("FAIL:", p, file=sys.stderr)
    sys.exit(1)
print("ok")
