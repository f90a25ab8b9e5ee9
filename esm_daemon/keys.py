"""CURVE keys for a daemon reachable from other machines (``esm daemon keys``).

Layout of the keys folder (see docs/daemon.md):
  server.key, server.key_secret   the daemon's key pair
  client.key, client.key_secret   a client key pair (copy server.key + client.key_secret to
                                  the client machine and point $ESM_KEYS_DIR at them)
  authorized/                     public keys of the clients the daemon accepts
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


class KeysError(Exception):
    """Keys are missing or unreadable; the message says what to do."""


@dataclass(frozen=True)
class ServerKeys:
    public: bytes
    secret: bytes
    authorized: Path


def generate(folder: Path, force: bool = False) -> list[Path]:
    """Creates the server and one client key pair; returns the files written."""
    if (folder / "server.key_secret").exists() and not force:
        raise KeysError(f"keys already exist in {folder} (use --force to replace them)")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    authorized = folder / "authorized"
    authorized.mkdir(exist_ok=True, mode=0o700)
    written = []
    for name in ("server", "client"):
        public, secret = zmq.auth.create_certificates(str(folder), name)
        Path(secret).chmod(0o600)
        written += [Path(public), Path(secret)]
    shutil.copy(folder / "client.key", authorized / "client.key")
    written.append(authorized / "client.key")
    return written


def load_server(folder: Path) -> ServerKeys:
    secret_file = folder / "server.key_secret"
    if not secret_file.is_file():
        raise KeysError(f"no CURVE keys in {folder}; create them with `esm daemon keys`")
    try:
        public, secret = zmq.auth.load_certificate(secret_file)
    except (OSError, ValueError) as error:
        raise KeysError(f"{secret_file}: unreadable CURVE key ({error})") from None
    if secret is None:
        raise KeysError(f"{secret_file} holds no secret key")
    authorized = folder / "authorized"
    if not authorized.is_dir() or not any(authorized.glob("*.key")):
        raise KeysError(f"{authorized} lists no client public keys; `esm daemon keys` creates one")
    return ServerKeys(public, secret, authorized)


def secure(context: zmq.Context, socket: zmq.Socket, keys: ServerKeys) -> ThreadAuthenticator:
    """Makes ``socket`` a CURVE server that accepts only the authorized client keys."""
    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=str(keys.authorized))
    socket.curve_server = True
    socket.curve_publickey = keys.public
    socket.curve_secretkey = keys.secret
    return auth
