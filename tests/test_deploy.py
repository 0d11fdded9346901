"""`deploy/` as far as this machine can check it (no container engine, no Kubernetes): every file parses,
every command and flag exists, every module named imports, every setting named is one the code reads,
no secret is written down, and the image, the compose file and the Helm values agree with the instance
settings of `deploy/dagster.yaml` and the pins of `pyproject.toml`."""

import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
SOURCE_DIRS = (
    "annobase",
    "annotation_types",
    "assets",
    "orchestration",
    "quality_checks",
    "resources",
    "sensors",
)


def load(name: str):
    return yaml.safe_load((DEPLOY / name).read_text())


def settings_read_by_the_code() -> set[str]:
    text = (
        "\n".join(path.read_text() for folder in SOURCE_DIRS for path in (REPO / folder).rglob("*.py"))
        + (DEPLOY / "dagster.yaml").read_text()
    )
    return set(re.findall(r"ANNOBASE_[A-Z0-9_]+", text))


def help_of(*command: str) -> str:
    done = subprocess.run([str(BIN / command[0]), *command[1:], "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def flags(command: list[str]) -> list[str]:
    return [word.split("=")[0] for word in command if word.startswith("--")]


def assert_command_exists(command: list[str]) -> None:
    """The executable is installed with the project, its flags exist, and the modules it names import."""
    leading = command[: command.index(flags(command)[0])] if flags(command) else command
    words = [word for word in leading if re.fullmatch(r"[a-z-]+", word)]
    text = help_of(*words)  # the (sub)command itself, without its positional arguments
    for flag in flags(command):
        assert flag in text, f"{' '.join(command[:3])} has no {flag}"
    for option in ("--module-name", "--preload"):
        if option in command:
            importlib.import_module(command[command.index(option) + 1])


def test_compose_services_run_commands_that_exist_with_settings_the_code_reads():
    compose = load("compose.yaml")
    read = settings_read_by_the_code()
    services = compose["services"].items()
    annobase = {name: service for name, service in services if "annobase" in service["image"]}
    assert set(annobase) == {"dask-scheduler", "dask-worker", "code-server", "webserver", "daemon"}
    for name, service in annobase.items():
        assert_command_exists(service["command"])
        for key, value in service["environment"].items():
            assert not key.startswith("ANNOBASE_") or key in read, f"{name}: {key} is read nowhere"
            if re.search("PASSWORD|SECRET", key):
                assert str(value).startswith("${"), f"{name}: {key} is written down"
        for volume in service.get("volumes", []):
            assert (DEPLOY / volume.split(":")[0]).exists()
    assert compose["services"]["dask-worker"]["command"][-2:] == ["--preload", "assets.worker_kernels"]


def test_the_workspace_names_the_code_server_of_compose():
    [location] = load("workspace.grpc.yaml")["load_from"]
    code_server = load("compose.yaml")["services"]["code-server"]["command"]
    assert location["grpc_server"]["host"] == "code-server"
    assert str(location["grpc_server"]["port"]) == code_server[code_server.index("--port") + 1]
    assert location["grpc_server"]["location_name"] == code_server[code_server.index("--location-name") + 1]


def test_the_image_copies_what_exists_and_installs_the_lock_that_pins_the_project():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"COPY {source}: no such path"
    cmd = re.search(r"CMD \[(.*?)\]", dockerfile, re.S).group(1)
    assert_command_exists([word.strip().strip('"') for word in cmd.replace("\\\n", " ").split(",")])

    lock = dict(
        line.split("==", 1)
        for line in (DEPLOY / "requirements.lock").read_text().splitlines()
        if line and not line.startswith("#")
    )
    lock = {name.lower().replace("_", "-"): version for name, version in lock.items()}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, version = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", requirement).groups()
        assert lock.get(name.lower().replace("_", "-")) == version, f"{name}: the lock has {lock.get(name)}"
    assert "annobase" not in lock


def test_helm_values_agree_with_the_instance_and_the_pins():
    values = load("helm/values.yaml")
    instance = load("dagster.yaml")
    [deployment] = values["dagster-user-deployments"]["deployments"]
    grpc = deployment["dagsterApiGrpcArgs"]
    importlib.import_module(grpc[grpc.index("--module-name") + 1])
    daemon = values["dagsterDaemon"]
    limits = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert limits["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert limits["tagConcurrencyLimits"] == instance["concurrency"]["runs"]["tag_concurrency_limits"]
    assert daemon["runRetries"]["maxRetries"] == instance["run_retries"]["max_retries"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    dagster_pin = next(pin.split("==")[1] for pin in pins if pin.startswith("dagster=="))
    assert f"--version {dagster_pin}" in (DEPLOY / "helm" / "values.yaml").read_text()
    read = settings_read_by_the_code()
    config = load("helm/config.yaml")["data"]
    assert {key for key in config if key.startswith("ANNOBASE_")} <= read
    assert not any(re.search("PASSWORD|SECRET", key) for key in config)


def test_the_dask_cluster_manifest_runs_workers_with_the_kernels_preloaded():
    cluster = load("helm/dask-cluster.yaml")
    assert cluster["kind"] == "DaskCluster"
    [worker] = cluster["spec"]["worker"]["spec"]["containers"]
    assert_command_exists([arg for arg in worker["args"] if not arg.startswith("$(")])
    assert worker["args"][-2:] == ["--preload", "assets.worker_kernels"]
    [scheduler] = cluster["spec"]["scheduler"]["spec"]["containers"]
    assert_command_exists(scheduler["args"])


def test_the_dask_resource_asks_for_dask_kubernetes_by_name_when_it_is_missing():
    from resources import DaskResource

    spec = str(DEPLOY / "helm" / "dask-cluster.yaml")
    resource = DaskResource(kubernetes_cluster="annobase-dask", kubernetes_cluster_spec=spec)
    try:
        import dask_kubernetes  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match=r"annobase\[kubernetes\]"), resource.client():
            pass
    else:  # installed: the arguments are the operator's own
        import inspect

        from dask_kubernetes.operator import KubeCluster

        parameters = inspect.signature(KubeCluster).parameters
        assert {"name", "custom_cluster_spec", "create_mode", "shutdown_on_close"} <= set(parameters)
