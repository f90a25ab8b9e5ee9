"""What every plug-in installer shares: finding the host app's Python, fetching pyzmq and
msgpack wheels for it, vendoring ``esm_contract`` and ``esm_client``, recording how to reach the daemon.

How a target plugs in
---------------------
A target (one host application) is a module ``esm_cli/plugin_install/<name>.py`` that
defines ``TARGET``, an instance of a :class:`Target` subclass, and is named in
``esm_cli.plugin_install.TARGETS`` (name -> module). ``esm install-plugin <name>`` then
does, for that target::

    dest      = --dest or TARGET.default_dest()
    python    = --python-version/--platform, or inspect_python(--python or TARGET.default_python())
    installed = dest / TARGET.folder                  # e.g. <GIMP plug-ins>/esm-gimp
    copy  plugin_source(TARGET.source)  -> installed   # the plug-in's own files
    copy  esm_contract, esm_client + unpacked wheels -> installed / TARGET.vendor
    write installed / CONFIG_NAME                      # endpoint + daemon start command
    TARGET.after_install(dest, installed)              # e.g. Krita's .desktop file and kritarc

and ``--uninstall`` removes ``installed`` plus ``TARGET.extra_paths(dest)``, then calls
``TARGET.after_uninstall(dest)``. A subclass
sets the class attributes and implements ``default_dest`` and ``default_python``;
``after_install``/``extra_paths`` are optional hooks. The plug-in adds its vendor folder to
``sys.path`` and reads CONFIG_NAME next to itself: ``{"endpoint": E, "start_command": [...]}``,
where start_command is the argv that starts a daemon once ``--endpoint ENDPOINT`` is appended
(the plug-in appends the endpoint it actually uses; see ``esm_client.autostart.ensure_daemon``).

Wheels come from ``pip download --only-binary=:all: --python-version X.Y --platform TAG...``
run by the Python that runs ``esm``, so the host app's Python needs neither pip nor network.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from esm_cli.errors import UserError

CONFIG_NAME = "esm-plugin.json"
# What the plug-ins import from their vendor folder, with the versions pyproject.toml allows.
REQUIREMENTS = ("pyzmq>=25", "msgpack>=1.0")
# Oldest platform tags still worth offering pip (manylinux2014 = glibc 2.17; macOS 10.9).
_OLDEST_GLIBC_MINOR = 17
_OLDEST_MACOS_10 = 9


@dataclass(frozen=True)
class TargetPython:
    """The host app's Python as far as wheels care: ``version`` "3.13" and the pip
    ``--platform`` tags its wheels may carry (best first)."""

    version: str
    platforms: tuple[str, ...]
    origin: str  # where the facts came from, for messages

    def describe(self) -> str:
        shown = ", ".join(self.platforms[:2]) + (", ..." if len(self.platforms) > 2 else "")
        return f"CPython {self.version} ({shown}; {self.origin})"


class Target:
    """One host application. Subclasses set the attributes and the two ``default_*`` methods."""

    name = ""  # command-line name, e.g. "gimp"
    app = ""  # human name, e.g. "GIMP 3"
    source = ""  # the plug-in folder inside plugins/, e.g. "gimp/esm-gimp"
    folder = ""  # its name inside dest, e.g. "esm-gimp"
    vendor = "vendor"  # folder inside the installed plug-in that receives esm_contract, esm_client, zmq, msgpack
    executables: tuple[str, ...] = ()  # the app's commands; on Linux, finding one on PATH finds the app
    check_hint = ""  # one paragraph: how a user checks the installation

    def default_dest(self) -> Path:
        """The app's per-user plug-in folder on this OS."""
        raise NotImplementedError

    def default_python(self) -> str:
        """Path or command name of the app's Python, to inspect (see inspect_python)."""
        raise NotImplementedError

    def after_install(self, dest: Path, installed: Path) -> list[str]:
        """Hook: write files the app needs beside the plug-in folder; returns what it edited,
        one line each, for the user."""
        return []

    def after_uninstall(self, dest: Path) -> list[str]:
        """Hook: undo what ``after_install`` edited; returns what it edited, one line each."""
        return []

    def extra_paths(self, dest: Path) -> list[Path]:
        """Hook: files beside the plug-in folder that uninstall removes."""
        return []


# --- the target's Python -----------------------------------------------------------------

_PROBE = ("import json, platform, sys, sysconfig; print(json.dumps({"
          "'version': '%d.%d' % sys.version_info[:2], 'implementation': sys.implementation.name, "
          "'platform': sysconfig.get_platform(), 'machine': platform.machine(), "
          "'libc': platform.libc_ver(), 'mac': platform.mac_ver()[0]}))")


