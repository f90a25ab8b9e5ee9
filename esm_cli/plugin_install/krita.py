"""Krita 5.2 target: the pykrita package esm_krita (plugins/krita/esm_krita) and its
esm_krita.desktop in Krita's per-user pykrita folder, enabled in kritarc, with vendored
esm_contract/esm_client/pyzmq/msgpack for the Python Krita embeds."""
from __future__ import annotations

import os
import re
from pathlib import Path

from esm_cli.errors import UserError
from esm_cli.plugin_install.common import Target, host_system, plugin_source

NAME = "esm_krita"
DESKTOP = f"{NAME}.desktop"
FLATPAK = Path.home() / ".var/app/org.kde.krita"


def _flatpak() -> bool:
    """Krita installed from Flathub keeps its data and kritarc under ~/.var/app."""
    native = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share") / "krita"
    return host_system() == "linux" and FLATPAK.is_dir() and not native.is_dir()


def kritarc_path() -> Path:
    """Krita's settings file, where user plug-ins are enabled."""
    system = host_system()
    if system == "windows":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData/Local")) / "kritarc"
    if system == "macos":
        return Path.home() / "Library/Preferences/kritarc"
    if _flatpak():
        return FLATPAK / "config/kritarc"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kritarc"


def _read_lines(kritarc: Path) -> list[str]:
    try:
        return kritarc.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {kritarc}: {error}") from None


def _python_group(lines: list[str]) -> tuple[int | None, int, list[int]]:
    """(first line of the ``[python]`` group or None, the line after it, its lines setting our key)."""
    key = re.compile(rf"^\s*enable_{NAME}\s*=")
    start = next((i + 1 for i, line in enumerate(lines) if line.strip() == "[python]"), None)
    if start is None:
        return None, len(lines), []
    end = next((i for i in range(start, len(lines)) if lines[i].strip().startswith("[")), len(lines))
    return start, end, [i for i in range(start, end) if key.match(lines[i])]


def _write_lines(kritarc: Path, lines: list[str]) -> None:
    kritarc.parent.mkdir(parents=True, exist_ok=True)
    temp = kritarc.with_name(kritarc.name + ".esm-tmp")
    temp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(temp, kritarc)


def enable_plugin(kritarc: Path) -> None:
    """Sets ``enable_esm_krita=true`` in the ``[python]`` group of kritarc, leaving every other
    line as it is (kritarc is KConfig, not quite INI: configparser would rewrite it)."""
    lines = _read_lines(kritarc)
    entry = f"enable_{NAME}=true"
    start, end, existing = _python_group(lines)
    if start is None:
        lines += ([""] if lines and lines[-1].strip() else []) + ["[python]", entry]
    elif existing:
        lines[existing[0]] = entry
    else:
        while end > start and not lines[end - 1].strip():  # keep the blank line before the next group
            end -= 1
        lines.insert(end, entry)
    _write_lines(kritarc, lines)


def disable_plugin(kritarc: Path) -> bool:
    """Removes the ``enable_esm_krita`` lines that ``enable_plugin`` sets; True if there were any."""
    lines = _read_lines(kritarc)
    _, _, existing = _python_group(lines)
    if existing:
        _write_lines(kritarc, [line for i, line in enumerate(lines) if i not in existing])
    return bool(existing)


class Krita(Target):
    name = "krita"
    app = "Krita 5.2"
    source = f"krita/{NAME}"
    folder = NAME
    executables = ("krita",)
    check_hint = ("Restart Krita (close it first: Krita rewrites kritarc on exit). Then Settings > "
                  "Dockers > Extreme Style Machines, and Tools > Scripts > Tileable texture from "
                  "selection (ESM) (docs/krita.md: checking the installation).")

    def default_dest(self) -> Path:
        system = host_system()
        if system == "windows":
            return Path(os.environ.get("APPDATA", Path.home() / "AppData/Roaming")) / "krita/pykrita"
        if system == "macos":
            return Path.home() / "Library/Application Support/krita/pykrita"
        if _flatpak():
            return FLATPAK / "data/krita/pykrita"
        return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share") / "krita/pykrita"

    def default_python(self) -> str:
        # krita.org's builds embed Python 3.10 without a usable interpreter next to Krita on
        # every OS; docs/krita.md gives the --python-version/--platform to use for them.
        system = host_system()
        if system == "windows":
            return str(Path(os.environ.get("ProgramFiles", "C:/Program Files")) / "Krita (x64)/python/python.exe")
        if system == "macos":
            return "/Applications/krita.app/Contents/Frameworks/Python.framework/Versions/Current/bin/python3"
        return "python3"  # distribution and Flatpak builds use the system's (runtime's) Python 3

    def profile_kritarc(self, dest: Path) -> Path | None:
        """The kritarc of the Krita profile ``dest`` belongs to: this user's, when ``dest`` is its
        pykrita folder; None for any other folder, whose profile's settings cannot be known."""
        return kritarc_path() if dest.resolve() == self.default_dest().resolve() else None

    def after_install(self, dest: Path, installed: Path) -> list[str]:
        (dest / DESKTOP).write_bytes((plugin_source("krita") / DESKTOP).read_bytes())
        kritarc = self.profile_kritarc(dest)
        if kritarc is None:
            return [f"kritarc not edited: {dest} is not this user's pykrita folder ({self.default_dest()}); "
                    "enable the plug-in in Krita: Settings > Configure Krita > Python Plugin Manager"]
        enable_plugin(kritarc)
        return [f"enabled it in {kritarc} (enable_{NAME}=true)"]

    def after_uninstall(self, dest: Path) -> list[str]:
        kritarc = self.profile_kritarc(dest)
        if kritarc is not None and disable_plugin(kritarc):
            return [f"removed enable_{NAME} from {kritarc}"]
        return []

    def extra_paths(self, dest: Path) -> list[Path]:
        return [dest / DESKTOP]


TARGET = Krita()
