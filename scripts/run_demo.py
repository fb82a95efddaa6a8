#!/usr/bin/env python3
"""`make run`: a local demo of the meshward suite (jwt-auth -> authz -> rate-limit in one module).

Starts (1) an echo upstream that answers with the request headers it received, as JSON, and
(2) Envoy with dist/meshward.wasm (or, with --modules standalone, dist/{jwt-auth,authz,rate-limit}.wasm
with the same sections) in front of it, configured from envoy-configs/demo.yaml with
a dev signing key generated now into .run/ (its public JWKS is inlined into the config).
Prints a ready dev token and curl lines for allow (200) and deny (401, 403, 429) cases.
Ctrl-C stops everything it started.

  --check   non-interactive: start everything on free ports, make the requests, assert
            200 / 401 / 401 / 403 / 200 / 403 (object-level) / 429 (rate limit), stop, exit 0 or 1.
            Used by the integration tests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "integration-tests"))

import jwt  # noqa: E402
import requests  # noqa: E402
import yaml  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from harness.echo import EchoUpstream  # noqa: E402
from harness.envoy import envoy_bin, standalone_filters  # noqa: E402
from harness.ports import free_port  # noqa: E402
from harness.procs import Proc, wait_until  # noqa: E402

ISSUER = "https://dev.meshward.local"
AUDIENCE = "meshward-demo"
KID = "dev-es256"


def make_key(run_dir: Path):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path = run_dir / "dev-key.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    pub = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    pub.update({"kid": KID, "alg": "ES256", "use": "sig"})
    return key, {"keys": [pub]}


def sections(f: dict) -> tuple[dict, dict] | None:
    """(configuration document, {section: config}) of a meshward Wasm filter: the suite's
    sections, or a standalone module's config under its section name."""
    conf = f.get("typed_config", {}).get("config", {})
    if f.get("name") != "envoy.filters.http.wasm" or "configuration" not in conf:
        return None
    doc = json.loads(conf["configuration"]["value"])
    name = conf.get("name", "")
    if name == "meshward":
        return doc, doc
    section = name.removeprefix("meshward.")
    return doc, {section: doc}


def _set_value(f: dict, doc: dict) -> None:
    f["typed_config"]["config"]["configuration"]["value"] = json.dumps(doc)


def use_rate_limit_service(cfg: dict, mode: str, rls_port: int) -> bool:
    """Put the demo's rate-limit stage in `mode`; for global/hybrid add the `ratelimit`
    cluster. Returns True when Redis and the rate-limit service must run."""
    listener = cfg["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    needs_service = False
    for f in hcm["http_filters"]:
        found = sections(f)
        if not found or "rate_limit" not in found[1]:
            continue
        doc, by_section = found
        value = by_section["rate_limit"]
        if mode != "local":
            value["mode"] = mode
            value["domain"] = "meshward-demo"
            value["rate_limit_service"] = {"cluster": "ratelimit", "timeout": "0.25s"}
            for rule in value["rules"]:
                # The RLS protocol counts fixed windows aligned to the clock; an hour
                # keeps the demo's four requests inside one window.
                rule["limit"]["algorithm"] = "fixed_window"
                rule["limit"]["per"] = "hour"
        _set_value(f, doc)
        needs_service = value.get("mode", "local") in ("global", "hybrid")
    if needs_service and not any(c["name"] == "ratelimit" for c in cfg["static_resources"]["clusters"]):
        cfg["static_resources"]["clusters"].append({
            "name": "ratelimit", "type": "STATIC", "connect_timeout": "0.25s",
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}}}},
            "load_assignment": {"cluster_name": "ratelimit", "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": rls_port}}}}]}]}})
    return needs_service


def render_config(jwks: dict, port: int, admin_port: int, upstream_port: int, modules: str = "suite") -> dict:
    cfg = yaml.safe_load((ROOT / "envoy-configs" / "demo.yaml").read_text())
    cfg["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listener = cfg["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = port
    for cluster in cfg["static_resources"]["clusters"]:
        for ep in cluster["load_assignment"]["endpoints"]:
            for lb in ep["lb_endpoints"]:
                lb["endpoint"]["address"]["socket_address"]["port_value"] = upstream_port
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    if modules == "standalone":
        hcm["http_filters"] = standalone_filters(hcm["http_filters"])
    for f in hcm["http_filters"]:
        found = sections(f)
        if not found or "jwt_auth" not in found[1]:
            continue
        doc, by_section = found
        for provider in by_section["jwt_auth"]["providers"].values():
            provider["local_jwks"] = {"inline_string": json.dumps(jwks)}
        _set_value(f, doc)
    return cfg


def mint(key, sub="dev-user", scope="read write", ttl=3600) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "scope": scope, "iat": now,
                       "exp": now + ttl}, key, algorithm="ES256", headers={"kid": KID})


def tamper(token: str) -> str:
    h, p, s = token.split(".")
    payload = json.loads(jwt.utils.base64url_decode(p))
    payload["sub"] = "admin"
    p2 = jwt.utils.base64url_encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    return f"{h}.{p2}.{s}"


