"""The package as a user installs it: a wheel built from the working tree, installed into a
fresh virtualenv, its commands run from a directory outside the clone.

An editable install hides what the wheel leaves out (a subpackage missing from the package
list imports fine from the clone), so nothing here may import from the clone. The fresh
virtualenv reaches the dependencies already installed beside this interpreter through a .pth
file that names their site-packages: a directory listed in a .pth goes on ``sys.path``, but
the .pth files inside it (the clone's editable finder among them) are not processed, which
``test_the_installed_gateprobe_is_the_wheels`` checks. Installing the dependencies from the
index instead would take minutes on CI's two cores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the clone's data directories and where the wheel carries them (gateprobe/_resources.py)
SHIPPED = {
    "schemas": "gateprobe/_schemas",
    "suites": "gateprobe/_suites",
    "fixtures/targets": "gateprobe/_targets",
    "loadtests/profiles": "gateprobe/_loadprofiles",
}
DATA_SUFFIXES = (".yaml", ".yml", ".json")
# what a clone holds that is no input to a build: left out of the copy the wheel is built from
TOP_LEVEL_SKIPPED = {".git", ".venv", ".gateways", "build", "dist", "reports"}
ANYWHERE_SKIPPED = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    gateprobe: Path  # the console script
    package: Path  # gateprobe/ inside the fresh virtualenv
    build_s: float
    install_s: float


def _skip_from_copy(root: Path) -> Callable[[str, list[str]], Iterable[str]]:
    def ignore(directory: str, names: list[str]) -> Iterable[str]:
        top = Path(directory) == root
        return [
            name
            for name in names
            if name in ANYWHERE_SKIPPED
            or name.endswith(".egg-info")
            or (top and name in TOP_LEVEL_SKIPPED)
        ]

    return ignore


def _run(
    command: list[str | Path], *, cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user of the fresh virtualenv: nothing that points at the clone."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
        and not key.startswith("GATEPROBE_")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel")
    # built from a copy: a build in the clone writes build/ and *.egg-info/ into a working tree
    # others share, and setuptools reads a stale egg-info's SOURCES.txt back into the wheel
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=_skip_from_copy(ROOT), symlinks=True)
    started = time.perf_counter()
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", base / "dist", source],
        cwd=base,
        timeout=300,
    )
    build_s = time.perf_counter() - started
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (base / "dist").glob("gateprobe-*.whl")

    started = time.perf_counter()
    venv = base / "venv"
    # without pip of its own (ensurepip costs seconds): this interpreter's pip installs into it
    created = _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=base, timeout=120)
    assert created.returncode == 0, created.stdout + created.stderr
    python = venv / "bin" / "python"
    # the wheel goes in before the .pth: pip then sees no other gateprobe to replace
    install = ["install", "--no-deps", "--no-index", "-q", str(wheel)]
    done = _run([sys.executable, "-m", "pip", "--python", python, *install], cwd=base, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    purelib = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=base,
        timeout=60,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "_gateprobe_test_dependencies.pth").write_text(
        "".join(f"{path}\n" for path in sorted(ours)), "utf-8"
    )
    install_s = time.perf_counter() - started
    print(f"wheel build {build_s:.1f} s, fresh venv + install {install_s:.1f} s")
    yield Installed(
        wheel=wheel,
        python=python,
        gateprobe=venv / "bin" / "gateprobe",
        package=Path(purelib) / "gateprobe",
        build_s=build_s,
        install_s=install_s,
    )


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory outside the clone, as a user's would be."""
    assert not tmp_path.is_relative_to(ROOT)
    return tmp_path


def _expected_in_wheel() -> set[str]:
    """Every file of gateprobe/ (modules, py.typed, the mock's YAML) and every YAML/JSON file of
    the shipped data directories, subdirectories included, at their paths in the wheel."""
    expected = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "gateprobe").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    for directory, packaged in SHIPPED.items():
        for path in (ROOT / directory).rglob("*"):
            if path.is_file() and path.suffix in DATA_SUFFIXES:
                expected.add(f"{packaged}/{path.relative_to(ROOT / directory).as_posix()}")
    return expected


