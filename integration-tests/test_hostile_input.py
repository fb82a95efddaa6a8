"""Hostile input through a real Envoy running jwt-auth -> authz -> rate-limit (issue 13,
"Hostile input"): oversized headers and tokens at and over Envoy's and the filter's limits,
duplicate `Authorization` headers, header-case tricks, tokens in several places at once, huge
JSON nesting inside validly signed tokens. Many distinct identities and keys, with Envoy's memory
measured, are the soak's `valid_new` traffic (test_soak.py).

Requests go out through http.client (`raw()`), so header names, their case, their repetition
and the path bytes are exactly the ones written here (`requests` would merge or re-quote them).

The rule for several tokens is Envoy's `jwt_authn`'s (authenticator.cc, `doneWithStatus`: "If a
request has multiple tokens, all of them must be valid. Otherwise ... the backend may mistakenly
use the bad token as the good one that passed the verification"): a request carrying two
tokens must never pass with only one of them verified and the other one sent upstream.
"""

from __future__ import annotations

import json

import pytest

from harness import tokens as tk
from harness.authz_support import authz_filter
from harness.configs import LOCAL_AUD, LOCAL_ISS, local_jwt_config
from harness.echo import EchoUpstream
from harness.envoy import JWT_RE, Envoy, jwt_auth_filter, static_cluster
from harness.raw_http import raw_request
from harness.rls_proc import rate_limit_filter

HEADERS_KB = 96          # harness.envoy.bootstrap(max_request_headers_kb=96)
MAX_TOKEN = 8192         # jwt-auth `max_token_bytes` default (docs/jwt-auth.md)

AUTHZ = {"policies": [
    # a DENY policy is evaluated on every request, so authz reads `x-tenant` every time
    {"name": "no-evil-tenant", "action": "DENY",
     "rules": [{"when": [{"key": "request.headers[x-tenant]", "values": ["evil"]}]}]},
    {"name": "public", "rules": [{"to": [{"operation": {"paths": ["/open", "/open/*", "/public/*"]}}]}]},
    {"name": "signed-in", "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}],
                                     "to": [{"operation": {"notPaths": ["/forbidden/*"]}}]}]},
]}
RATE = {"max_keys": 2000, "on_key_space_full": "allow", "rules": [
    {"name": "limited", "match": {"prefix": "/limited"}, "key": [{"identity": "sub"}],
     "limit": {"requests": 2, "per": "hour", "algorithm": "fixed_window"}},
    {"name": "open-limited", "match": {"prefix": "/open/limited"}, "key": [{"identity": "sub"}],
     "limit": {"requests": 2, "per": "hour", "algorithm": "fixed_window"}},
    {"name": "per-sub", "match": {"prefix": "/flood"}, "key": [{"identity": "sub"}],
     "limit": {"requests": 5, "per": "hour"}},
    {"name": "per-tenant", "match": {"prefix": "/tenant"}, "key": [{"header": "x-tenant"}],
     "limit": {"requests": 2, "per": "hour"}},
]}


def _chain_filters(keys, **jwt_top):
    return [jwt_auth_filter(local_jwt_config(keys, **jwt_top)), authz_filter(AUTHZ), rate_limit_filter(RATE)]


def _serve(workdir, keys, name, max_request_headers_kb=None, **jwt_top):
    """The chain in front of an echo upstream, for a module-scoped fixture to yield from."""
    echo = EchoUpstream().start()
    e = Envoy(workdir, _chain_filters(keys, **jwt_top), [static_cluster("upstream", echo.port)], name=name)
    if max_request_headers_kb:
        e.config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
            "max_request_headers_kb"] = max_request_headers_kb
    try:
        e.start()
    except Exception:
        echo.stop()
        raise
    yield e, echo
    problems = e.health_problems()
    e.stop()
    echo.stop()
    assert not problems, problems


