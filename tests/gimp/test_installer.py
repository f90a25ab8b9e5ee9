"""`esm install-plugin gimp` on the host: what lands in the plug-in folder for each OS's
Python, the settings file, reinstall/uninstall, and refusals. (That the vendored wheels load
in GIMP's Python is checked inside GIMP by test_gimp_plugin.py.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from esm_cli.errors import UserError
from esm_cli.plugin_install import common, get_target

ROOT = Path(__file__).resolve().parents[2]


def esm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "esm_cli.main", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("version, platform, binary", [
    ("3.12", "win_amd64", "*.pyd"),  # GIMP 3.0's own Python on Windows is 3.12 (but see docs/gimp.md)
    ("3.12", "macosx_14_0_arm64", "*.so"),
    ("3.13", "manylinux_2_41_x86_64", "*.so"),
])
def test_install_vendors_client_and_wheels_for_the_target(tmp_path: Path, version: str, platform: str,
                                                          binary: str) -> None:
    done = esm("install-plugin", "gimp", "--dest", str(tmp_path), "--python-version", version,
               "--platform", platform, "--endpoint", "tcp://127.0.0.1:5999")
    assert done.returncode == 0, done.stderr
    installed = tmp_path / "esm-gimp"
    assert str(installed) in done.stdout
    entry = installed / "esm-gimp.py"
    assert entry.is_file() and os.access(entry, os.X_OK), "GIMP runs only executable NAME/NAME.py files"
    vendor = installed / "vendor"
    assert (vendor / "esm_client" / "client.py").is_file()
    assert (vendor / "esm_contract" / "params.py").is_file()
    assert not list(vendor.rglob("__pycache__"))
    assert list((vendor / "zmq").rglob(binary)), f"pyzmq's compiled backend for {platform}"
    assert (vendor / "msgpack" / "__init__.py").is_file()
    settings = json.loads((installed / common.CONFIG_NAME).read_text())
    assert settings["endpoint"] == "tcp://127.0.0.1:5999"
    assert settings["start_command"] == [sys.executable, "-m", "esm_cli.main", "daemon", "start"]
    assert settings["python"] == version


def test_reinstall_replaces_and_uninstall_removes(tmp_path: Path) -> None:
    flags = ("--dest", str(tmp_path), "--python-version", "3.13", "--platform", "manylinux_2_17_x86_64")
    assert esm("install-plugin", "gimp", *flags).returncode == 0
    stale = tmp_path / "esm-gimp" / "stale.py"
    stale.write_text("")
    assert esm("install-plugin", "gimp", *flags).returncode == 0
    assert not stale.exists() and (tmp_path / "esm-gimp" / "esm-gimp.py").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["esm-gimp"], "no staging leftovers"
    done = esm("install-plugin", "gimp", "--dest", str(tmp_path), "--uninstall")
    assert done.returncode == 0 and "removed" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_touch_a_folder_it_did_not_install(tmp_path: Path) -> None:
    (tmp_path / "esm-gimp").mkdir()
    (tmp_path / "esm-gimp" / "mine.txt").write_text("keep")
    for args in (("--python-version", "3.13", "--platform", "manylinux_2_17_x86_64"), ("--uninstall",)):
        done = esm("install-plugin", "gimp", "--dest", str(tmp_path), *args)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and "not installed by esm" in done.stderr
    assert (tmp_path / "esm-gimp" / "mine.txt").read_text() == "keep"


def test_inspects_a_python_it_is_given() -> None:
    python = common.inspect_python(sys.executable)
    assert python.version == "%d.%d" % sys.version_info[:2]
    assert python.platforms and python.origin == f"from {sys.executable}"


def test_platform_tags() -> None:
    linux = common.platform_tags({"platform": "linux-x86_64", "machine": "x86_64", "libc": ("glibc", "2.41"),
                                  "mac": ""})
    assert linux[0] == "manylinux_2_41_x86_64" and "manylinux_2_17_x86_64" in linux
    assert linux[-1] == "manylinux2014_x86_64"
    mac = common.platform_tags({"platform": "macosx-11.0-arm64", "machine": "arm64", "libc": ("", ""),
                                "mac": "14.5"})
    assert mac[:2] == ("macosx_14_0_arm64", "macosx_14_0_universal2") and "macosx_11_0_arm64" in mac
    assert common.platform_tags({"platform": "win-amd64", "machine": "AMD64", "libc": ("", ""),
                                 "mac": ""}) == ("win_amd64",)
    with pytest.raises(UserError, match="MSYS2"):
        common.platform_tags({"platform": "mingw_x86_64_clang", "machine": "AMD64", "libc": ("", ""), "mac": ""})


def test_bad_flags_are_one_line_errors(tmp_path: Path) -> None:
    for args in (("--python-version", "3.13"), ("--python-version", "three", "--platform", "win_amd64"),
                 ("--python", str(tmp_path / "nope"))):
        done = esm("install-plugin", "gimp", "--dest", str(tmp_path), *args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_default_folders_follow_gimp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = get_target("gimp")
    monkeypatch.setenv("GIMP3_DIRECTORY", str(tmp_path / "profile"))
    assert target.default_dest() == tmp_path / "profile" / "plug-ins"
    monkeypatch.delenv("GIMP3_DIRECTORY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    if common.host_system() == "linux":
        assert target.default_dest() == tmp_path / "config" / "GIMP" / "3.0" / "plug-ins"
        assert target.default_python() == "python3"


def test_wheel_ships_the_plugin_files(tmp_path: Path) -> None:
    """A non-editable install has no checkout: the plug-in folders travel as package data."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "--wheel-dir", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    folder = "esm_cli/plugin_install/plugins/gimp/esm-gimp/"
    assert {folder + "esm-gimp.py", folder + "esm_gimp_daemon.py", folder + "esm_gimp_pixels.py"} <= names
    assert "esm_cli/plugin_install/gimp.py" in names
