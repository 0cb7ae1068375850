"""infra/ checked without a container engine: the compose file parses as the Compose spec, the Kubernetes
manifests (and the Job the GPU pool's template makes) validate against Kubernetes' schemas, the work-pool
templates are sound, and prefect.yaml's deployments name our flow, real recipes and the pools' variables."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose

from flows.pipeline import pipeline
from mmops.recipe import load_recipe
from mmops.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
KUBERNETES_VERSION = "1.30.0"
PLACEHOLDER = re.compile(r"^\{\{ (\w+) \}\}$")
FILLED_BY_WORKER = {"command", "env", "labels", "name"}
"""Placeholders a Prefect worker fills for every flow run, whatever the template's defaults."""
SECRETS = {"POSTGRES_PASSWORD": "pw", "MINIO_ROOT_USER": "user", "MINIO_ROOT_PASSWORD": "minio-pw"}


def compose() -> dict:
    text = (INFRA / "docker-compose.yml").read_text()
    for name, value in SECRETS.items():  # as docker compose would, from the .env file
        text = re.sub(rf"\$\{{{name}:\?[^}}]*\}}", value, text)
    return yaml.safe_load(text)


def test_the_compose_file_is_valid_compose_and_names_only_its_own_services():
    spec = PyCompose.from_yaml((INFRA / "docker-compose.yml").read_text())
    services = compose()["services"]
    assert set(spec.service_names()) == set(services) >= {"postgres", "minio", "prefect-server", "mlflow", "worker-cpu", "worker-gpu", "dashboard"}
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_compose_keeps_secrets_out_and_its_settings_are_valid_mmops_settings():
    raw = (INFRA / "docker-compose.yml").read_text()
    for name in SECRETS:
        assert f"${{{name}:?" in raw
    assert "CHANGE_ME" not in raw and not re.search(r"(PASSWORD|SECRET)[A-Z_]*: [^$\s{]", raw), "a secret written into the file"
    services = compose()["services"]
    env = services["worker-cpu"]["environment"]
    settings = Settings.for_workdir("/work", env=env)
    assert settings.tracking_uri.startswith("postgresql+psycopg://mmops:") and settings.uses_s3
    assert settings.s3_endpoint_url == "http://minio:9000" and settings.prefect_api_url == "http://prefect-server:4200/api"
    assert services["dashboard"]["environment"] == env
    gpu = services["worker-gpu"]
    assert gpu["environment"] == env, "the GPU worker has the shared settings too"
    (env_file,) = gpu["env_file"]
    lines = [line for line in (INFRA / env_file).read_text().splitlines() if line.strip() and not line.startswith("#")]
    training = Settings.for_workdir("/work", env=env | dict(line.split("=", 1) for line in lines)).distributed
    assert training == {"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed"}


def test_the_gpu_worker_runs_one_flow_at_a_time_beside_the_cpu_worker():
    services = compose()["services"]
    gpu, cpu = services["worker-gpu"], services["worker-cpu"]
    assert gpu["command"][-2:] == ["--limit", "1"] and "--limit" not in cpu["command"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"] and device["count"] == 1


def manifests() -> list[tuple[str, dict]]:
    return [(path.name, doc) for path in sorted((INFRA / "kubernetes").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_the_kubernetes_manifests_validate_against_kubernetes_schemas():
    found = manifests()
    assert {doc["kind"] for _, doc in found} >= {"Namespace", "Secret", "ServiceAccount", "Role", "RoleBinding", "Deployment"}
    for name, doc in found:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == "mmops", name


def template(name: str) -> dict:
    return json.loads((INFRA / "work-pools" / name).read_text())


def placeholders(value) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return set().union(*(placeholders(v) for v in items)) if items else set()


def render(value, variables: dict):
    """The job configuration with each placeholder replaced by its variable's value, as a worker does."""
    if isinstance(value, str) and (match := PLACEHOLDER.match(value)):
        return variables[match.group(1)]
    if isinstance(value, dict):
        return {k: render(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, variables) for v in value]
    return value


@pytest.mark.parametrize("name", ["process.json", "kubernetes-gpu.json"])
def test_each_work_pool_template_declares_every_variable_it_uses(name):
    made = template(name)
    jsonschema.Draft202012Validator.check_schema(made["variables"])
    declared = set(made["variables"]["properties"])
    assert placeholders(made["job_configuration"]) <= declared
    assert FILLED_BY_WORKER <= declared


def test_the_gpu_template_makes_a_valid_job_that_asks_for_a_gpu_on_a_gpu_node():
    made = template("kubernetes-gpu.json")
    defaults = {k: v.get("default") for k, v in made["variables"]["properties"].items()}
    values = {**defaults, "name": "mmops-flow-run-x", "labels": {"app": "mmops"}, "command": "prefect flow-run execute",
              "env": [{"name": "PREFECT__FLOW_RUN_ID", "value": "x"}]}
    job = render(made["job_configuration"]["job_manifest"], values)
    job["spec"]["template"]["spec"]["containers"][0]["args"] = values["command"].split()  # the worker splits the command
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1 == container["resources"]["requests"]["nvidia.com/gpu"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert container["envFrom"] == [{"secretRef": {"name": "mmops-settings"}}]
    trains_on_gpu = Settings.for_workdir("/work", env=defaults["env"])  # what every flow run gets, beside the worker's merge of its own
    assert trains_on_gpu.distributed == {"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed"}


POOL_TEMPLATES = {"mmops-process": "process.json", "mmops-gpu": "kubernetes-gpu.json"}


def test_prefect_yaml_deploys_real_recipes_through_our_flow_on_known_pools():
    from prefect.client.schemas.schedules import CronSchedule

    spec = yaml.safe_load((INFRA / "prefect.yaml").read_text())
    signature = inspect.signature(pipeline.fn).parameters
    parameters = set(signature)
    required = {name for name, parameter in signature.items() if parameter.default is inspect.Parameter.empty}
    assert spec["deployments"]
    for deployment in spec["deployments"]:
        assert deployment["entrypoint"] == "flows/pipeline.py:pipeline"
        assert required <= set(deployment["parameters"]) <= parameters  # a scheduled run never resumes (resume: false)
        load_recipe(ROOT / deployment["parameters"]["recipe_path"])  # raises if it is not a valid recipe
        pool = deployment["work_pool"]
        variables = template(POOL_TEMPLATES[pool["name"]])["variables"]
        for name, value in pool.get("job_variables", {}).items():
            jsonschema.validate(value, variables["properties"][name])
        for schedule in deployment["schedules"]:
            CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
        assert deployment["concurrency_limit"] == 1 and "mmops" in deployment["tags"]
