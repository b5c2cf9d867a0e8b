"""Checks that the deployment files agree with the code they deploy.

Schema validators know Kubernetes and Compose, not this product. This script knows both sides:

- every `MIRROR__SECTION__KEY` set by a manifest or the compose file is a setting of
  `common/src/config.rs`;
- probes, ports and listen addresses agree, and the probe paths are routes the services serve;
- secrets named by `*_FILE` settings are mounted where the settings point;
- the KEDA scaler watches exactly the partition queues (`common/src/topology.rs` names them) and
  never runs more workers than there are partitions;
- containers run as non-root with a read-only root file system, requests and limits, and a
  termination grace period longer than the longest call or message;
- every metric the alert rules and the dashboard use is exported by the receiver or the applier,
  and every query parses as PromQL.

usage: python contract.py --repo DIR --overlay NAME=rendered.yaml... --compose compose.json
       --alerts FILE --dashboard FILE
Prints each failed check; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import promql_parser
import yaml

failures: list[str] = []


def check(condition: bool, message: str) -> bool:
    if not condition:
        failures.append(message)
    return condition


# --- What the code declares. ---


def settings_keys(config_rs: str) -> set[str]:
    """`MIRROR__SECTION__KEY` for every field of every section struct of `Settings`."""
    structs = {
        m.group(1): set(re.findall(r"^\s*pub (\w+):", m.group(2), re.M))
        for m in re.finditer(r"pub struct (\w+) \{(.*?)^\}", config_rs, re.S | re.M)
    }
    sections = re.findall(r"^\s*pub (\w+): (\w+),", config_rs_struct(config_rs, "Settings"), re.M)
    keys = set()
    for section, struct in sections:
        for field in structs.get(struct, ()):
            keys.add(f"MIRROR__{section.upper()}__{field.upper()}")
    return keys


def config_rs_struct(config_rs: str, name: str) -> str:
    m = re.search(rf"pub struct {name} \{{(.*?)^\}}", config_rs, re.S | re.M)
    if not m:
        raise SystemExit(f"common/src/config.rs: struct {name} not found")
    return m.group(1)


def setting_default(config_rs: str, field: str) -> int:
    m = re.search(rf"^\s*{field}: ([0-9_]+),", config_rs, re.M)
    if not m:
        raise SystemExit(f"common/src/config.rs: no numeric default for {field}")
    return int(m.group(1).replace("_", ""))


def metric_names(*sources: str) -> set[str]:
    names = set()
    for text in sources:
        names.update(re.findall(r'pub const \w+: &str = "(mirror_\w+)";', text))
    return names


def routes(text: str) -> set[str]:
    return set(re.findall(r'\.route\("(/[a-z]+)"', text))


# --- Rendered manifests. ---


def documents(path: Path) -> list[dict]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs: list[dict], kind: str, name_prefix: str) -> list[dict]:
    return [
        d
        for d in docs
        if d.get("kind") == kind and d.get("metadata", {}).get("name", "").startswith(name_prefix)
    ]


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def check_overlay(name: str, docs: list[dict], known_keys: set[str], code: dict) -> None:
    where = f"overlay {name}"
    settings_maps = find(docs, "ConfigMap", "mirror-settings")
    if not check(len(settings_maps) == 1, f"{where}: expected one ConfigMap mirror-settings-*"):
        return
    settings = settings_maps[0].get("data", {})
    for key in settings:
        check(key in known_keys, f"{where}: ConfigMap sets {key}, which is no setting")
    for key in ("MIRROR__AUTH__CLIENT_ID", "MIRROR__DATABASE__URL"):
        check(key in settings, f"{where}: {key} is not set")
    for key in ("MIRROR__HTTP__LISTEN", "MIRROR__METRICS__LISTEN"):
        check(
            settings.get(key, "").startswith("0.0.0.0:"),
            f"{where}: {key} must listen on 0.0.0.0 in a container",
        )

    services = {
        "receiver": ("mirror-receiver", port_of(settings.get("MIRROR__HTTP__LISTEN", ":0"))),
        "applier": ("mirror-applier", port_of(settings.get("MIRROR__METRICS__LISTEN", ":0"))),
    }
    for component, (deployment_name, port) in services.items():
        deployments = find(docs, "Deployment", deployment_name)
        if not check(len(deployments) == 1, f"{where}: Deployment {deployment_name} missing"):
            continue
        check_deployment(f"{where}: {deployment_name}", deployments[0], component, port, settings,
                         known_keys, code)

    check_scaled_object(where, docs, settings)
    check_autoscaled(where, docs)

    for ingress in find(docs, "Ingress", ""):
        tls_hosts = {h for t in ingress["spec"].get("tls", []) for h in t.get("hosts", [])}
        for rule in ingress["spec"].get("rules", []):
            check(rule.get("host") in tls_hosts,
                  f"{where}: Ingress host {rule.get('host')} has no TLS certificate")
            for p in rule.get("http", {}).get("paths", []):
                check(p.get("path") == settings.get("MIRROR__HTTP__PATH"),
                      f"{where}: Ingress publishes {p.get('path')}, not the mirroring path "
                      f"{settings.get('MIRROR__HTTP__PATH')}")


def check_deployment(where, deployment, component, port, settings, known_keys, code) -> None:
    pod = deployment["spec"]["template"]["spec"]
    containers = pod["containers"]
    check(len(containers) == 1, f"{where}: expected one container")
    container = containers[0]
    check(container.get("args", [None])[0] == f"mirror-{component}" and "command" not in container,
          f"{where}: must run `mirror-{component}` as args (the image's tini entrypoint forwards "
          "SIGTERM)")
    for env in container.get("env", []):
        if env["name"].startswith("MIRROR__"):
            check(env["name"] in known_keys, f"{where}: env {env['name']} is no setting")

    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    check(port in ports.values(), f"{where}: no containerPort {port} (the configured listen port)")
    served = code["routes"][component]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        spec = container.get(probe, {}).get("httpGet")
        if not check(spec is not None, f"{where}: {probe} must be an httpGet"):
            continue
        check(spec["path"] == path, f"{where}: {probe} must ask {path}, not {spec['path']}")
        check(spec["path"] in served, f"{where}: {spec['path']} is not served by the {component}")
        probe_port = ports.get(spec["port"], spec["port"])
        check(probe_port == port, f"{where}: {probe} asks port {spec['port']}, not {port}")

    security = pod.get("securityContext", {})
    check(security.get("runAsNonRoot") is True, f"{where}: pod must set runAsNonRoot")
    csec = container.get("securityContext", {})
    check(csec.get("readOnlyRootFilesystem") is True, f"{where}: root file system must be read-only")
    check(csec.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation allowed")
    check("ALL" in csec.get("capabilities", {}).get("drop", []), f"{where}: capabilities not dropped")
    resources = container.get("resources", {})
    for part in ("requests", "limits"):
        check("memory" in resources.get(part, {}), f"{where}: no memory {part}")
    check("cpu" in resources.get("requests", {}), f"{where}: no cpu request")

    mounts = {
        m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])
    }
    secret_volumes = {
        v["name"]: v["secret"] for v in pod.get("volumes", []) if "secret" in v
    }
    file_settings = {
        "receiver": ["MIRROR__AUTH__PRIVATE_KEY_FILE"],
        "applier": ["MIRROR__DATABASE__PASSWORD_FILE"],
    }[component]
    for key in file_settings:
        file = settings.get(key)
        if not check(file is not None, f"{where}: {key} is not set"):
            continue
        directory, _, name = file.rpartition("/")
        volume = mounts.get(directory)
        secret = secret_volumes.get(volume)
        if check(secret is not None, f"{where}: {key}={file} is not in a mounted secret"):
            items = {i["path"] for i in secret.get("items", [])}
            check(not items or name in items,
                  f"{where}: secret {secret.get('secretName')} mounts no {name}")

    grace = pod.get("terminationGracePeriodSeconds", 30)
    worst = code["worst_seconds"][component]
    check(grace > worst, f"{where}: terminationGracePeriodSeconds {grace} must exceed {worst} s")


def check_scaled_object(where: str, docs: list[dict], settings: dict) -> None:
    objects = find(docs, "ScaledObject", "mirror-applier")
    if not check(len(objects) == 1, f"{where}: ScaledObject mirror-applier missing"):
        return
    spec = objects[0]["spec"]
    partitions = int(settings.get("MIRROR__AMQP__PARTITIONS", "32"))
    prefix = settings.get("MIRROR__AMQP__PREFIX", "mirror")
    check(spec["scaleTargetRef"]["name"] == "mirror-applier", f"{where}: scales the wrong target")
    check(1 <= spec.get("minReplicaCount", 0),
          f"{where}: minReplicaCount must be at least 1 (TableSchema calls wait for a worker)")
    check(spec.get("maxReplicaCount", 100) <= partitions,
          f"{where}: maxReplicaCount {spec.get('maxReplicaCount')} exceeds the {partitions} "
          "partitions (the extra workers would sit idle)")
    queues = [f"{prefix}.p{n:02}" for n in range(partitions)]
    others = [f"{prefix}.dlq", f"{prefix}.members", f"{prefix}.partitions", f"{prefix}x.p01",
              f"other.{prefix}.p01"]
    for trigger in spec["triggers"]:
        meta = trigger["metadata"]
        check(trigger["type"] == "rabbitmq", f"{where}: unexpected trigger {trigger['type']}")
        check(meta.get("protocol") == "http", f"{where}: useRegex needs protocol http")
        check(meta.get("useRegex") == "true" and meta.get("operation") == "sum",
              f"{where}: the trigger must sum the queues matched by a regex")
        pattern = re.compile(meta["queueName"])
        missed = [q for q in queues if not pattern.fullmatch(q)]
        wrong = [q for q in others if pattern.fullmatch(q)]
        check(not missed, f"{where}: queueName {meta['queueName']} misses {missed[:3]}")
        check(not wrong, f"{where}: queueName {meta['queueName']} also matches {wrong}")


def check_autoscaled(where: str, docs: list[dict]) -> None:
    for deployment in find(docs, "Deployment", "mirror-"):
        check("replicas" not in deployment["spec"],
              f"{where}: {deployment['metadata']['name']} sets replicas, which its autoscaler owns")
    for pdb in find(docs, "PodDisruptionBudget", ""):
        check(pdb["spec"].get("minAvailable") != 0, f"{where}: {pdb['metadata']['name']} is void")


# --- Compose. ---


def check_compose(config: dict, known_keys: set[str]) -> None:
    services = config["services"]
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if key.startswith("MIRROR__"):
                check(key in known_keys, f"compose {name}: {key} is no setting")
            if key in ("MIRROR__HTTP__LISTEN", "MIRROR__METRICS__LISTEN"):
                check(str(value).startswith("0.0.0.0:"), f"compose {name}: {key} must bind 0.0.0.0")
        for dependency, how in (service.get("depends_on") or {}).items():
            if how.get("condition") == "service_healthy":
                check("healthcheck" in services.get(dependency, {}),
                      f"compose {name}: waits for {dependency} to be healthy, which has no check")
    applier = services.get("applier", {})
    check("container_name" not in applier and not applier.get("ports"),
          "compose applier: a container name or published port would break --scale applier=N")
    demo = services.get("demo", {})
    check(demo.get("profiles") == ["demo"], "compose demo: must be in the `demo` profile only")
    command = demo.get("command") or []
    check(command[:2] == ["mirror-sim", "run"] and "--verify" in command,
          "compose demo: must run `mirror-sim run --verify`")


# --- Alerts and dashboard. ---


def check_queries(where: str, queries: list[str], exported: set[str]) -> None:
    check(len(queries) > 0, f"{where}: no queries found")
    for query in queries:
        parsed = query.replace("$__rate_interval", "5m").replace("$__interval", "1m")
        try:
            promql_parser.parse(parsed)
        except ValueError as error:
            failures.append(f"{where}: does not parse ({error}): {query}")
        for name in set(re.findall(r"\b(mirror_[a-z_]+)\b", query)):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            check(name in exported or base in exported,
                  f"{where}: {name} is not a metric the receiver or the applier exports")


def alert_queries(path: Path) -> list[str]:
    rules = yaml.safe_load(path.read_text())
    queries = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            where = f"{path.name}: {rule.get('alert', '?')}"
            check({"alert", "expr", "labels", "annotations"} <= rule.keys(),
                  f"{where}: needs alert, expr, labels, annotations")
            check(rule.get("labels", {}).get("severity") in ("warning", "critical"),
                  f"{where}: severity must be warning or critical")
            check("summary" in rule.get("annotations", {}), f"{where}: no summary")
            queries.append(rule["expr"])
    return queries


def dashboard_queries(path: Path) -> list[str]:
    dashboard = json.loads(path.read_text())
    queries = []
    ids = set()
    for panel in dashboard["panels"]:
        check(panel["id"] not in ids, f"{path.name}: panel id {panel['id']} repeated")
        ids.add(panel["id"])
        queries.extend(t["expr"] for t in panel.get("targets", []))
    return queries


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--overlay", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--compose", type=Path, required=True)
    parser.add_argument("--alerts", type=Path, required=True)
    parser.add_argument("--dashboard", type=Path, required=True)
    args = parser.parse_args()

    repo = args.repo
    config_rs = (repo / "common/src/config.rs").read_text()
    known_keys = settings_keys(config_rs)
    if len(known_keys) < 20:
        raise SystemExit(f"common/src/config.rs: only {len(known_keys)} settings found")
    topology = (repo / "common/src/topology.rs").read_text()
    if 'format!("{}.p{partition:02}", self.prefix)' not in topology:
        raise SystemExit("common/src/topology.rs: partition queue names changed; update this check")
    body = setting_default(config_rs, "body_timeout_secs") if "body_timeout_secs" in config_rs \
        else 120
    code = {
        "routes": {
            "receiver": routes((repo / "receiver/src/startup.rs").read_text()),
            "applier": routes((repo / "applier/src/health.rs").read_text()),
        },
        # The longest a call or a message may legitimately take before the process can exit.
        "worst_seconds": {
            "receiver": body + setting_default(config_rs, "schema_reply_timeout_secs")
            + setting_default(config_rs, "publish_timeout_secs"),
            "applier": 120,
        },
    }
    exported = metric_names(
        (repo / "receiver/src/metrics.rs").read_text(),
        (repo / "applier/src/metrics.rs").read_text(),
    )

    for overlay in args.overlay:
        name, _, file = overlay.partition("=")
        check_overlay(name, documents(Path(file)), known_keys, code)
    check_compose(json.loads(args.compose.read_text()), known_keys)
    check_queries(args.alerts.name, alert_queries(args.alerts), exported)
    check_queries(args.dashboard.name, dashboard_queries(args.dashboard), exported)

    for failure in failures:
        print(f"FAIL {failure}")
    checked = len(args.overlay)
    if failures:
        print(f"{len(failures)} problems")
        return 1
    print(f"ok   settings, probes, secrets, scaling and security of {checked} overlays; compose; "
          f"{len(exported)} metrics cover the alerts and the dashboard")
    return 0


if __name__ == "__main__":
    sys.exit(main())