def test_the_wheel_holds_every_module_and_data_file(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        names = set(archive.namelist())
    expected = _expected_in_wheel()
    assert "gateprobe/quota/__init__.py" in expected  # the subpackage a hand list once left out
    assert "gateprobe/_schemas/openai/chat.completion.schema.json" in expected  # a subdirectory
    assert sorted(expected - names) == []
    # nothing else: no tests, benchmarks or caches, only the package and its metadata
    metadata = {name for name in names if name.startswith("gateprobe-") and ".dist-info/" in name}
    assert sorted(names - expected - metadata) == []


def test_the_installed_gateprobe_is_the_wheels(installed: Installed, outside: Path) -> None:
    probe = (
        "import json, sys, gateprobe, gateprobe.quota, locust\n"
        "print(json.dumps({'gateprobe': gateprobe.__file__, 'locust': locust.__file__,\n"
        "  'path': sys.path, 'finders': [f.__module__ for f in sys.meta_path],\n"
        "  'modules': [m for m in sys.modules if 'editable' in m]}))\n"
    )
    env = _clean_env(installed.python.parent.parent)
    result = _run([installed.python, "-c", probe], cwd=outside, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    venv = installed.python.parent.parent
    assert Path(seen["gateprobe"]).is_relative_to(venv), seen["gateprobe"]
    # in the clone, only the dependencies' site-packages (this .venv's, in a developer's clone)
    ours = {Path(sysconfig.get_paths()[kind]) for kind in ("purelib", "platlib")}
    in_clone = {Path(p) for p in seen["path"] if p and Path(p).is_relative_to(ROOT)}
    assert in_clone <= ours, in_clone
    # the dependencies come from this interpreter's site-packages, whose editable finder for
    # the clone's gateprobe (an __editable__ .pth beside them) must not have been run
    assert Path(seen["locust"]).is_relative_to(Path(sysconfig.get_paths()["purelib"]))
    assert seen["modules"] == []
    assert not [finder for finder in seen["finders"] if "editable" in finder]
    version = _run([installed.gateprobe, "--version"], cwd=outside, timeout=60, env=env)
    assert re.fullmatch(r"gateprobe \d+\.\d+\.\d+\S*\n", version.stdout), version.stdout
    print(f"wheel build {installed.build_s:.1f} s, install {installed.install_s:.1f} s")


def test_validate_the_packaged_suites_profiles_and_load_profiles(
    installed: Installed, outside: Path
) -> None:
    directories = [installed.package / name for name in ("_suites", "_targets", "_loadprofiles")]
    env = _clean_env(installed.python.parent.parent)
    result = _run(
        [installed.gateprobe, "validate", *directories], cwd=outside, timeout=120, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    valid = [line for line in result.stdout.splitlines() if line.startswith("ok  ")]
    count = sum(1 for d in directories for _ in d.rglob("*.yaml"))
    assert len(valid) == count > 0
    assert f"{count} file(s) valid" in result.stdout
    assert any(line.endswith("_targets/mock.yaml") for line in valid)


def _summary_table(output: str) -> dict[str, tuple[int, ...]]:
    rows = re.findall(r"^([a-z_]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", output, re.MULTILINE)
    return {area: tuple(int(n) for n in counts) for area, *counts in rows}


def test_demo_runs_the_packaged_suites_against_the_bundled_mock(
    installed: Installed, outside: Path
) -> None:
    result = _run(
        [installed.gateprobe, "demo"],
        cwd=outside,
        timeout=300,
        env=_clean_env(installed.python.parent.parent),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    assert re.search(r"^area\s+pass\s+fail\s+skip\s+deviation$", result.stdout, re.MULTILINE)
    table = _summary_table(result.stdout)
    # every area of the packaged suites ran (quota's checks need gateprobe.quota) and passed
    areas = {p.name for p in (installed.package / "_suites").iterdir() if p.is_dir()}
    assert set(table) == areas and "quota" in areas
    assert all(passed > 0 and fail == 0 for passed, fail, _, _ in table.values()), table
    total = sum(passed for passed, *_ in table.values())
    assert f"{total} passed, 0 failed, 0 skipped, 0 declared deviations" in result.stdout
    (report,) = (outside / "reports").iterdir()
    assert f"reports: {report}" in result.stdout
    assert json.loads((report / "summary.json").read_text("utf-8"))


def test_run_against_the_bundled_mock_writes_its_reports(
    installed: Installed, outside: Path
) -> None:
    result = _run(
        [installed.gateprobe, "run", "--report-dir", outside / "out"],
        cwd=outside,
        timeout=300,
        env=_clean_env(installed.python.parent.parent),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "gateprobe: bundled mock gateway on http://127.0.0.1:" in result.stdout
    table = _summary_table(result.stdout)
    assert table and all(fail == 0 for _, fail, _, _ in table.values()), table
    (report,) = (outside / "out").iterdir()
    summary = json.loads((report / "summary.json").read_text("utf-8"))
    assert summary  # written by the installed package, from the packaged suites
    junit = (report / "junit.xml").read_text("utf-8")
    assert 'failures="0"' in junit and 'errors="0"' in junit
    assert (report / "allure-results").is_dir()


def test_a_short_load_run_against_the_bundled_mock(installed: Installed, outside: Path) -> None:
    # the shortest run that still measures: the profile's mock delays (TTFT 200 ms, ITL 20 ms)
    # give a request about 0.6 s, so two users over 2 s complete a few
    result = _run(
        [
            installed.gateprobe, "load", "--profile", "chat-steady", "--users", "2",
            "--duration", "2", "--warmup", "0",
        ],
        cwd=outside,
        timeout=180,
        env=_clean_env(installed.python.parent.parent),
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    assert "result: passed (exit 0)" in result.stdout
    measured = re.search(r"^requests: (\d+) measured \((\d+) ok, 0 failed", result.stdout, re.M)
    assert measured is not None and int(measured.group(1)) == int(measured.group(2)) > 0, output
    ttft = re.search(r"^ttft_ms\s+\d+\s+([\d.]+)", result.stdout, re.MULTILINE)
    assert ttft is not None and 190 <= float(ttft.group(1)) <= 400, output
    (report,) = (outside / "reports" / "load").iterdir()
    summary = json.loads((report / "summary.json").read_text("utf-8"))
    assert summary["requests"]["measured"] == int(measured.group(1))
    assert (report / "ttft.png").read_bytes()[:4] == b"\x89PNG"
