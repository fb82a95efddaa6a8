"""Signature backends through real Envoy (issue 10, "Signature paths").

jwt-auth checks RS256/384/512 and ES256/384 signatures with Envoy's `verify_signature`
foreign function (BoringSSL) when `signature_backend` is `host` (or `auto`, the default, on a
host that has it) and with ring inside V8 when it is `ring`.

1. One battery of tokens against three Envoys (`host`, `ring`, `auto`): every answer (status and
   reason) must be the same everywhere, and the `verify.*` counters must show who checked.
2. Wycheproof RSA PKCS#1 v1.5 and ECDSA P-256/P-384 (P1363) vectors through the real host
   function and ring side by side, in a test-only module (integration-tests/sigcheck-filter/,
   a workspace member built here) that builds the key and signature forms with the same
   `meshward_shared::foreign` code jwt-auth uses. Every disagreement is reported.

The host path for a missing foreign function (fallback to ring) cannot be produced with a real
Envoy; the unit tests cover it against a fake host (filters/jwt-auth/src/signature_tests.rs).
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from harness import REPO_ROOT
from harness import tokens as tk
from harness.configs import LOCAL_AUD, LOCAL_ISS
from harness.envoy import jwt_auth_filter, static_cluster, wasm_filter
from harness.wasm_build import build_test_module


# Group orders (for the other member of an ECDSA (r, s) pair).
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P384_N = int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16)

# RFC 7515 A.2 (RS256) and A.3 (ES256): published keys and signatures. Their payload has
# iss "joe" and exp 1300819380 (2011): a token whose signature verifies is refused as
# token_expired, one whose signature fails as bad_signature (the signature is checked first).
RFC_PAYLOAD = ("eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ")
RFC_A2 = ("eyJhbGciOiJSUzI1NiJ9." + RFC_PAYLOAD + "."
          "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"
          "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4"
          "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K"
          "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv"
          "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB"
          "p0igcN_IoypGlUPQGe77Rw")
RFC_A3 = ("eyJhbGciOiJFUzI1NiJ9." + RFC_PAYLOAD + "."
          "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q")
RFC_JWKS = {"keys": [
    {"kty": "RSA", "e": "AQAB",
     "n": "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4"
          "d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rex"
          "MdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvU"
          "K-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"},
    {"kty": "EC", "crv": "P-256",
     "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
]}

HOST_ALGS = ("RS256", "RS384", "RS512", "ES256", "ES384")


# ------------------------------------------------------------------ helpers
def _sig(token: str) -> bytes:
    return tk.b64url_decode(token.rsplit(".", 1)[1])


def _with_sig(token: str, sig: bytes) -> str:
    return token.rsplit(".", 1)[0] + "." + tk.b64url(sig)


def _flip(token: str) -> str:
    s = bytearray(_sig(token))
    s[len(s) // 2] ^= 0x01
    return _with_sig(token, bytes(s))


def _other_s(token: str, order: int) -> str:
    """The same ECDSA signature with s replaced by n - s: the other valid member of the pair."""
    s = _sig(token)
    half = len(s) // 2
    other = (order - int.from_bytes(s[half:], "big")).to_bytes(half, "big")
    return _with_sig(token, s[:half] + other)


class Tok:
    def __init__(self, name, token, status, reason, path="/api", length_ok=True, host_alg=True):
        self.name, self.token, self.status, self.reason, self.path = name, token, status, reason, path
        self.length_ok = length_ok  # a signature of the right length reaches a backend
        self.host_alg = host_alg  # RS*/ES*: the host's when it has the check


def _battery(keys: dict, impostors: dict) -> list[Tok]:
    out: list[Tok] = []
    claims = tk.claims(LOCAL_ISS, LOCAL_AUD)
    for alg in HOST_ALGS:
        k = keys[alg]
        good = tk.mint(k, claims)
        out += [
            Tok(f"{alg} valid", good, 200, None),
            Tok(f"{alg} tampered", _flip(good), 401, "bad_signature"),
            Tok(f"{alg} truncated by one byte", _with_sig(good, _sig(good)[:-1]), 401, "bad_signature",
                length_ok=False),
            Tok(f"{alg} one byte too long", _with_sig(good, _sig(good) + b"\0"), 401, "bad_signature",
                length_ok=False),
            Tok(f"{alg} signed by another key under this kid", tk.mint(impostors[alg], claims), 401,
                "bad_signature"),
        ]
    # ECDSA specifics. Neither ring nor BoringSSL enforces low S: (r, n - s) verifies too.
    for alg, order in (("ES256", P256_N), ("ES384", P384_N)):
        good = tk.mint(keys[alg], claims)
        out.append(Tok(f"{alg} with s replaced by n - s", _other_s(good, order), 200, None))
        n = len(_sig(good)) // 2
        out.append(Tok(f"{alg} r = s = 0", _with_sig(good, bytes(2 * n)), 401, "bad_signature"))
        out.append(Tok(f"{alg} s = n (out of range)",
                       _with_sig(good, _sig(good)[:n] + order.to_bytes(n, "big")), 401, "bad_signature"))
        hs, ps, _ = good.split(".")
        der = keys[alg].sign_der(f"{hs}.{ps}".encode())
        out.append(Tok(f"{alg} DER signature instead of r||s", _with_sig(good, der), 401, "bad_signature",
                       length_ok=False))
    # RSA specifics: a signature value >= n; a PKCS#1 v1.5 signature over another hash.
    good = tk.mint(keys["RS256"], claims)
    out.append(Tok("RS256 signature of all 0xff (>= n)", _with_sig(good, b"\xff" * 256), 401, "bad_signature"))
    hs, ps, _ = good.split(".")
    other_hash = tk.Key(keys["RS256"].kid, "RS384", keys["RS256"].private).sign(f"{hs}.{ps}".encode())
    out.append(Tok("RS256 header, RS384 signature", _with_sig(good, other_hash), 401, "bad_signature"))
    # ring only, whatever the backend
    for alg in ("PS256", "EdDSA"):
        good = tk.mint(keys[alg], claims)
        out += [Tok(f"{alg} valid (ring)", good, 200, None, host_alg=False),
                Tok(f"{alg} tampered (ring)", _flip(good), 401, "bad_signature", host_alg=False)]
    # RFC 7515 examples with their own keys (provider `joe`, no kid: each usable key is tried)
    out += [
        Tok("RFC 7515 A.2 RS256", RFC_A2, 401, "token_expired", path="/rfc"),
        Tok("RFC 7515 A.2 tampered", _flip(RFC_A2), 401, "bad_signature", path="/rfc"),
        Tok("RFC 7515 A.3 ES256", RFC_A3, 401, "token_expired", path="/rfc"),
        Tok("RFC 7515 A.3 tampered", _flip(RFC_A3), 401, "bad_signature", path="/rfc"),
    ]
    return out


def _config(jwks: dict, backend: str | None) -> dict:
    cfg = {
        "providers": {
            "local": {"issuer": LOCAL_ISS, "audiences": [LOCAL_AUD],
                      "local_jwks": {"inline_string": json.dumps(jwks)},
                      "jwt_cache_config": {"jwt_cache_size": 0}},
            "joe": {"issuer": "joe", "local_jwks": {"inline_string": json.dumps(RFC_JWKS)},
                    "jwt_cache_config": {"jwt_cache_size": 0}},
        },
        "rules": [
            {"match": {"prefix": "/rfc"}, "requires": {"provider_name": "joe"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "local"}},
        ],
    }
    if backend is not None:
        cfg["signature_backend"] = backend
    return cfg


def _answer(e, t: Tok) -> tuple[int, str | None]:
    r = e.request(t.path, token=t.token)
    reason = None
    if r.status_code != 200:
        try:
            reason = r.json().get("reason")
        except ValueError:
            reason = f"<not json: {r.text[:80]!r}>"
    return r.status_code, reason


def _verify_counters(e) -> dict[str, int]:
    out = {k: int(e.metric("meshward_jwt_auth_verify", backend=k)) for k in ("host", "ring")}
    out["host_failed"] = int(e.metric("meshward_jwt_auth_verify_host_failed"))
    return out


# ------------------------------------------------------------------ 1. the token battery
def test_host_and_ring_backends_answer_alike(procs, jwt_wasm):
    keys = {a: tk.rsa_key(f"k-{a}", a) for a in ("RS256", "RS384", "RS512", "PS256")}
    keys.update({a: tk.ec_key(f"k-{a}", a) for a in ("ES256", "ES384")})
    keys["EdDSA"] = tk.ed_key("k-EdDSA")
    impostors = {a: (tk.rsa_key(k.kid, a) if a.startswith("RS") else tk.ec_key(k.kid, a))
                 for a, k in keys.items() if a in HOST_ALGS}
    jwks = tk.jwks(*keys.values())
    echo = procs.echo()
    envoys = {}
    for backend in ("host", "ring", None):
        e = procs.envoy([jwt_auth_filter(_config(jwks, backend))], [static_cluster("upstream", echo.port)])
        envoys[backend or "auto"] = e.start()

    battery = _battery(keys, impostors)
    table = []
    for t in battery:
        answers = {name: _answer(e, t) for name, e in envoys.items()}
        table.append((t.name, answers["host"], answers["ring"]))
        assert answers["host"] == answers["ring"] == answers["auto"], f"{t.name}: {answers}"
        assert answers["host"] == (t.status, t.reason), f"{t.name}: {answers}"
    for name, host, ring in table:
        print(f"BACKENDS {name:<45} host={host} ring={ring}")

    checked = len(battery)  # every token reaches the signature check (one usable key each)
    host_calls = sum(1 for t in battery if t.host_alg and t.length_ok)
    ring_only = sum(1 for t in battery if not t.host_alg)
    assert _verify_counters(envoys["host"]) == {"host": host_calls, "ring": ring_only, "host_failed": 0}
    assert _verify_counters(envoys["auto"]) == {"host": host_calls, "ring": ring_only, "host_failed": 0}
    assert _verify_counters(envoys["ring"]) == {"host": 0, "ring": checked, "host_failed": 0}
    # the decision is logged once per worker at configure
    assert "signatures: host verify_signature for RS*/ES*" in envoys["host"].log_text()
    assert "signatures: host verify_signature for RS*/ES*" in envoys["auto"].log_text()
    assert "signatures: ring (signature_backend: ring)" in envoys["ring"].log_text()


# ------------------------------------------------------------------ 2. Wycheproof through the host
# (file, JWS alg). All RSA PKCS#1 v1.5 sets for the SHA-2 hashes JWS uses, and the two P1363
# ECDSA sets: about 3,600 cases, each checked by BoringSSL (through Envoy) and by ring in V8.
WYCHEPROOF_SETS = [
    *[(f"rsa_signature_{bits}_{h}_test.json", f"RS{h[3:]}")
      for bits in (2048, 3072, 4096, 8192) for h in ("sha256", "sha384", "sha512")],
    ("ecdsa_secp256r1_sha256_p1363_test.json", "ES256"),
    ("ecdsa_secp384r1_sha384_p1363_test.json", "ES384"),
]
BATCH = 48  # cases per request (an 8192-bit case is about 4 KB of hex)


@pytest.fixture(scope="session")
def sigcheck_wasm() -> str:
    return build_test_module("sigcheck-filter")


@pytest.fixture(scope="session")
def wycheproof_dir() -> Path:
    """The vectors as the `wycheproof` crate (a jwt-auth dev-dependency) ships them."""
    cmd = ["cargo", "metadata", "--format-version", "1"]
    p = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        p = subprocess.run(cmd + ["--offline"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    pkg = next(x for x in json.loads(p.stdout)["packages"] if x["name"] == "wycheproof")
    data = Path(pkg["manifest_path"]).parent / "src" / "data"
    if not data.is_dir():  # the crate's sources are not unpacked until something builds it
        subprocess.run(["cargo", "fetch"], cwd=REPO_ROOT, capture_output=True, timeout=170)
    assert data.is_dir(), data
    return data


class _Sink:
    """An upstream that reads and never answers. The module lets the headers go on (Envoy 1.40
    gives no body to a filter that paused its headers) and answers locally once the body is in,
    which resets the upstream stream; an upstream that wrote a response would see a broken pipe."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn):
        with conn:
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass

    def stop(self):
        self.sock.close()


