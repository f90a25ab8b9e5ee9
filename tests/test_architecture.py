"""The seams between the parts: the engine's mode registry names exactly the contract's modes,
every error carries a protocol code, and a params object cannot be invalid. (The import
directions are checked by lint-imports, .importlinter, in tools/test.sh.)"""
from __future__ import annotations

import subprocess
import sys

import pytest

from esm_contract import errors
from esm_contract.jobs import MODES, Job, parse_job
from esm_contract.params import FillParams, ParamError, SynthesisParams, VariantParams


def test_engine_runs_exactly_the_contracts_modes() -> None:
    from esm_core.engine import MODES as ENGINE_MODES

    assert set(ENGINE_MODES) == set(MODES)


def test_params_cannot_be_invalid() -> None:
    with pytest.raises(ParamError, match="phases"):
        SynthesisParams(phases=0)
    with pytest.raises(ParamError, match="count"):
        VariantParams(count=0)
    with pytest.raises(ParamError, match="loss=patches"):
        FillParams(loss="gram")


def test_a_job_holds_its_modes_params_and_images() -> None:
    with pytest.raises(ParamError, match="takes FillParams"):
        Job("fill", SynthesisParams(), {"image": None, "mask": None})
    with pytest.raises(ParamError, match="needs image"):
        Job("texture", SynthesisParams(), {})
    with pytest.raises(ParamError, match="unknown mode"):
        parse_job("paint", {}, {})
    job = parse_job("variants", {"count": 2, "original": True}, {"style": None})
    assert isinstance(job.params, VariantParams) and job.result_count == 3


def test_every_error_carries_a_protocol_code() -> None:
    import esm_core
    from esm_core.progress import Cancelled

    for error in (ParamError("x"), esm_core.ImageError("x"), esm_core.SizeError("x"), esm_core.DeviceError("x")):
        assert isinstance(error, errors.EsmError) and error.code == errors.BAD_PARAMS
    assert Cancelled("x").code == errors.CANCELLED
    assert errors.JobCancelled().code == errors.CANCELLED


def test_the_client_side_never_imports_torch_or_numpy() -> None:
    """What a plug-in and a daemon-run CLI job load: the contract and the client."""
    code = ("import sys, esm_contract.jobs, esm_client.client, esm_client.autostart, esm_client.plugin; "
            "print(sorted(m for m in ('torch', 'numpy', 'scipy', 'PIL') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_only_esm_batch_loads_ray() -> None:
    """Ray (a second of imports) is for esm batch alone: the command line with every sub-command
    registered, esm synth's module, the daemon and the engine do not load it."""
    code = ("import sys, esm_cli.main, esm_cli.commands.synth, esm_daemon.server, esm_daemon.worker, esm_core; "
            "esm_cli.main.build_parser(); print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_cli_job_run_on_a_daemon_loads_no_torch_in_the_client(daemon, tmp_path) -> None:  # noqa: ANN001
    """`esm synth` through a daemon: the result arrives, and the client process never imported torch."""
    from pathlib import Path

    exemplar = Path(__file__).resolve().parents[1] / "esm_core" / "data" / "grass.png"
    output = tmp_path / "out.png"
    code = ("import sys; from esm_cli.main import main; "
            f"status = main(['synth', {str(exemplar)!r}, '--size', '32x32', '--phases', '1', '--iterations', '2', "
            f"'-o', {str(output)!r}, '--daemon', '--endpoint', {daemon.endpoint!r}, '-q']); "
            "print(status, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=daemon.env, timeout=300)
    assert done.stdout.split()[-2:] == ["0", "False"], done.stderr
    assert output.is_file()


def test_the_engines_style_losses_are_the_schemas_choices() -> None:
    from esm_contract.schema import STYLE_SAMPLES, TEXTURE
    from esm_core.features.patches import PATCH
    from esm_core.losses import STYLE_LOSSES

    assert set(STYLE_LOSSES) == set(TEXTURE["loss"].choices)
    assert STYLE_SAMPLES["patches"] == PATCH  # Neural Patches' samples are the engine's 3x3 patches
