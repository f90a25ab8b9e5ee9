"""The ``esm`` command-line interface."""
from esm_contract import __version__  # noqa: F401  (esm --version; one version for every part)
