"""Issue 14: the deployment files under deploy/ hang together. No Docker daemon or Kubernetes cluster
runs here, so the compose file, Dockerfiles, workspace and Helm values are parsed and cross-checked
(and `docker compose config` runs when a compose client is installed)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from ct_pipelines_tests.support.postgres import PostgresServer

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
DOCKER = DEPLOY / "docker"
SERVICES = {"dagster_postgres", "ct_pipelines_code", "dagster_webserver", "dagster_daemon"}


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _dockerfile(path: Path) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))


def _code_server_port() -> int:
    cmd = _dockerfile(DEPLOY / "Dockerfile").cmd  # JSON form: ["dagster", "code-server", "start", ...]
    args = yaml.safe_load(cmd)
    return int(args[args.index("-p") + 1])


def test_compose_links_postgres_code_location_webserver_and_daemon():
    compose = _yaml(DOCKER / "compose.yaml")
    services = compose["services"]
    assert set(services) == SERVICES
    for name in ("dagster_webserver", "dagster_daemon", "ct_pipelines_code"):
        assert services[name]["depends_on"]["dagster_postgres"] == {"condition": "service_healthy"}
        assert services[name]["env_file"] == ".env"
        assert services[name]["networks"] == ["ct_pipelines_network"]
    for name in ("dagster_webserver", "dagster_daemon"):
        assert "ct_pipelines_code" in services[name]["depends_on"]
        assert "-w" in services[name]["entrypoint"] and "workspace.yaml" in services[name]["entrypoint"]
    assert services["dagster_daemon"]["entrypoint"][:2] == ["dagster-daemon", "run"]
    code = services["ct_pipelines_code"]
    assert code["build"] == {"context": "../..", "dockerfile": "deploy/Dockerfile"}
    assert code["environment"]["DAGSTER_CURRENT_IMAGE"] == code["image"]
    # The UI is published on loopback only.
    assert services["dagster_webserver"]["ports"] == ["127.0.0.1:3000:3000"]

    # The webserver and daemon reach the code location by its service name and the port it serves on.
    [location] = _yaml(DOCKER / "workspace.yaml")["load_from"]
    assert location["grpc_server"]["host"] == "ct_pipelines_code"
    assert location["grpc_server"]["port"] == _code_server_port() == 4000

    # The run launcher's network and volumes are the compose ones, under the fixed names it uses.
    launcher = _yaml(DOCKER / "dagster.yaml")["run_launcher"]
    assert launcher["class"] == "DockerRunLauncher"
    assert compose["networks"][launcher["config"]["network"]]["name"] == launcher["config"]["network"]
    for mount in launcher["config"]["container_kwargs"]["volumes"]:
        volume, target = mount.split(":")[:2]
        assert compose["volumes"][volume]["name"] == volume
        # Runs see the same folders as the code location that planned them.
        assert any(v.startswith(f"{volume}:{target}") for v in code["volumes"]), mount
    # Every variable passed to run containers is declared in .env.example (a missing one fails the launch).
    declared = {
        line.split("=", 1)[0]
        for line in (DOCKER / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert set(launcher["config"]["env_vars"]) <= declared
    assert {"DAGSTER_PG_HOST", "DAGSTER_PG_PASSWORD"} <= declared


def test_compose_config_with_a_compose_client_when_one_is_installed(tmp_path: Path):
    commands = []
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            commands.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        commands.append(["docker-compose"])
    if not commands:
        pytest.skip(
            "no compose client (`docker compose` plugin or docker-compose); the YAML checks above ran"
        )
    # A copy of deploy/ (the compose file needs a .env beside it; the checkout stays untouched).
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    shutil.copy(copy / "docker" / ".env.example", copy / "docker" / ".env")
    done = subprocess.run(
        [*commands[0], "-f", "compose.yaml", "config"],
        capture_output=True,
        text=True,
        cwd=copy / "docker",
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert set(resolved["services"]) == SERVICES
    code = resolved["services"]["ct_pipelines_code"]
    assert code["environment"]["DAGSTER_PG_HOST"] == "dagster_postgres"  # from .env
    assert code["environment"]["DAGSTER_CURRENT_IMAGE"] == code["image"] == "ct-pipelines-code:0.1.0"
    assert Path(code["build"]["context"]) == tmp_path
    print(f"{' '.join(commands[0])} config: {len(resolved['services'])} services resolved")


def test_code_location_dockerfile_installs_postgres_extra_and_serves_definitions():
    parser = _dockerfile(DEPLOY / "Dockerfile")
    assert parser.baseimage.startswith("python:3.11")
    runs = [i["value"] for i in parser.structure if i["instruction"] == "RUN"]
    assert any('pip install ".[postgres]"' in r and "dagster-docker" in r for r in runs)
    args = yaml.safe_load(parser.cmd)
    assert args[:3] == ["dagster", "code-server", "start"]
    assert args[args.index("-m") + 1] == "ct_pipelines.definitions"
    assert args[args.index("-h") + 1] == "0.0.0.0"
    users = [i["value"] for i in parser.structure if i["instruction"] == "USER"]
    assert users and users[-1] not in ("root", "0")
    exposed = [i["value"] for i in parser.structure if i["instruction"] == "EXPOSE"]
    assert exposed == [str(_code_server_port())]
    # Everything it copies exists, and the .dockerignore beside it lets it through.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for instruction in parser.structure:
        if instruction["instruction"] == "COPY":
            source = instruction["value"].split()[0]
            assert (REPO_ROOT / source).exists(), source
            assert f"!{source}" in ignore, f"{source} is not let through Dockerfile.dockerignore"
    assert parser.envs["DAGSTER_HOME"] == "/opt/dagster/dagster_home"

    dagster_image = _dockerfile(DOCKER / "Dockerfile.dagster")
    installs = " ".join(i["value"] for i in dagster_image.structure if i["instruction"] == "RUN")
    for package in ("dagster-webserver", "dagster-postgres", "dagster-docker"):
        assert package in installs
    for instruction in dagster_image.structure:
        if instruction["instruction"] == "COPY":
            assert (DOCKER / instruction["value"].split()[0]).is_file()


def test_compose_instance_loads_with_the_docker_run_launcher(tmp_path: Path, pg_database: PostgresServer):
    from dagster_docker import DockerRunLauncher

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DOCKER / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, DockerRunLauncher)
        assert launcher.networks == ["ct_pipelines_network"]
        assert "ct_pipelines_data:/var/lib/ct-pipelines" in launcher.container_kwargs["volumes"]
        assert (
            instance.run_coordinator.inst_data.config_dict
            == (  # type: ignore[union-attr]
                _yaml(DEPLOY / "dagster.production.yaml")["run_coordinator"]["config"]
            )
        )
        assert instance.get_runs() == []  # the Postgres storage answers


def test_helm_values_use_the_k8s_run_launcher_and_the_same_queue_limits():
    values = _yaml(DEPLOY / "helm" / "values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"] == ["-m", "ct_pipelines.definitions"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert values["postgresql"]["enabled"] is False
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    production = _yaml(DEPLOY / "dagster.production.yaml")["run_coordinator"]["config"]
    assert queue["maxConcurrentRuns"] == production["max_concurrent_runs"]
    assert queue["tagConcurrencyLimits"] == production["tag_concurrency_limits"]


def test_production_instance_reads_every_secret_from_the_environment():
    db = _yaml(DEPLOY / "dagster.production.yaml")["storage"]["postgres"]["postgres_db"]
    assert {k: v for k, v in db.items() if k != "scheme"} == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "db_name": {"env": "DAGSTER_PG_DB"},
        "username": {"env": "DAGSTER_PG_USERNAME"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
    }
    # The top-level dagster.yaml points at it instead of carrying a second, stale copy.
    local = (REPO_ROOT / "dagster.yaml").read_text()
    assert "deploy/dagster.production.yaml" in local and "postgres_db" not in local
