"""The docker's settings, kept in Krita's own settings file (kritarc, group esm_krita)."""
from __future__ import annotations

import json

from krita import Krita

from .operations import Options

GROUP = "esm_krita"
KEY = "options"


def load_options() -> Options:
    """The saved settings; defaults for anything missing or unreadable."""
    try:
        saved = json.loads(Krita.instance().readSetting(GROUP, KEY, "{}") or "{}")
    except ValueError:
        return Options()
    defaults = Options().to_dict()
    values = {}
    for name, value in (saved.items() if isinstance(saved, dict) else ()):
        if name in defaults and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                values[name] = type(defaults[name])(value)
            except (TypeError, ValueError):
                pass  # a hand-edited kritarc: keep the default
    return Options(**values)


def save_options(options: Options) -> None:
    Krita.instance().writeSetting(GROUP, KEY, json.dumps(options.to_dict()))
