"""CURVE encryption and authentication for predictions that leave the machine.

ZeroMQ's CURVE (elliptic-curve encryption, as in CurveZMQ) protects every connection: the side that binds
is the CURVE server, the side that connects is a CURVE client. ``edgeemo keys --out DIR`` writes two key
pairs in ZeroMQ's certificate format (``zmq.auth``)::

    DIR/server.key          the server's public key: give it to every subscriber
    DIR/server.key_secret   the server's key pair (mode 0600): stays with serve or relay
    DIR/client.key          the client's public key: the server lets in the holders of such keys
    DIR/client.key_secret   the client's key pair (mode 0600): for subscribers (and serve --connect)

A server started with ``--curve-keys DIR`` uses ``server.key_secret`` and lets in every client whose public
key is a ``*.key`` file in DIR (other than ``server.key``): to admit another client, copy its public key
there and restart. A client uses ``client.key_secret`` and the server's public key (``server.key``, or the
file ``--server-key`` names). Without keys nothing is encrypted, which is allowed on loopback only: a
server that binds any other address refuses to start without ``--curve-keys`` (``require_keys``).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from edgeemo.errors import EdgeemoError

SERVER, CLIENT = "server", "client"
PUBLIC_SUFFIX, SECRET_SUFFIX = ".key", ".key_secret"
_NETWORK_TRANSPORTS = frozenset({"tcp", "ws", "wss", "udp", "pgm", "epgm", "norm", "tipc", "vmci"})
_HOST_PORT_TRANSPORTS = frozenset({"tcp", "ws", "wss", "udp"})


@dataclass(frozen=True)
class ServerKeys:
    """What a binding socket needs: its key pair and the public keys it lets in (Z85 bytes)."""

    public: bytes
    secret: bytes
    clients: frozenset[bytes]


@dataclass(frozen=True)
class ClientKeys:
    """What a connecting socket needs: its key pair and the public key of the server it trusts."""

    public: bytes
    secret: bytes
    server: bytes


def create_keys(out: Path) -> list[Path]:
    """Write a server and a client key pair into ``out``; return the files written.

    Refuses to overwrite keys already there (their holders would be locked out). The files are made in a
    private temporary folder inside ``out`` and moved into place, so a secret is never readable by others.
    """
    out = Path(out)
    names = [f"{who}{suffix}" for who in (SERVER, CLIENT) for suffix in (PUBLIC_SUFFIX, SECRET_SUFFIX)]
    taken = [name for name in names if (out / name).exists()]
    if taken:
        raise EdgeemoError(f"--out {out}: {taken[0]} already exists (keep it, or choose another folder)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".keys-", dir=out))  # mode 0700
    except OSError as exc:
        raise EdgeemoError(f"--out {out}: cannot write there ({exc.strerror})") from None
    try:
        for who in (SERVER, CLIENT):
            public, secret = (Path(p) for p in zmq.auth.create_certificates(staging, who))
            public.chmod(0o644)
            secret.chmod(0o600)
        for name in names:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / name for name in names]


def load_server_keys(folder: Path, flag: str = "--curve-keys") -> ServerKeys:
    """The server key pair in ``folder`` and every client public key beside it."""
    folder = _folder(folder, flag)
    public, secret = _key_pair(folder / f"{SERVER}{SECRET_SUFFIX}", flag)
    clients = frozenset(
        _public_key(path, flag) for path in sorted(folder.glob(f"*{PUBLIC_SUFFIX}"))
        if path.name != f"{SERVER}{PUBLIC_SUFFIX}"
    )
    if not clients:
        raise EdgeemoError(f"{flag} {folder}: no client public key (*{PUBLIC_SUFFIX}) to let in")
    return ServerKeys(public, secret, clients)


def load_client_keys(folder: Path, server_key: Path | None = None, flag: str = "--curve-keys") -> ClientKeys:
    """The client key pair in ``folder`` and the server's public key (``server_key``, else folder/server.key)."""
    folder = _folder(folder, flag)
    public, secret = _key_pair(folder / f"{CLIENT}{SECRET_SUFFIX}", flag)
    if server_key is None:
        server = _public_key(folder / f"{SERVER}{PUBLIC_SUFFIX}", flag)
    else:
        server = _public_key(Path(server_key), "--server-key")
    return ClientKeys(public, secret, server)


