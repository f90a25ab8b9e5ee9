"""The ESM daemon: a ZeroMQ service that keeps an esm_core.Engine (device, random networks,
style features) alive between jobs. Entry point: ``esm daemon start`` (esm_cli), which calls
``esm_daemon.server.serve``. Importing this package does not import torch."""