@pytest.fixture(scope="module")
def chain(tmp_path_factory, keys, jwt_wasm):
    yield from _serve(tmp_path_factory.mktemp("hostile"), keys, "envoy-hostile")


def tok(keys, sub="alice", key=None, **extra) -> str:
    return tk.mint(key or keys.ed, tk.claims(LOCAL_ISS, LOCAL_AUD, sub=sub, **extra))


def raw(envoy, path="/api/x", headers=(), timeout=15.0):
    """One request, headers as a list of (name, value) sent verbatim and in order.
    Returns (status, headers dict lower-cased, body bytes)."""
    return raw_request(envoy.port, path, headers, timeout=timeout)


def reason(body: bytes) -> str | None:
    try:
        return json.loads(body).get("reason")
    except (ValueError, AttributeError):
        return None


def upstream_since(echo, n):
    return echo.snapshot()[n:]


def carries_token(record: dict) -> list[str]:
    """Where a request seen by the upstream still carries token text."""
    where = []
    if JWT_RE.search(record["path"]) or "access_token" in record["path"].lower() \
            or "access%5ftoken" in record["path"].lower():
        where.append(f"path {record['path'][:120]}")
    for k, v in record["headers"].items():
        if k in ("x-jwt-payload",):
            continue
        if k == "authorization" or JWT_RE.search(v):
            where.append(f"header {k}")
    return where


