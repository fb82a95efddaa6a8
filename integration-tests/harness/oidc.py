"""The real OpenID provider (npm `oidc-provider`, integration-tests/oidc/provider.mjs) as a
managed process. The test owns the signing keys: they are written to a private JWKS file
and the provider is restarted to rotate them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import requests

from . import TESTS_DIR
from .ports import free_port
from .procs import Proc, wait_until
from .tokens import Key

CLIENT_ID = "meshward-test"
CLIENT_SECRET = "meshward-secret"
AUDIENCE = "urn:meshward:api"


class OidcProvider:
    def __init__(self, workdir: Path, keys: list[Key], port: int | None = None, name: str = "oidc"):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.keys = list(keys)
        self.name = name
        self.jwks_path = self.workdir / f"{name}-keys.json"
        self.log_path = self.workdir / f"{name}.log"
        self.proc: Proc | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    def write_keys(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.jwks_path.write_text(json.dumps({"keys": [k.jwk_private() for k in self.keys]}))

    def start(self, timeout: float = 30.0) -> "OidcProvider":
        self.write_keys()
        node = shutil.which("node") or "node"
        offset = len(self.log_text())
        self.proc = Proc(self.name, [node, TESTS_DIR / "oidc" / "provider.mjs", "--port", self.port,
                                     "--jwks", self.jwks_path], self.log_path, cwd=TESTS_DIR).start()
        if not self.proc.wait_for_log("READY ", timeout, start_offset=offset):
            tail = self.proc.tail()
            self.stop()
            raise RuntimeError(f"oidc-provider did not start:\n{tail}")
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()
            self.proc = None

    def restart(self, keys: list[Key] | None = None) -> None:
        self.stop()
        if keys is not None:
            self.keys = list(keys)
        self.start()

    def alive(self) -> bool:
        return bool(self.proc and self.proc.alive())

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def token(self, scope: str = "read write", timeout: float = 10.0) -> str:
        r = requests.post(f"{self.issuer}/token", auth=(CLIENT_ID, CLIENT_SECRET),
                          data={"grant_type": "client_credentials", "scope": scope}, timeout=timeout)
        r.raise_for_status()
        return r.json()["access_token"]

    def published_kids(self) -> list[str]:
        r = requests.get(self.jwks_uri, timeout=5)
        r.raise_for_status()
        return [k["kid"] for k in r.json()["keys"]]

    def wait_down(self, timeout: float = 5.0) -> bool:
        def down():
            try:
                requests.get(self.jwks_uri, timeout=0.5)
                return False
            except requests.RequestException:
                return True
        return bool(wait_until(down, timeout))