def raw_status(base: str, path: str, tok: str | None) -> int:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        conn.putrequest("GET", path)
        if tok:
            conn.putheader("authorization", f"Bearer {tok}")
        conn.endheaders()
        return conn.getresponse().status
    except OSError:
        return -1
    finally:
        conn.close()


def run_checks(base: str, token: str, tampered: str, admin_token: str) -> list[str]:
    failures = []

    def expect(label, status, path="/hello", tok=None):
        headers = {"authorization": f"Bearer {tok}"} if tok else {}
        try:
            r = requests.get(base + path, headers=headers, timeout=15)
        except requests.RequestException as e:
            failures.append(f"{label}: request failed: {e}")
            return None
        ok = r.status_code == status
        print(f"  [{'ok' if ok else 'FAIL'}] {label}: {r.status_code} (want {status})", flush=True)
        if not ok:
            failures.append(f"{label}: got {r.status_code} {r.text[:300]!r}")
        return r

    r = expect("valid token", 200, tok=token)
    if r is not None and r.status_code == 200:
        sub = r.json().get("headers", {}).get("x-jwt-sub")
        if sub != "dev-user":
            failures.append(f"valid token: upstream saw x-jwt-sub={sub!r}")
    expect("no token", 401)
    expect("tampered token", 401, tok=tampered)
    expect("token without admin scope on /admin", 403, path="/admin", tok=token)
    expect("admin token on /admin", 200, path="/admin", tok=admin_token)
    expect("own data (authz object-level check)", 200, path="/users/dev-user/orders", tok=token)
    r = expect("someone else's data", 403, path="/users/dev-admin/orders", tok=token)
    if r is not None and r.status_code == 403 and "reason" not in r.json():
        failures.append("authz 403 without a reason code")
    # Path tricks: sent byte for byte (requests would resolve the dots itself).
    for label, status, path, tok in [
        ("/public/../admin without a token", 401, "/public/../admin", None),
        ("//admin without the admin scope", 403, "//admin", token),
        ("someone else's data through dot segments", 403,
         "/users/dev-user/orders/../../dev-admin/orders", token),
        ("an encoded slash", 400, "/public/..%2Fadmin", None),
    ]:
        got = raw_status(base, path, tok)
        ok = got == status
        print(f"  [{'ok' if ok else 'FAIL'}] {label}: {got} (want {status})", flush=True)
        if not ok:
            failures.append(f"{label}: got {got}")
    for i in range(3):
        expect(f"rate-limited route, request {i + 1} of 3", 200, path="/limited", tok=token)
    r = expect("rate-limited route, 4th request in the window", 429, path="/limited", tok=token)
    if r is not None and r.status_code == 429 and "retry-after" not in r.headers:
        failures.append("429 without Retry-After")
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="start, assert 200/401, stop")
    ap.add_argument("--port", type=int, help="listener port (default 10000; free port with --check)")
    ap.add_argument("--admin-port", type=int, help="admin port (default 9901; free port with --check)")
    ap.add_argument("--upstream-port", type=int, help="echo upstream port (default 18080; free with --check)")
    ap.add_argument("--run-dir", type=Path, help="where keys/config/logs go (default .run/)")
    ap.add_argument("--ready-timeout", type=float, default=30.0)
    ap.add_argument("--rate-limit-mode", choices=["local", "global", "hybrid"],
                    default=os.environ.get("RATE_LIMIT_MODE", "local"),
                    help="rate-limit mode for the demo; global/hybrid also start Redis and the "
                         "rate-limit service (default: local, or $RATE_LIMIT_MODE)")
    ap.add_argument("--modules", choices=["suite", "standalone"],
                    default=os.environ.get("MODULES") or "suite",
                    help="the suite module (dist/meshward.wasm, default) or the three standalone "
                         "modules with the same sections ($MODULES)")
    args = ap.parse_args()

    for name in (("jwt-auth", "authz", "rate-limit") if args.modules == "standalone" else ("meshward",)):
        wasm = ROOT / "dist" / f"{name}.wasm"
        if not wasm.exists():
            print(f"{wasm} missing: run `make build`", file=sys.stderr)
            return 2
    port = args.port or (free_port() if args.check else 10000)
    admin_port = args.admin_port or (free_port() if args.check else 9901)
    upstream_port = args.upstream_port or (free_port() if args.check else 18080)

    (ROOT / ".run").mkdir(exist_ok=True)
    if args.run_dir:
        run_dir = args.run_dir.resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
    elif args.check:
        run_dir = Path(tempfile.mkdtemp(prefix="check-", dir=ROOT / ".run"))
    else:
        run_dir = ROOT / ".run"
    key, jwks = make_key(run_dir)
    (run_dir / "jwks.json").write_text(json.dumps(jwks, indent=1))
    cfg_path = run_dir / "demo.yaml"
    cfg = render_config(jwks, port, admin_port, upstream_port, args.modules)
    rls_port = free_port() if args.check else 8081
    needs_service = use_rate_limit_service(cfg, args.rate_limit_mode, rls_port)
    cfg_path.write_text(json.dumps(cfg, indent=1))

    services = []
    if needs_service:
        from harness.rls_proc import start_stack

        if not (ROOT / "dist" / "ratelimit-service").exists():
            print("dist/ratelimit-service missing: run `make build`", file=sys.stderr)
            return 2
        services = list(start_stack(run_dir, rls_port=rls_port))
    echo = EchoUpstream(port=upstream_port).start()
    envoy = Proc("envoy", [envoy_bin(), "-c", cfg_path, "--concurrency", "2", "--use-dynamic-base-id",
                           "-l", "info", "--drain-time-s", "1", "--parent-shutdown-time-s", "2"],
                 run_dir / "envoy.log", cwd=ROOT)

    stopping = {"flag": False}

    def stop_all(*_):
        if stopping["flag"]:
            return
        stopping["flag"] = True
        envoy.stop()
        echo.stop()
        for svc in services:
            svc.stop()

    def on_signal(signum, _frame):
        print(f"\nstopping (signal {signum})...", flush=True)
        stop_all()
        sys.exit(0 if not args.check else 1)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    try:
        envoy.start()

        def ready():
            if not envoy.alive():
                return "dead"
            try:
                return requests.get(f"http://127.0.0.1:{admin_port}/ready", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        if wait_until(ready, args.ready_timeout, 0.1) is not True:
            print(f"Envoy did not become ready; last log lines ({envoy.log_path}):\n{envoy.tail(15)}",
                  file=sys.stderr)
            return 1

        token = mint(key)
        admin_token = mint(key, sub="dev-admin", scope="read admin")
        tampered = tamper(token)
        (run_dir / "dev-token.txt").write_text(token + "\n")
        base = f"http://localhost:{port}"
        rel = os.path.relpath(run_dir, Path.cwd())
        print(f"""
meshward demo: jwt-auth -> authz -> rate-limit ({"one module, dist/meshward.wasm" if args.modules == "suite" else "three standalone modules"})
  Envoy      {base}  (admin http://localhost:{admin_port})   log: {rel}/envoy.log
  upstream   echo on 127.0.0.1:{upstream_port} (answers with the request headers it got)
  rate limit {args.rate_limit_mode} mode{f" (Redis + rate-limit service on 127.0.0.1:{rls_port})" if needs_service else ""}
  dev key    {rel}/dev-key.pem (ES256, kid {KID}); issuer {ISSUER}, audience {AUDIENCE}

dev token (1h, scope "read write", also in {rel}/dev-token.txt):
  TOKEN={token}

allow (200, upstream sees x-jwt-sub / x-jwt-payload, not the token):
  curl -s -H "Authorization: Bearer $TOKEN" {base}/hello | jq .
  curl -s "{base}/hello?access_token=$TOKEN" | jq .
deny (401, problem+json, WWW-Authenticate):
  curl -si {base}/hello                                          # no token -> token_missing
  curl -si -H "Authorization: Bearer {tampered}" {base}/hello    # tampered -> bad_signature
  curl -si -H "Authorization: Bearer $TOKEN" {base}/admin        # 403 insufficient_scope
authz (object-level: a user reads only their own data):
  curl -s  -H "Authorization: Bearer $TOKEN" {base}/users/dev-user/orders | jq .   # 200
  curl -si -H "Authorization: Bearer $TOKEN" {base}/users/dev-admin/orders        # 403, policy + reason
paths are matched in normal form, so tricks land on the rule they name (or get 400):
  curl -si --path-as-is {base}/public/../admin                                     # 401, it is /admin
  curl -si --path-as-is -H "Authorization: Bearer $TOKEN" {base}/users/dev-user/orders/../../dev-admin/orders  # 403
  curl -si --path-as-is {base}/public/..%2Fadmin                                   # 400 ambiguous_path
rate-limit (3 requests per {"minute" if args.rate_limit_mode == "local" else "hour"} per user on /limited; the 4th gets 429 with Retry-After):
  for i in 1 2 3 4; do curl -s -o /dev/null -w "%{{http_code}}\\n" -H "Authorization: Bearer $TOKEN" {base}/limited; done
public (no token needed; spoofed x-jwt-* headers are stripped):
  curl -s -H "x-jwt-sub: spoofed" {base}/public | jq .headers
stats:
  curl -s http://localhost:{admin_port}/stats | grep meshward
  curl -s http://localhost:{admin_port}/stats/prometheus | grep meshward
""", flush=True)

        if args.check:
            failures = run_checks(f"http://127.0.0.1:{port}", token, tampered, admin_token)
            if not envoy.alive():
                failures.append("envoy exited")
            if failures:
                print("check FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
                print(f"envoy log tail:\n{envoy.tail(15)}", file=sys.stderr)
                return 1
            print("check passed", flush=True)
            import shutil

            if not args.run_dir:
                shutil.rmtree(run_dir, ignore_errors=True)
            return 0

        print("Ctrl-C to stop.", flush=True)
        while envoy.alive():
            time.sleep(0.5)
        print(f"Envoy exited (rc={envoy.returncode()}); log tail:\n{envoy.tail(20)}", file=sys.stderr)
        return 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
