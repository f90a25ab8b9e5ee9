"""`esm install-plugin` (the real command) edits only the profile its destination belongs to,
says what it edited, and names the Python it assumed, refusing when no app is found. Every
run gets its own HOME and XDG folders, so this user's real settings are never touched."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

WHEELS = ("--python-version", "3.13", "--platform", "manylinux_2_17_x86_64")
KRITARC = "[General]\nx=1\n\n[python]\nenable_other=true\n"


def profile(tmp_path: Path, path: str) -> dict[str, str]:
    """An environment whose home, config and data folders are under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_") and k != "GIMP3_DIRECTORY"}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_DATA_HOME=str(tmp_path / "data"), PATH=path)
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "kritarc").write_text(KRITARC)
    return env


def esm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "esm_cli.main", "install-plugin", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_krita_into_another_folder_leaves_the_users_kritarc_alone(tmp_path: Path) -> None:
    env = profile(tmp_path, os.environ["PATH"])
    dest = tmp_path / "elsewhere" / "pykrita"
    done = esm(env, "krita", "--dest", str(dest), *WHEELS)
    assert done.returncode == 0, done.stderr
    assert (dest / "esm_krita").is_dir() and (dest / "esm_krita.desktop").is_file()
    assert (tmp_path / "config" / "kritarc").read_text() == KRITARC
    assert "kritarc not edited" in done.stdout and "Python Plugin Manager" in done.stdout
    done = esm(env, "krita", "--dest", str(dest), "--uninstall")
    assert done.returncode == 0 and (tmp_path / "config" / "kritarc").read_text() == KRITARC


def test_krita_into_the_profiles_folder_enables_it_there_and_uninstall_removes_the_line(tmp_path: Path) -> None:
    env = profile(tmp_path, os.environ["PATH"])
    kritarc = tmp_path / "config" / "kritarc"
    dest = tmp_path / "data" / "krita" / "pykrita"  # this profile's default pykrita folder
    done = esm(env, "krita", "--dest", str(dest), *WHEELS)
    assert done.returncode == 0, done.stderr
    assert kritarc.read_text() == KRITARC.replace("enable_other=true\n", "enable_other=true\nenable_esm_krita=true\n")
    assert f"enabled it in {kritarc}" in done.stdout
    done = esm(env, "krita", "--uninstall")  # the default folder, as a user would
    assert done.returncode == 0, done.stderr
    assert kritarc.read_text() == KRITARC
    assert f"removed enable_esm_krita from {kritarc}" in done.stdout
    assert not (dest / "esm_krita").exists()


@pytest.mark.parametrize("target, app", [("gimp", "GIMP 3"), ("krita", "Krita 5.2")])
def test_no_app_found_is_refused_and_a_found_app_names_the_python_assumed(tmp_path: Path, target: str,
                                                                           app: str) -> None:
    python_folder = str(Path(sys.executable).parent)  # a python3 on PATH, and no GIMP or Krita
    env = profile(tmp_path, python_folder)
    done = esm(env, target, "--dest", str(tmp_path / "dest"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"no {app} found" in done.stderr and "--python" in done.stderr
    assert not (tmp_path / "dest").exists()
    if target == "gimp":  # a GIMP on PATH: its python3 is taken, and the output says which
        bin_folder = tmp_path / "bin"
        bin_folder.mkdir()
        (bin_folder / "gimp").write_text("#!/bin/sh\n")
        (bin_folder / "gimp").chmod(0o755)
        env["PATH"] = f"{bin_folder}:{python_folder}"
        done = esm(env, target, "--dest", str(tmp_path / "dest"))
        assert done.returncode == 0, done.stderr
        assert f"assumed GIMP 3 ({bin_folder / 'gimp'}) runs plug-ins with {python_folder}/python3" in done.stdout
        assert "%d.%d" % sys.version_info[:2] in done.stdout
