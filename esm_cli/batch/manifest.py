"""The batch manifest: JSON Lines, one job a line (docs/batch.md).

A line's ``params`` go through the same contract as the daemon's and the CLI's
(``esm_contract.params.from_dict`` on the mode's params class: same names, validation and
defaults). Reading is streamed: a million-line manifest is never held in memory; only the
output names are kept, to refuse two lines writing the same file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from esm_contract import params as P
from esm_contract.errors import EsmError
from esm_contract.jobs import MODES, ModeParams, mode_spec

LINE_KEYS = frozenset({"mode", "images", "params", "output", "seeds"})


class LineError(ValueError):
    """A manifest line that does not describe a valid job; the message names what."""


@dataclass(frozen=True)
class BatchJob:
    """One job of the batch: a manifest line, or one of its seeds."""

    line: int  # 1-based line number in the manifest
    mode: str
    params: ModeParams
    images: dict[str, Path]  # image name -> file (resolved against the manifest's folder)
    output: str  # the output name, relative to OUTDIR: the job's key in results.jsonl
    outputs: tuple[str, ...]  # every file the job writes (variants: one per image)

    @property
    def exemplar(self) -> str:
        """The image the output is evaluated against (``esm eval``), and the worker affinity key."""
        return {"texture": "exemplar", "fill": "source" if "source" in self.images else "image",
                "variants": "style"}[self.mode]


@dataclass(frozen=True)
class InvalidLine:
    line: int
    message: str
    output: str | None  # the line's output name when it has a readable one


def _output_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise LineError("output must be a file name such as name.png")
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or not path.suffix:
        raise LineError(f"output must be a relative file name with an extension, inside OUTDIR; got {value!r}")
    return str(path)


def _outputs(mode: str, params: ModeParams, output: str) -> tuple[str, ...]:
    """Files a job writes. Variants write one per image, named like ``esm variants``'s
    MODE-SEED.png after the output's stem (and STEM-original.png for the original style)."""
    if mode != "variants":
        return (output,)
    assert isinstance(params, P.VariantParams)
    path = PurePosixPath(output)
    names = [f"{path.stem}-{params.mode}-{params.seed + i}{path.suffix}" for i in range(params.count)]
    if params.original and params.mode != "none":
        names.insert(0, f"{path.stem}-original{path.suffix}")
    return tuple(str(path.with_name(name)) for name in names)


def _seeded(output: str, seed: int) -> str:
    path = PurePosixPath(output)
    return str(path.with_name(f"{path.stem}-s{seed}{path.suffix}"))


def parse_line(text: str, number: int, folder: Path) -> list[BatchJob]:
    """The jobs of one manifest line (one per seed); raises LineError."""
    try:
        entry = json.loads(text)
    except json.JSONDecodeError as error:
        raise LineError(f"not JSON ({error.msg}, column {error.colno})") from None
    if not isinstance(entry, dict):
        raise LineError("a line must be a JSON object")
    unknown = sorted(set(entry) - LINE_KEYS)
    if unknown:
        raise LineError(f"unknown key(s) {', '.join(unknown)}; a line has {', '.join(sorted(LINE_KEYS))}")
    mode = entry.get("mode")
    if not isinstance(mode, str):
        raise LineError(f"mode must be one of {', '.join(MODES)}")
    try:
        spec = mode_spec(mode)
        params = P.from_dict(spec.params, entry.get("params") or {})
    except EsmError as error:
        raise LineError(error.message) from None
    images = entry.get("images")
    if not isinstance(images, dict) or not all(isinstance(v, str) for v in images.values()):
        raise LineError('images must be a map of image name to file, e.g. {"exemplar": "grass.png"}')
    missing = [name for name in spec.required_images if name not in images]
    extra = sorted(set(images) - set(spec.required_images) - set(spec.optional_images))
    if missing or extra:
        raise LineError(f"mode {mode} takes images {', '.join(spec.required_images)}"
                        + (f" (optional: {', '.join(spec.optional_images)})" if spec.optional_images else "")
                        + f"; got {', '.join(sorted(images)) or 'none'}")
    files = {name: folder / path for name, path in images.items()}  # an absolute path stays as it is
    for name, path in files.items():
        if not path.is_file():
            raise LineError(f"{name} image {path}: no such file")
    output = _output_name(entry.get("output"))
    seeds = entry.get("seeds")
    if seeds is None:
        return [BatchJob(number, mode, params, files, output, _outputs(mode, params, output))]
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) or len(set(seeds)) != len(seeds)):
        raise LineError("seeds must be a non-empty list of different whole numbers")
    jobs = []
    for seed in seeds:
        try:
            seeded = replace(params, seed=seed)  # validates the seed
        except EsmError as error:
            raise LineError(error.message) from None
        name = _seeded(output, seed)
        jobs.append(BatchJob(number, mode, seeded, files, name, _outputs(mode, seeded, name)))
    return jobs


def read_manifest(path: Path) -> Iterator[BatchJob | InvalidLine]:
    """Every job of the manifest in order, and an InvalidLine for each line that is not one
    (also for a line whose output another line already writes). Blank lines are skipped."""
    writers: dict[str, int] = {}  # output file -> line that writes it
    folder = path.parent
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                jobs = parse_line(text, number, folder)
                for job in jobs:
                    for name in job.outputs:
                        if writers.setdefault(name, number) != number:
                            raise LineError(f"output {name} is already written by line {writers[name]}")
            except LineError as error:
                yield InvalidLine(number, str(error), _readable_output(text))
                continue
            yield from jobs


def _readable_output(text: str) -> str | None:
    try:
        output = json.loads(text).get("output")
    except (json.JSONDecodeError, AttributeError):
        return None
    return output if isinstance(output, str) else None
