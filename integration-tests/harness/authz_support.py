"""Helpers for the authz integration tests: the filter block, native jwt_authn, the peer
filter-state block, HCM tweaks, and test-time mTLS certificates with SPIFFE URI SANs (Python
`cryptography`). The Istio -> Envoy rbac translation lives in `istio_rbac.py`."""

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


def native_jwt_authn(jwks: dict, issuer: str | None, payload_key: str = "jwt_payload",
                     forward: bool = False) -> dict:
    """Envoy jwt_authn: verify when a token is present, put the payload in dynamic metadata,
    let requests without a (valid) token through so authorization decides. `issuer=None`
    leaves `iss` unchecked, so tokens of any issuer verify against `jwks`."""
    provider = {"local_jwks": {"inline_string": json.dumps(jwks)},
                "payload_in_metadata": payload_key, "forward": forward}
    if issuer is not None:
        provider["issuer"] = issuer
    return {"name": JWT_AUTHN, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"p": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"allow_missing_or_failed": {}}}]}}


PEER_STATE_KEY = "meshward.peer"


def hcm(envoy: Envoy) -> dict:
    """The HttpConnectionManager typed_config of a harness-built Envoy (mutable)."""
    return envoy.config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def log_decision(envoy: Envoy) -> None:
    """Add the authz decision (filter state) to the JSON access log."""
    for log in hcm(envoy).get("access_log", []):
        log["typed_config"]["log_format"]["json_format"]["authz"] = \
            "%FILTER_STATE(wasm.meshward.authz.decision:PLAIN)%"


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
