"""``esm batch``: many jobs from a JSON Lines manifest on Ray (docs/batch.md).

``manifest`` reads and validates the manifest (standard library and esm_contract only);
``results`` keeps OUTDIR/results.jsonl; ``cluster`` is the only module that imports ray.
"""
