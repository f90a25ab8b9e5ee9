"""The torch-free side of ESM: job parameters (params), job modes (jobs), the wire protocol
(protocol), the daemon client (client) and starting a daemon on demand (autostart).
Vendored into the GIMP and Krita plug-ins: standard library + pyzmq + msgpack only, and
importing this package imports none of them (import the submodule you need)."""