def _sized_token(keys, total: int, sub="sized") -> str:
    """A validly signed Ed25519 token of exactly `total` bytes (padding claim adjusted)."""
    # base64url without padding cannot have every length: vary the header segment too
    c = tk.claims(LOCAL_ISS, LOCAL_AUD, sub=sub)
    for hpad in range(4):
        h = {"alg": "EdDSA", "typ": "JWT", "kid": keys.ed.kid, "x": "h" * hpad}
        pad = max(0, (total - 300) * 3 // 4)
        for _ in range(12):
            t = tk.raw(h, dict(c, pad="p" * pad), key=keys.ed)
            if len(t) == total:
                return t
            step = (total - len(t)) * 3 // 4
            pad += step if step else (1 if len(t) < total else -1)
    raise AssertionError(f"could not size a token to {total}")


# ---------------------------------------------------------------------------- sizes
def test_header_block_at_envoys_limit(chain, keys):
    """Envoy's own limit (max_request_headers_kb 96): the largest header block Envoy accepts
    reaches the filters (401 token_missing without a token), one byte more is 431 from Envoy
    and never reaches the filters or the upstream."""
    e, echo = chain

    def status(n: int) -> int:
        return raw(e, "/api/x", [("x-filler", "f" * n)])[0]

    limit = HEADERS_KB * 1024
    lo, hi = limit - 4096, limit + 16           # lo is accepted, hi refused
    assert status(lo) == 401 and status(hi) == 431, (status(lo), status(hi))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        s = status(mid)
        assert s in (401, 431), s
        lo, hi = (mid, hi) if s == 401 else (lo, mid)
    print(f"largest accepted x-filler value: {lo} bytes (limit {limit}; the rest is the other headers)")
    # "at": the boundary sits at the limit minus the few other headers this request carries
    assert limit - 200 <= lo < limit, lo
    n = len(echo.snapshot())
    st, hdrs, body = raw(e, "/api/x", [("x-filler", "f" * lo)])
    assert (st, reason(body)) == (401, "token_missing")
    st, hdrs, body = raw(e, "/api/x", [("x-filler", "f" * (lo + 1))])
    assert st == 431
    assert upstream_since(echo, n) == []
    # with a valid token, a block just under the limit passes the whole chain (the filler is split
    # in lines under 64 KiB: the Python echo upstream refuses longer lines with its own 431)
    t = tok(keys)
    fill = lo - len(t) - 60
    st, _, _ = raw(e, "/api/x", [("authorization", f"Bearer {t}"), ("x-filler", "f" * (fill // 2)),
                                 ("x-fillet", "f" * (fill - fill // 2))])
    assert st == 200


def test_header_count_limit(chain, keys):
    """Envoy's max_request_headers_count (default 100): 90 extra headers pass, 101 are 431."""
    e, _ = chain
    t = tok(keys)
    ok = [("authorization", f"Bearer {t}")] + [(f"x-h{i}", "v") for i in range(90)]
    assert raw(e, "/api/x", ok)[0] == 200
    assert raw(e, "/api/x", [(f"x-h{i}", "v") for i in range(101)])[0] == 431


@pytest.mark.parametrize("size,expect", [(MAX_TOKEN - 1, 200), (MAX_TOKEN, 200), (MAX_TOKEN + 1, 401)])
def test_token_at_max_token_bytes(chain, keys, size, expect):
    """Validly signed tokens just under, at and over max_token_bytes (8192): over is 401
    token_malformed before any parsing, whatever the signature; in the header and the query."""
    e, echo = chain
    t = _sized_token(keys, size)
    assert len(t) == size
    st, hdrs, body = raw(e, "/api/x", [("authorization", f"Bearer {t}")])
    assert st == expect, (size, st, body[:200])
    st2, _, body2 = raw(e, f"/api/x?access_token={t}")
    assert st2 == expect, (size, st2, body2[:200])
    if expect == 401:
        assert reason(body) == reason(body2) == "token_malformed"
        assert hdrs.get("www-authenticate", "").startswith('Bearer realm="meshward", error="invalid_token"')


@pytest.mark.parametrize("kb,expect", [(64, 401), (95, 401), (97, 431), (200, 431)])
def test_huge_tokens_against_both_limits(chain, keys, kb, expect):
    """A token far over max_token_bytes but under Envoy's header limit is the filter's 401
    token_malformed; over Envoy's limit it is Envoy's 431. Neither reaches the upstream."""
    e, echo = chain
    n = len(echo.snapshot())
    t = _sized_token(keys, kb * 1024 - 200) if kb < 96 else "eyJ" + "A" * (kb * 1024)
    st, _, body = raw(e, "/api/x", [("authorization", f"Bearer {t}")])
    assert st == expect, (kb, st)
    if expect == 401:
        assert reason(body) == "token_malformed"
    assert upstream_since(echo, n) == []


# ---------------------------------------------------------------------------- duplicates
def _dups(keys):
    good, other = tok(keys, sub="alice"), tok(keys, sub="mallory")
    bad = tk.raw({"alg": "EdDSA", "kid": "ed-1"}, tk.claims(LOCAL_ISS, LOCAL_AUD, sub="mallory"), b"x" * 64)
    return {
        "valid+valid": [("Authorization", f"Bearer {good}"), ("Authorization", f"Bearer {other}")],
        "valid+forged": [("Authorization", f"Bearer {good}"), ("Authorization", f"Bearer {bad}")],
        "forged+valid": [("Authorization", f"Bearer {bad}"), ("Authorization", f"Bearer {good}")],
        "valid+basic": [("Authorization", f"Bearer {good}"), ("Authorization", "Basic bWFsbG9yeTpwdw==")],
        "basic+valid": [("Authorization", "Basic bWFsbG9yeTpwdw=="), ("Authorization", f"Bearer {good}")],
        "valid+empty": [("Authorization", f"Bearer {good}"), ("Authorization", "")],
        "valid+valid-mixedcase": [("authorization", f"Bearer {good}"), ("AUTHORIZATION", f"Bearer {other}")],
    }


@pytest.mark.parametrize("case", ["valid+valid", "valid+forged", "forged+valid", "valid+basic",
                                  "basic+valid", "valid+empty", "valid+valid-mixedcase"])
def test_duplicate_authorization_headers(chain, keys, case):
    """Two Authorization headers: never one token verified and the other sent upstream. Envoy's
    HTTP/1 codec joins repeated `authorization` lines into one value ("Bearer A,Bearer B"),
    which is not a token: 401 token_malformed. Whatever happens, no token text, verified or
    not, reaches the upstream, and a forged token never yields 200."""
    e, echo = chain
    n = len(echo.snapshot())
    st, _, body = raw(e, "/api/dup", _dups(keys)[case])
    seen = upstream_since(echo, n)
    for rec in seen:
        assert carries_token(rec) == [], (case, st, carries_token(rec))
    if "forged" in case or "valid+valid" in case:
        assert st == 401, (case, st, body[:200])
        assert reason(body) == "token_malformed", (case, body[:200])
    print(f"{case}: {st} {reason(body)}")


# ---------------------------------------------------------------------------- case tricks
@pytest.mark.parametrize("name,value,expect", [
    ("AUTHORIZATION", "Bearer {t}", 200),
    ("aUtHoRiZaTiOn", "Bearer {t}", 200),
    ("Authorization", "bearer {t}", 200),
    ("Authorization", "BEARER {t}", 200),
    ("Authorization", "bEaReR {t}", 200),
    ("Authorization", "Bearer   {t}  ", 200),        # extra whitespace is trimmed
    ("Authorization", "Bearer\t{t}", 401),           # the prefix is "Bearer " (a space)
    ("Authorization", "Bearer{t}", 401),
    ("Authorization", "Basic {t}", 401),
    ("Authorization", "Token {t}", 401),
    ("Authorization", " Bearer {t}", 200),           # leading OWS is stripped by Envoy's codec
    ("X-Authorization", "Bearer {t}", 401),
])
def test_header_case_tricks(chain, keys, name, value, expect):
    """Header names are case-insensitive (Envoy lower-cases them); the auth scheme is too
    (RFC 9110 §11.1; docs: the prefix is matched case-insensitively). A scheme that is not
    `Bearer ` means no token (401 token_missing), never a pass. A verified token never reaches
    the upstream, whatever spelling carried it."""
    e, echo = chain
    t = tok(keys)
    n = len(echo.snapshot())
    st, _, body = raw(e, "/api/case", [(name, value.format(t=t))])
    assert st == expect, (name, value[:12], st, body[:200])
    if expect == 401:
        assert reason(body) == "token_missing", body[:200]
    for rec in upstream_since(echo, n):
        assert carries_token(rec) == [], carries_token(rec)
        assert rec["headers"].get("x-jwt-sub") == "alice"


# ---------------------------------------------------------------------------- several places
def _places(keys):
    good, other = tok(keys, sub="alice"), tok(keys, sub="mallory")
    forged = tk.raw({"alg": "EdDSA", "kid": "ed-1"}, tk.claims(LOCAL_ISS, LOCAL_AUD, sub="mallory"), b"x" * 64)
    return good, other, forged


@pytest.mark.parametrize("case", ["header+param-forged", "header+param-valid", "header-forged+param",
                                  "two-params-valid-forged", "two-params-forged-valid",
                                  "header+encoded-param-name"])
def test_tokens_in_several_places(chain, keys, case):
    """A token in the header and another in `access_token` (or two `access_token`s, or a
    percent-encoded `access%5Ftoken` that an upstream framework decodes to `access_token`):
    the request never passes with a token that was not verified still on it. Envoy's
    jwt_authn verifies every token it extracts (all must be valid) and removes each."""
    e, echo = chain
    good, other, forged = _places(keys)
    path, headers = {
        "header+param-forged": (f"/api/p?access_token={forged}", [("authorization", f"Bearer {good}")]),
        "header+param-valid": (f"/api/p?access_token={other}", [("authorization", f"Bearer {good}")]),
        "header-forged+param": (f"/api/p?access_token={good}", [("authorization", f"Bearer {forged}")]),
        "two-params-valid-forged": (f"/api/p?access_token={good}&access_token={forged}", []),
        "two-params-forged-valid": (f"/api/p?access_token={forged}&access_token={good}", []),
        "header+encoded-param-name": (f"/api/p?access%5Ftoken={forged}", [("authorization", f"Bearer {good}")]),
    }[case]
    n = len(echo.snapshot())
    st, _, body = raw(e, path, headers)
    seen = upstream_since(echo, n)
    leaks = [w for rec in seen for w in carries_token(rec)]
    print(f"{case}: {st} {reason(body)} upstream={[r['path'][:60] for r in seen]}")
    assert leaks == [], (case, st, leaks)
    if case in ("header-forged+param", "two-params-forged-valid"):
        assert (st, reason(body)) == (401, "bad_signature"), (case, st)
    # two `access_token`s: the first is the one verified (jwt_authn: getFirstValue) and every
    # occurrence is removed, so the second never reaches the upstream; a 200 is then safe.


# ---------------------------------------------------------------------------- nesting
def _nested(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "array" else ('{"a":' * depth + "1" + "}" * depth)


def _nested_token(keys, depth: int, kind: str = "array", where: str = "payload") -> str:
    c = tk.claims(LOCAL_ISS, LOCAL_AUD, sub="deep")
    h = {"alg": "EdDSA", "typ": "JWT", "kid": "ed-1"}
    if where == "header":
        hs = tk.b64url(json.dumps(h, separators=(",", ":"))[:-1] + ',"x":' + _nested(depth, kind) + "}")
        return tk.raw(hs, c, key=keys.ed)
    body = json.dumps(c, separators=(",", ":"))[:-1] + ',"deep":' + _nested(depth, kind) + "}"
    return tk.raw(h, tk.b64url(body), key=keys.ed)


@pytest.fixture(scope="module")
def wide_chain(tmp_path_factory, keys, jwt_wasm):
    """The chain with max_token_bytes 1 MiB, so deep documents reach the JSON parser."""
    yield from _serve(tmp_path_factory.mktemp("hostile-wide"), keys, "envoy-hostile-wide",
                      max_request_headers_kb=1024, max_token_bytes=1048576)


@pytest.mark.parametrize("depth", [10_000, 100_000])
@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("where", ["payload", "header"])
def test_huge_nesting_in_a_signed_token(wide_chain, keys, depth, kind, where):
    """10,000 and 100,000 nested arrays / objects inside a validly signed token: the same
    answer every time, never a VM panic, and the VM still serves the next request on every
    worker. In the payload the claims JSON is refused (401 token_malformed: serde_json's
    recursion limit, 128). In the JOSE header the nesting sits in an unknown member, which RFC
    7515 §4 says to ignore: it is skipped without recursion (serde's IgnoredAny) and the token
    verifies (200)."""
    e, echo = wide_chain
    t = _nested_token(keys, depth, kind, where)
    answers = {(s, reason(b)) for s, _, b in (raw(e, "/api/deep", [("authorization", f"Bearer {t}")])
                                               for _ in range(4))}
    expect = {(401, "token_malformed")} if where == "payload" else {(200, None)}
    assert answers == expect, answers
    assert {raw(e, "/api/ok", [("authorization", f"Bearer {tok(keys)}")])[0] for _ in range(4)} == {200}
    assert e.health_problems() == []


@pytest.mark.parametrize("depth", [100, 120, 124, 125, 126, 127, 128, 129, 130, 200, 2000])
def test_nesting_around_the_parser_depth_limit(chain, keys, depth):
    """Depths around serde_json's recursion limit (128), within max_token_bytes: deterministic
    200 or 401 on the whole chain, never a VM panic. The claim travels twice: in the payload
    jwt-auth parses, and in the identity JSON (`{"claims": {...}}`, two levels deeper) that
    authz and rate-limit read back from filter state. A token jwt-auth accepts must be one the
    later filters can read: anything else is a 403 for an authenticated caller (authz) or a
    rate-limit rule that silently does not apply (test_deep_claim_cannot_skip_the_rate_limit)."""
    e, echo = chain
    t = _nested_token(keys, depth)
    assert len(t) <= MAX_TOKEN
    answers = [raw(e, "/api/deep", [("authorization", f"Bearer {t}")]) for _ in range(4)]
    got = {(s, reason(b)) for s, _, b in answers}
    print(f"depth {depth}: {got}")
    assert len(got) == 1, got
    (status, why), = got
    assert status in (200, 401), got
    if status == 401:
        assert why == "token_malformed"
    assert e.health_problems() == []


def test_deep_claim_cannot_skip_the_rate_limit(chain, keys):
    """A validly signed token whose claims nest just under jwt-auth's parser limit is accepted,
    and its identity is written to filter state; rate-limit must still count it under its
    `identity: sub` rule (2 per hour here). A filter that cannot read the identity drops the
    rule's key part, so the rule "does not apply" (docs/rate-limit.md) and the caller is never
    limited. The safe outcomes: jwt-auth refuses the token (401 each time), or at most 2 pass."""
    e, echo = chain
    results = {}
    for depth in (100, 125, 126):
        c = tk.claims(LOCAL_ISS, LOCAL_AUD, sub=f"deep-{depth}")
        body = json.dumps(c, separators=(",", ":"))[:-1] + ',"deep":' + _nested(depth, "array") + "}"
        t = tk.raw({"alg": "EdDSA", "typ": "JWT", "kid": "ed-1"}, tk.b64url(body), key=keys.ed)
        results[depth] = [raw(e, "/open/limited/x", [("authorization", f"Bearer {t}")])[0] for _ in range(4)]
    print(results)
    for depth, sts in results.items():
        assert sts in ([401] * 4, [200, 200, 429, 429]), (depth, sts)


# ---------------------------------------------------------------------------- invalid UTF-8
# Bytes 0x80-0xFF are legal in an HTTP/1 header value (RFC 9110 obs-text) and Envoy passes them
# to the filters; they are not UTF-8. `\xc3\x28` is a truncated sequence, `\xe9` Latin-1.
NOT_UTF8 = b"\xff\xfe\xc3\x28 caf\xe9"


def _alive_on_every_worker(e, keys):
    good = [("authorization", f"Bearer {tok(keys)}")]
    assert {raw(e, "/api/ok", good)[0] for _ in range(8)} == {200}
    assert e.health_problems() == []


def test_invalid_utf8_in_the_token_header(chain, keys):
    """A header value that is not UTF-8 must never panic the VM (a panic fails every later
    request on that worker). As a token it is malformed: 401 on protected and optional routes."""
    e, echo = chain
    malformed, missing = (401, "token_malformed"), (401, "token_missing")
    cases = [
        (b"Bearer " + NOT_UTF8, "/api/x", malformed), (b"Bearer " + NOT_UTF8, "/open/x", malformed),
        (b"Bearer eyJ\xff.eyJ\xff.\xff", "/api/x", malformed),
        # no `Bearer` scheme: not a token at all, so the optional route lets it through
        (NOT_UTF8, "/api/x", missing), (NOT_UTF8, "/open/x", (200, None)),
    ]
    for value, path, want in cases:
        answers = {(s, reason(b)) for s, _, b in (raw(e, path, [("authorization", value)]) for _ in range(4))}
        assert answers == {want}, (value, path, answers)
    _alive_on_every_worker(e, keys)


def test_invalid_utf8_in_headers_authz_and_rate_limit_read(chain, keys):
    """`x-tenant` is read by an authz DENY condition on every request and is the rate-limit key
    on /tenant (2 per hour). Values that are not UTF-8 are read with each invalid byte as
    U+FFFD: they never equal `evil`, and are counted like any other key: 2 admitted, then 429."""
    e, echo = chain
    good = ("authorization", f"Bearer {tok(keys, sub='utf8')}")
    assert raw(e, "/api/x", [good, ("x-tenant", "evil")])[0] == 403
    assert raw(e, "/api/x", [good, ("x-tenant", b"evil\xff")])[0] == 200
    got = [raw(e, "/tenant/x", [good, ("x-tenant", NOT_UTF8)])[0] for _ in range(4)]
    assert got == [200, 200, 429, 429], got
    # another value is another key...
    got = [raw(e, "/tenant/x", [good, ("x-tenant", b"\xfe\xff")])[0] for _ in range(3)]
    assert got == [200, 200, 429], got
    # ...but values that differ only in their invalid bytes read the same (each invalid byte is
    # U+FFFD, docs/reliability.md), so they share a key: stricter, never looser
    assert raw(e, "/tenant/x", [good, ("x-tenant", b"\xff\xfe")])[0] == 429
    # elsewhere in the request: other headers, a cookie, the token's own claims header
    for name in ("x-other", "cookie", "user-agent", "x-jwt-sub"):
        assert raw(e, "/api/x", [good, (name, NOT_UTF8)])[0] == 200, name
    _alive_on_every_worker(e, keys)


def test_invalid_utf8_body_passes_untouched(chain, keys):
    """No filter parses bodies; jwt-auth holds them while it decides. A body that is not UTF-8
    reaches the upstream byte for byte with a valid token, and is refused with the request
    without one."""
    import http.client

    e, echo = chain
    body = NOT_UTF8 * 1000
    for token, want in ((tok(keys), 200), (None, 401)):
        conn = http.client.HTTPConnection("127.0.0.1", e.port, timeout=10)
        h = {"content-type": "application/octet-stream"}
        if token:
            h["authorization"] = f"Bearer {token}"
        n = len(echo.snapshot())
        conn.request("POST", "/api/upload", body=body, headers=h)
        r = conn.getresponse()
        r.read()
        conn.close()
        assert r.status == want
        seen = upstream_since(echo, n)
        if want == 200:
            assert len(seen) == 1 and seen[0]["body"] == body.decode("utf-8", "replace")
        else:
            assert seen == []
    _alive_on_every_worker(e, keys)


def _raw_socket(port: int, request: bytes) -> tuple[int, bytes]:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_invalid_utf8_in_the_path(chain, keys):
    """Bytes >= 0x80 in the request target, in the path or in the query: Envoy's codec answers
    400 before any filter runs, so `:path` the filters read is always ASCII."""
    e, echo = chain
    n = len(echo.snapshot())
    end = b" HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
    assert _raw_socket(e.port, b"GET /api/x\xff" + end)[0] == 400
    q = b"GET /api/x?q=\xff\xfe&access_token=" + tok(keys).encode() + end
    assert _raw_socket(e.port, q)[0] == 400
    assert upstream_since(echo, n) == []
    _alive_on_every_worker(e, keys)


def test_invalid_utf8_in_signed_claims(chain, keys):
    """A validly signed token whose payload holds bytes that are not UTF-8 inside a JSON string
    (`sub`, and an extra claim): JSON must be UTF-8, so the payload is malformed: 401."""
    e, echo = chain
    c = tk.claims(LOCAL_ISS, LOCAL_AUD, sub="PLACEHOLDER")
    body = json.dumps(c, separators=(",", ":")).encode().replace(b"PLACEHOLDER", b"caf\xe9\xff")
    t = tk.raw({"alg": "EdDSA", "typ": "JWT", "kid": "ed-1"}, tk.b64url(body), key=keys.ed)
    answers = {(s, reason(b)) for s, _, b in (raw(e, "/api/x", [("authorization", f"Bearer {t}")])
                                               for _ in range(4))}
    assert answers == {(401, "token_malformed")}, answers
    _alive_on_every_worker(e, keys)