def default_python(target: Target) -> tuple[str, str]:
    """The app's Python when the user names none, and a line saying what was assumed. On Linux
    the app runs plug-ins with the python3 on PATH, but only if the app is there at all: any
    python3 is not the app's (Debian's GIMP and Krita use 3.13 where python3 may be 3.11)."""
    python = target.default_python()
    how = "choose another with --python EXE, or --python-version X.Y and --platform TAG"
    if host_system() != "linux":  # a path inside the app's installation: it exists only with the app
        return python, f"assumed {target.app}'s own Python, {python}; {how}"
    app = next(filter(None, map(shutil.which, target.executables)), None)
    if app is None:
        raise UserError(f"no {target.app} found (no {' or '.join(target.executables)} on PATH), so its Python "
                        f"is unknown: {how}")
    return python, f"assumed {target.app} ({app}) runs plug-ins with {shutil.which(python) or python}; {how}"


def inspect_python(executable: str) -> TargetPython:
    """Runs the host app's Python once to learn its version and platform."""
    found = shutil.which(executable) or (executable if Path(executable).is_file() else None)
    if found is None:
        raise UserError(f"{executable}: no such Python; pass the app's Python with --python, or "
                        "--python-version and --platform")
    try:
        out = subprocess.run([found, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True)
        facts = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        raise UserError(f"{found}: could not ask it for its version ({error}); pass --python-version "
                        "and --platform instead") from None
    if facts["implementation"] != "cpython":
        raise UserError(f"{found} is {facts['implementation']}, not CPython: no pyzmq wheels exist for it")
    return TargetPython(facts["version"], platform_tags(facts), f"from {found}")


def platform_tags(facts: dict) -> tuple[str, ...]:
    """pip ``--platform`` tags for a Python described by ``_PROBE``'s facts. pip (23.x) does
    not widen an explicit manylinux/macOS tag to older ones, so the whole range is listed."""
    plat = facts["platform"]
    machine = facts["machine"].lower()
    if plat.startswith("linux-"):
        arch = plat.split("-", 1)[1]
        libc, libc_version = facts["libc"]
        if libc != "glibc":
            return (f"musllinux_1_2_{arch}", f"musllinux_1_1_{arch}")
        minor = int(libc_version.split(".")[1])
        tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, _OLDEST_GLIBC_MINOR - 1, -1)]
        return tuple(tags + [f"manylinux2014_{arch}"])
    if plat.startswith("macosx-"):
        arch = "arm64" if machine in ("arm64", "aarch64") else "x86_64"
        major, minor = (int(p) for p in (facts["mac"] or "11.0").split(".")[:2])
        versions = [(v, 0) for v in range(major, 10, -1)]
        versions += [(10, m) for m in range(15 if major > 10 else minor, _OLDEST_MACOS_10 - 1, -1)]
        return tuple(f"macosx_{a}_{b}_{kind}" for a, b in versions for kind in (arch, "universal2"))
    if plat in ("win-amd64", "win-arm64", "win32"):
        return (plat.replace("-", "_"),)
    if plat.startswith("mingw"):
        # MSYS2-built CPython (GIMP's Windows build): it neither names nor loads PyPI's
        # win_amd64 extension modules, and pyzmq has no pure-Python fallback.
        raise UserError(f"this Python is an MSYS2 build ({plat}); PyPI's pyzmq wheels do not load in "
                        "it. See docs/gimp.md (Windows) for the workaround.")
    raise UserError(f"unsupported platform {plat!r}; pass --platform with a pip platform tag")


def python_from_flags(version: str, platforms: list[str]) -> TargetPython:
    """A TargetPython given explicitly on the command line."""
    parts = version.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise UserError(f"--python-version must look like 3.12, got {version!r}")
    if not platforms:
        raise UserError("--python-version needs --platform (e.g. manylinux_2_17_x86_64, win_amd64, "
                        "macosx_11_0_arm64)")
    return TargetPython(version, tuple(t for tag in platforms for t in _widen(tag)), "given on the command line")


def _widen(tag: str) -> tuple[str, ...]:
    """manylinux_2_41_x86_64 -> that and every older manylinux tag (as pip would on the host)."""
    parts = tag.split("_", 3)
    if len(parts) == 4 and parts[0] == "manylinux" and parts[1] == "2" and parts[2].isdigit():
        return platform_tags({"platform": f"linux-{parts[3]}", "machine": parts[3],
                              "libc": ("glibc", f"2.{parts[2]}"), "mac": ""})
    return (tag,)


