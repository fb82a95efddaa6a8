"""Helpers for the authz integration tests: the filter block, native jwt_authn/rbac blocks,
the Istio->Envoy rbac translation used by the differential test, HCM tweaks, and test-time
mTLS certificates with SPIFFE URI SANs (Python `cryptography`)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from pathlib import Path

from .envoy import Envoy, wasm_filter

AUTHZ_WASM = "dist/authz.wasm"
JWT_AUTHN = "envoy.filters.http.jwt_authn"


def authz_filter(config: dict | str) -> dict:
    return wasm_filter(config, wasm=AUTHZ_WASM, name="meshward.authz", root_id="authz",
                       vm_id="meshward_authz")


def native_jwt_authn(jwks: dict, issuer: str, payload_key: str = "jwt_payload") -> dict:
    """Envoy jwt_authn: verify when a token is present, put the payload in dynamic metadata,
    let requests without a (valid) token through so authorization decides."""
    return {"name": JWT_AUTHN, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"p": {"issuer": issuer, "local_jwks": {"inline_string": json.dumps(jwks)},
                            "payload_in_metadata": payload_key, "forward": False}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"allow_missing_or_failed": {}}}]}}


def hcm(envoy: Envoy) -> dict:
    """The HttpConnectionManager typed_config of a harness-built Envoy (mutable)."""
    return envoy.config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def log_decision(envoy: Envoy) -> None:
    """Add the authz decision (filter state) to the JSON access log."""
    for log in hcm(envoy).get("access_log", []):
        log["typed_config"]["log_format"]["json_format"]["authz"] = \
            "%FILTER_STATE(wasm.meshward.authz.decision:PLAIN)%"


# ------------------------------------------------------------------ Istio -> Envoy rbac
def _string_match(v: str) -> dict:
    if v == "*":
        return {"safe_regex": {"regex": ".+"}}
    if v.endswith("*"):
        return {"prefix": v[:-1]}
    if v.startswith("*"):
        return {"suffix": v[1:]}
    return {"exact": v}


def _or_rules(items: list[dict]) -> dict:
    return items[0] if len(items) == 1 else {"or_rules": {"rules": items}}


def _or_ids(items: list[dict]) -> dict:
    return items[0] if len(items) == 1 else {"or_ids": {"ids": items}}


def _cidr(c: str) -> dict:
    net = ipaddress.ip_network(c, strict=False)
    return {"address_prefix": str(net.network_address), "prefix_len": net.prefixlen}


def _when_id(key: str, values: list[str]) -> dict:
    if key.startswith("request.headers["):
        name = key[len("request.headers["):-1]
        return _or_ids([{"header": {"name": name, "present_match": True}} if v == "*" else
                        {"header": {"name": name, "string_match": _string_match(v)}} for v in values])
    if key.startswith("request.auth.claims["):
        path = [p for p in key[len("request.auth.claims["):-1].split("][")]
        ids = []
        for v in values:
            sm = _string_match(v)
            base = {"filter": JWT_AUTHN, "path": [{"key": "jwt_payload"}] + [{"key": p} for p in path]}
            ids.append({"metadata": {**base, "value": {"string_match": sm}}})
            ids.append({"metadata": {**base, "value": {"list_match": {"one_of": {"string_match": sm}}}}})
        return _or_ids(ids)
    if key == "remote.ip":
        return _or_ids([{"remote_ip": _cidr(v)} for v in values])
    raise ValueError(f"no native translation for {key}")


def _request_principal(v: str) -> dict:
    """`iss/sub` (exact) or `*` (any authenticated token) as jwt_authn metadata matchers."""
    def md(key: str, value: dict) -> dict:
        return {"metadata": {"filter": JWT_AUTHN, "path": [{"key": "jwt_payload"}, {"key": key}], "value": value}}
    if v == "*":
        return {"and_ids": {"ids": [md("iss", {"present_match": True}), md("sub", {"present_match": True})]}}
    if "*" in v:
        raise ValueError(f"no native translation for requestPrincipals {v}")
    iss, sub = v.rsplit("/", 1)
    return {"and_ids": {"ids": [md("iss", {"string_match": {"exact": iss}}),
                                md("sub", {"string_match": {"exact": sub}})]}}


def rule_to_native(rule: dict) -> dict:
    """One Istio rule -> one Envoy rbac Policy (what Istio's translator does for this subset)."""
    perms = []
    for t in rule.get("to", []):
        op = t["operation"]
        rules = []
        if "methods" in op:
            rules.append(_or_rules([{"header": {"name": ":method", "string_match": {"exact": m}}} for m in op["methods"]]))
        if "notMethods" in op:
            rules.append({"not_rule": _or_rules([{"header": {"name": ":method", "string_match": {"exact": m}}}
                                                 for m in op["notMethods"]])})
        if "paths" in op:
            rules.append(_or_rules([{"url_path": {"path": _string_match(p)}} for p in op["paths"]]))
        if "notPaths" in op:
            rules.append({"not_rule": _or_rules([{"url_path": {"path": _string_match(p)}} for p in op["notPaths"]])})
        perms.append({"and_rules": {"rules": rules}} if rules else {"any": True})
    if not perms:
        perms = [{"any": True}]
    when_ids = []
    for w in rule.get("when", []):
        if "values" in w:
            when_ids.append(_when_id(w["key"], w["values"]))
        if "notValues" in w:
            when_ids.append({"not_id": _when_id(w["key"], w["notValues"])})
    principals = []
    for f in rule.get("from", []) or [{"source": {}}]:
        s = f["source"]
        ids = list(when_ids)
        if "remoteIpBlocks" in s:
            ids.append(_or_ids([{"remote_ip": _cidr(c)} for c in s["remoteIpBlocks"]]))
        if "notRemoteIpBlocks" in s:
            ids.append({"not_id": _or_ids([{"remote_ip": _cidr(c)} for c in s["notRemoteIpBlocks"]])})
        if "requestPrincipals" in s:
            ids.append(_or_ids([_request_principal(v) for v in s["requestPrincipals"]]))
        if "notRequestPrincipals" in s:
            ids.append({"not_id": _or_ids([_request_principal(v) for v in s["notRequestPrincipals"]])})
        principals.append({"and_ids": {"ids": ids}} if ids else {"any": True})
    return {"permissions": perms, "principals": principals}


def native_rbac_filters(policies: list[dict]) -> list[dict]:
    """DENY policies in one rbac filter, ALLOW in a second (Istio's layout). A policy with no
    rules matches nothing, so it adds no Envoy policy (but an ALLOW one still forces the
    ALLOW filter, which then denies by default)."""
    out = []
    for action in ("DENY", "ALLOW"):
        chosen = [p for p in policies if p.get("action", "ALLOW") == action]
        if not chosen:
            continue
        envoy_policies = {}
        for p in chosen:
            for i, r in enumerate(p.get("rules", [])):
                envoy_policies[f"{p['name']}-{i}"] = rule_to_native(r)
        out.append({"name": "envoy.filters.http.rbac", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": action, "policies": envoy_policies}}})
    return out


# ------------------------------------------------------------------ mTLS
def _name(cn: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(dirpath: Path, clients: dict[str, str]) -> dict[str, Path]:
    """A CA, a server cert for 127.0.0.1/localhost, and one client cert per entry of
    `clients` (name -> SPIFFE ID as URI SAN). Returns paths: ca, server_cert, server_key,
    <name>_cert, <name>_key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    dirpath.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("meshward test CA")).issuer_name(_name("meshward test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    out: dict[str, Path] = {}

    def write(name: str, cert, key) -> None:
        cp, kp = dirpath / f"{name}.crt", dirpath / f"{name}.key"
        cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        out[f"{name}_cert"], out[f"{name}_key"] = cp, kp

    def leaf(cn: str, sans: list, server: bool):
        key = ec.generate_private_key(ec.SECP256R1())
        eku = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
        cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        return cert, key

    (dirpath / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out["ca"] = dirpath / "ca.crt"
    write("server", *leaf("localhost", [x509.DNSName("localhost"),
                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], True))
    for name, spiffe in clients.items():
        write(name, *leaf(name, [x509.UniformResourceIdentifier(spiffe)], False))
    return out


def require_client_certs(envoy: Envoy, pki: dict[str, Path]) -> None:
    """Terminate TLS on the listener and require a client certificate signed by the test CA."""
    chain = envoy.config["static_resources"]["listeners"][0]["filter_chains"][0]
    chain["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": {
                "tls_certificates": [{"certificate_chain": {"filename": str(pki["server_cert"])},
                                      "private_key": {"filename": str(pki["server_key"])}}],
                "validation_context": {"trusted_ca": {"filename": str(pki["ca"])}},
            },
        },
    }
