"""The ESM contract: what a job is and what can go wrong, shared by every part.

Standard library only, and it imports nothing but itself: the engine (``esm_core``), the
daemon (``esm_daemon``), the client (``esm_client``), the CLI (``esm_cli``) and the GIMP and
Krita plug-ins (which vendor it) all import it. Modules:

- ``params``: the parameter dataclasses of every mode, validated on construction from a map.
- ``jobs``: the modes (which params and images each takes) and the typed ``Job``.
- ``errors``: one error hierarchy; every error carries its protocol error code.
- ``images``: ``RawImage`` (pixels as on the wire) and shared image constants.
"""
__version__ = "0.1.0"