# --- files ----------------------------------------------------------------------------------

def plugin_source(relative: str) -> Path:
    """A plug-in folder: plugins/<relative> in a checkout (editable install), else the copy
    shipped as package data (esm_cli/plugin_install/plugins/<relative>)."""
    here = Path(__file__).resolve().parent
    for root in (here.parents[1] / "plugins", here / "plugins"):
        if (root / relative).is_dir():
            return root / relative
    raise UserError(f"plug-in files plugins/{relative} are missing from this installation of esm")


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)


VENDORED_PACKAGES = ("esm_contract", "esm_client")  # stdlib-only contract; client (+ pyzmq, msgpack)


def vendor_packages(vendor: Path) -> None:
    """Copies the torch-free contract and client packages into ``vendor``."""
    for name in VENDORED_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations, f"{name} is part of this distribution"
        _copy_tree(Path(list(spec.submodule_search_locations)[0]), vendor / name)


def download_wheels(python: TargetPython, into: Path, wheel_dir: Path | None = None) -> list[Path]:
    """pip-downloads REQUIREMENTS as binary wheels for ``python`` into ``into``."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--no-deps", "--implementation", "cp",
               "--python-version", python.version, "--dest", str(into)]
    for tag in python.platforms:
        command += ["--platform", tag]
    if wheel_dir is not None:
        command += ["--no-index", "--find-links", str(wheel_dir)]
    result = subprocess.run(command + list(REQUIREMENTS), capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR")] or \
            result.stderr.strip().splitlines()[-1:]
        raise UserError(f"pip found no wheels of {' and '.join(REQUIREMENTS)} for {python.describe()}: "
                        f"{' '.join(lines)}", exit_code=1)
    return sorted(into.glob("*.whl"))


def unpack_wheels(wheels: list[Path], vendor: Path) -> None:
    """A wheel is a zip of what goes on sys.path; unpacking it is all an install needs here."""
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(vendor)


def daemon_start_command() -> list[str]:
    """How the plug-in starts a daemon when none answers: this very installation of esm
    (``esm daemon start`` returns once the daemon runs in the background). The plug-in
    appends ``--endpoint ENDPOINT``."""
    return [sys.executable, "-m", "esm_cli.main", "daemon", "start"]


def is_ours(installed: Path) -> bool:
    return (installed / CONFIG_NAME).is_file()


# --- install / uninstall ----------------------------------------------------------------------

def install(target: Target, dest: Path, python: TargetPython, endpoint: str,
            wheel_dir: Path | None = None) -> tuple[Path, list[str]]:
    """Installs ``target``'s plug-in into ``dest``; returns the plug-in's folder and what else
    was edited (``Target.after_install``). An earlier installation by esm is replaced; anything
    else in the way is left alone (error)."""
    installed = dest / target.folder
    if installed.exists() and not is_ours(installed):
        raise UserError(f"{installed} exists and was not installed by esm; remove it or choose --dest")
    source = plugin_source(target.source)
    dest.mkdir(parents=True, exist_ok=True)
    # Build next to the destination, then swap in: a failed download leaves the old install.
    with tempfile.TemporaryDirectory(prefix=f".{target.folder}-", dir=dest) as work:
        staging = Path(work) / target.folder
        _copy_tree(source, staging)
        vendor = staging / target.vendor
        vendor.mkdir(parents=True, exist_ok=True)
        vendor_packages(vendor)
        downloads = Path(work) / "wheels"
        downloads.mkdir()
        unpack_wheels(download_wheels(python, downloads, wheel_dir), vendor)
        config = {"endpoint": endpoint, "start_command": daemon_start_command(),
                  "python": python.version, "platforms": list(python.platforms[:3])}
        (staging / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        if installed.exists():
            shutil.rmtree(installed)
        os.replace(staging, installed)
    return installed, target.after_install(dest, installed)


def uninstall(target: Target, dest: Path) -> list[str]:
    """Removes what ``install`` put into ``dest`` and undoes its edits; returns one line each."""
    installed = dest / target.folder
    removed: list[Path] = []
    if installed.exists():
        if not is_ours(installed):
            raise UserError(f"{installed} was not installed by esm; not removing it")
        shutil.rmtree(installed)
        removed.append(installed)
    for path in target.extra_paths(dest):
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
    return [f"removed {path}" for path in removed] + target.after_uninstall(dest)


def host_system() -> str:
    """'linux', 'windows' or 'macos' (the OS esm runs on, which is the app's OS)."""
    return {"Windows": "windows", "Darwin": "macos"}.get(platform.system(), "linux")
