"""The `meshward` CLI (dist/meshward) against independent references: tokens it mints verify
with PyJWT and pass jwt-auth in a real Envoy; `jwt inspect` agrees with both."""

from __future__ import annotations

import json
import subprocess

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from harness import DIST
from harness.envoy import jwt_auth_filter, static_cluster

CLI = str(DIST / "meshward")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=30)


def pem_key(tmp_path, name="key.pem"):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / name
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key, path


def test_minted_token_verifies_with_pyjwt_and_passes_jwt_auth_in_envoy(procs, tmp_path, jwt_wasm):
    _, key_path = pem_key(tmp_path)
    token = cli("token", "--key", str(key_path), "--sub", "carol", "--claim", "tenant=acme").stdout.strip()
    jwks = json.loads(cli("token", "--key", str(key_path), "--print-jwks").stdout)
    public = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(jwks["keys"][0]))
    claims = jwt.decode(token, public, algorithms=["ES256"], audience="meshward-demo",
                        issuer="https://dev.meshward.local")
    assert (claims["sub"], claims["tenant"], claims["scope"]) == ("carol", "acme", "read write")
    assert jwt.get_unverified_header(token)["kid"] == "dev-es256"

    echo = procs.echo()
    e = procs.envoy([jwt_auth_filter({
        "providers": {"dev": {"issuer": "https://dev.meshward.local", "audiences": ["meshward-demo"],
                              "local_jwks": {"inline_string": json.dumps(jwks)},
                              "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "dev"}}]})],
        [static_cluster("upstream", echo.port)])
    e.start()
    r = e.request("/x", token)
    assert r.status_code == 200, r.text
    assert r.json()["headers"].get("x-jwt-sub") == "carol"
    h, p, s = token.split(".")
    assert e.request("/x", f"{h}.{p}.{s[:-4]}AAAA").status_code == 401


def test_inspect_agrees_with_pyjwt(tmp_path):
    key, _ = pem_key(tmp_path)
    other, other_path = pem_key(tmp_path, "other.pem")
    good = jwt.encode({"iss": "https://dev.meshward.local", "aud": "meshward-demo", "sub": "dan",
                       "exp": 4_000_000_000}, key, algorithm="ES256", headers={"kid": "dev-es256"})
    jwks_path = tmp_path / "jwks.json"
    pub = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwks_path.write_text(json.dumps({"keys": [pub | {"kid": "dev-es256", "alg": "ES256", "use": "sig"}]}))
    ok = cli("jwt", "inspect", good, "--jwks", str(jwks_path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["signature"] == "valid" and report["payload"]["sub"] == "dan"
    # the same claims signed by another key: PyJWT refuses it, and so does inspect
    forged = jwt.encode({"sub": "dan"}, other, algorithm="ES256", headers={"kid": "dev-es256"})
    bad = cli("jwt", "inspect", forged, "--jwks", str(jwks_path))
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["signature"].startswith("invalid")
    malformed = cli("jwt", "inspect", "not-a-token")
    assert malformed.returncode == 1 and "token:" in malformed.stderr
    assert cli("token", "--key", str(tmp_path / "missing.pem")).returncode == 1
    assert "--key" in cli("token").stderr
