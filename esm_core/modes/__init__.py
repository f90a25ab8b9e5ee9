"""Pipeline step 4, the modes: texture synthesis (``synthesis``), filling a hole (``fill``,
starting from ``fillstart``) and randomised-Gram variants (``variants``). Each runs the
optimisation over a sum of loss terms; esm_core.engine.MODES maps the contract's mode names
(esm_contract.jobs.MODES) onto them."""