def leaves_machine(endpoint: str) -> bool:
    """Whether a ZeroMQ endpoint reaches beyond this machine: a network transport (tcp://, ws://, pgm://, ...)
    on an address other than loopback. A host name other than ``localhost``, an interface name or ``*``
    counts as beyond; ipc:// and inproc:// do not, nor a malformed endpoint (ZeroMQ rejects it)."""
    transport, sep, address = endpoint.partition("://")
    if not sep or transport not in _NETWORK_TRANSPORTS:
        return False
    if transport not in _HOST_PORT_TRANSPORTS:
        return True
    host = address.rsplit(":", 1)[0].split(";")[-1]  # tcp://SOURCE;HOST:PORT connects from SOURCE to HOST
    host = host.split("/")[0] if transport in ("ws", "wss") else host
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def require_keys(endpoint: str, keys: object, flag: str) -> None:
    """Refuse an endpoint beyond this machine without CURVE keys: predictions would travel in clear."""
    if keys is None and leaves_machine(endpoint):
        raise EdgeemoError(
            f"{flag} {endpoint}: not a loopback address, so CURVE encryption is required: pass --curve-keys DIR "
            "(make one with: edgeemo keys --out DIR)"
        )


def make_server(socket: zmq.Socket, keys: ServerKeys) -> None:
    """Make ``socket`` a CURVE server (before it binds); an ``Authenticator`` must run in its context."""
    socket.curve_secretkey = keys.secret
    socket.curve_publickey = keys.public
    socket.curve_server = True


def make_client(socket: zmq.Socket, keys: ClientKeys) -> None:
    """Make ``socket`` a CURVE client of the server whose public key ``keys`` holds (before it connects)."""
    socket.curve_secretkey = keys.secret
    socket.curve_publickey = keys.public
    socket.curve_serverkey = keys.server


class Authenticator:
    """ZeroMQ's authentication handler (ZAP) for one context, letting in the clients of ``keys``.

    Runs on its own thread; one per context, started before the first CURVE server socket binds.
    ``stop`` before the context is terminated."""

    def __init__(self, context: zmq.Context, keys: ServerKeys) -> None:
        self._clients = keys.clients
        self._thread = ThreadAuthenticator(context)
        self._thread.start()
        self._thread.configure_curve_callback("*", credentials_provider=self)

    def callback(self, domain: str, key: bytes) -> bool:
        """Called by the handler for each connecting client, with its Z85 public key."""
        return key in self._clients

    def stop(self) -> None:
        self._thread.stop()


def _folder(folder: Path, flag: str) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgeemoError(f"{flag} {folder}: no such folder (make one with: edgeemo keys --out {folder})")
    return folder


def _key_pair(path: Path, flag: str) -> tuple[bytes, bytes]:
    if not path.is_file():
        raise EdgeemoError(f"{flag} {path.parent}: no {path.name} (make keys with: edgeemo keys --out {path.parent})")
    if path.stat().st_mode & stat.S_IRWXO:
        # A secret every user can read may already be someone else's. Group access is allowed: a deployment
        # may grant it on purpose (Kubernetes' fsGroup makes mounted secrets group-readable).
        raise EdgeemoError(f"{path}: readable by every user; chmod 600 {path}")
    public, secret = _certificate(path)
    if secret is None:
        raise EdgeemoError(f"{path}: holds no secret-key")
    return public, secret


def _public_key(path: Path, flag: str) -> bytes:
    if not path.is_file():
        raise EdgeemoError(f"{flag} {path}: no such public key file")
    return _certificate(path)[0]


def _certificate(path: Path) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise EdgeemoError(f"{path}: not a ZeroMQ certificate ({exc})") from None
    if len(public) != 40 or (secret is not None and len(secret) != 40):
        raise EdgeemoError(f"{path}: a CURVE key is 40 Z85 characters")
    return public, secret