def _group_request(alg: str, group: dict, cases: list[dict]) -> dict:
    if alg.startswith("RS"):
        key = {"n": group["publicKey"]["modulus"], "e": group["publicKey"]["publicExponent"]}
    else:
        key = {"point": group["publicKey"]["uncompressed"]}
    return {"alg": alg, "key": key,
            "cases": [{"id": c["tcId"], "msg": c["msg"], "sig": c["sig"]} for c in cases]}


def test_wycheproof_host_and_ring_agree_through_envoy(procs, sigcheck_wasm, wycheproof_dir):
    sink = _Sink()
    e = procs.envoy([wasm_filter("{}", wasm=sigcheck_wasm, name="sigcheck", root_id="", vm_id="sigcheck")],
                    [static_cluster("upstream", sink.port)], concurrency=1).start()
    try:
        _run_wycheproof(e, wycheproof_dir)
    finally:
        sink.stop()


def _run_wycheproof(e, wycheproof_dir: Path) -> None:
    started = time.monotonic()
    session = requests.Session()
    rows, disagreements, spki_mismatches, host_errors, unexpected = [], [], [], [], 0
    for file, alg in WYCHEPROOF_SETS:
        doc = json.loads((wycheproof_dir / file).read_text())
        n = host_calls = host_ns = ring_ns = 0
        valid_ok = invalid_refused = acceptable = expected_miss = 0
        for group in doc["testGroups"]:
            tests = group["tests"]
            for i in range(0, len(tests), BATCH):
                chunk = tests[i:i + BATCH]
                r = session.post(e.url("/check"), json=_group_request(alg, group, chunk), timeout=60)
                assert r.status_code == 200, r.text[:500]
                out = r.json()
                if out["spki"] != group["publicKeyDer"]:
                    spki_mismatches.append(f"{file}: {out['spki'][:40]}... != {group['publicKeyDer'][:40]}...")
                host_calls += out["host_calls"]
                host_ns += out["host_ns"]
                ring_ns += out["ring_ns"]
                for c, res in zip(chunk, out["results"]):
                    assert res["id"] == c["tcId"]
                    n += 1
                    if res["host"] is None:
                        host_errors.append(f"{file} tc {c['tcId']} ({c['comment']})")
                    elif res["host"] != res["ring"]:
                        disagreements.append(f"{file} tc {c['tcId']} ({c['comment']}; expected {c['result']}): "
                                             f"host={res['host']} ring={res['ring']}")
                    verdict = res["ring"]
                    if c["result"] == "valid":
                        valid_ok += verdict
                        expected_miss += not verdict
                    elif c["result"] == "invalid":
                        invalid_refused += not verdict
                        expected_miss += verdict
                    else:
                        acceptable += 1
        unexpected += expected_miss
        rows.append(f"WYCHEPROOF-ENVOY {file:<42} {alg} cases={n:<4} valid_ok={valid_ok:<4} "
                    f"invalid_refused={invalid_refused:<4} acceptable={acceptable} unexpected={expected_miss} "
                    f"host_calls={host_calls:<4} µs/verify host={host_ns / 1000 / max(host_calls, 1):.1f} "
                    f"ring={ring_ns / 1000 / max(n, 1):.1f}")
    elapsed = time.monotonic() - started
    total = sum(int(r.split("cases=")[1].split()[0]) for r in rows)
    print("\n".join(rows))
    print(f"WYCHEPROOF-ENVOY TOTAL cases={total} disagreements={len(disagreements)} "
          f"host_errors={len(host_errors)} spki_mismatches={len(spki_mismatches)} seconds={elapsed:.1f}")
    for d in disagreements + host_errors + spki_mismatches:
        print(f"  {d}")
    assert total > 3000
    assert spki_mismatches == [], "our SubjectPublicKeyInfo differs from Wycheproof's publicKeyDer"
    assert host_errors == [], "verify_signature failed as a call"
    assert disagreements == [], "BoringSSL (through Envoy) and ring disagree"
    assert unexpected == 0, "a valid vector refused or an invalid one accepted"
