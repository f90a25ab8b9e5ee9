"""The torch-free client side of ESM: the wire protocol (``protocol``), the daemon client
(``client``), starting a daemon on demand (``autostart``), the runtime folder and its secret
(``runtime``) and what both plug-ins share (``plugin``). Standard library + pyzmq + msgpack
and the contract package (``esm_contract``); vendored into the GIMP and Krita plug-ins with
it. Importing this package imports none of them (import the submodule you need)."""
