"""What both plug-ins share (esm_client.plugin): the endpoint ($ESM_ENDPOINT first, as in both
plug-ins), the installer's start command, the fill margin, presets and error sentences."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from esm_client.plugin import CONFIG_NAME, PluginConfig, PluginError, describe, fill_margin, preset_fields
from esm_contract.errors import BAD_PARAMS, DaemonError, DaemonUnavailable, JobCancelled, JobFailed
from esm_contract.params import PRESETS


def write_config(folder: Path, **recorded: object) -> Path:
    path = folder / CONFIG_NAME
    path.write_text(json.dumps(recorded))
    return path


def test_esm_endpoint_overrides_the_recorded_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, endpoint="tcp://127.0.0.1:7001", start_command=["esm", "daemon", "start"])
    monkeypatch.delenv("ESM_ENDPOINT", raising=False)
    assert PluginConfig.load(path, "gimp").endpoint == "tcp://127.0.0.1:7001"
    monkeypatch.setenv("ESM_ENDPOINT", "ipc:///tmp/esm-test")
    config = PluginConfig.load(path, "gimp")
    assert config.endpoint == "ipc:///tmp/esm-test"
    assert config.start_command == ["esm", "daemon", "start", "--endpoint", "ipc:///tmp/esm-test"]
    assert config.at("tcp://127.0.0.1:9").start_command[-1] == "tcp://127.0.0.1:9"


def test_missing_or_broken_configuration_says_how_to_install(tmp_path: Path) -> None:
    missing = PluginConfig.load(tmp_path / CONFIG_NAME, "krita")
    assert missing.start_command == [] and "esm install-plugin krita" in missing.problem
    broken = PluginConfig.load(write_config(tmp_path, start_command="esm daemon start"), "gimp")
    assert broken.start_command == [] and "list of strings" in broken.problem
    assert "esm install-plugin krita" in missing.start_hint()


def test_fill_margin_is_the_holes_longer_side_at_least_16_unless_requested() -> None:
    assert fill_margin(10, 4) == 16
    assert fill_margin(30, 50) == 50
    assert fill_margin(30, 50, requested=12) == 12


def test_presets_come_from_the_contract() -> None:
    assert {name: tuple(preset_fields(name).values()) for name in PRESETS} == PRESETS
    with pytest.raises(PluginError, match="balanced"):
        preset_fields("ultra")


def test_error_sentences_by_kind() -> None:
    assert describe(JobCancelled()) == "Cancelled."
    assert describe(DaemonUnavailable("no ESM daemon answers")) == "No ESM daemon answers."
    assert describe(JobFailed(BAD_PARAMS, "too small")) == "The ESM daemon could not finish the job: too small"
    assert describe(DaemonError(BAD_PARAMS, "phases must be")) == "The ESM daemon refused the job: phases must be"
