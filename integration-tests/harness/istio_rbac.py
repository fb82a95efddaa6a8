"""Istio `AuthorizationPolicy` -> Envoy `envoy.filters.http.rbac` filters, as istiod builds them
for an HTTP sidecar or gateway listener (current istiod, extended JWT: claims are read from the
`envoy.filters.http.jwt_authn` dynamic metadata under the `payload` key).

Written from istiod's sources (istio/istio `pilot/pkg/security/authz/`):
  builder/builder.go       Builder.build / BuildHTTP  -> `rbac_filters`
  model/model.go           New, Generate, rule.permission / rule.principal -> `_Model`
  model/generator.go       one generator per attribute -> `_GENERATORS` / `_ext_*`
  model/util.go            extractNameInBrackets / extractNameInNestedBrackets,
                           MetadataStringMatcherForJWTClaim, MetadataListValueMatcherForJWTClaims
  matcher/{string,header,metadata,template}.go, networking/util AddrStrToCidrRange
  pkg/config/security + pkg/config/validation (ValidateAuthorizationPolicy) -> `validate`

Each function names the istiod function it mirrors. Envoy's JSON field names (snake_case) are
used so the output drops into a bootstrap.

Layout (BuildHTTP): one rbac filter for DENY policies, then one for ALLOW policies; a filter
exists when at least one policy of its action exists. A policy without rules adds a policy that
never matches (so an ALLOW policy without rules denies everything). A rule that istiod cannot
generate is dropped from an ALLOW filter; in a DENY filter only the failing value is dropped
(model.rule.checkError). An empty rule `{}` matches every request.

Supported: source ipBlocks / remoteIpBlocks / requestPrincipals / principals / namespaces /
serviceAccounts (+ not*), operation hosts / ports / methods / paths (+ not*, path templates
`{*}` `{**}` -> `uri_template`), and `when` keys request.headers[...], source.ip, remote.ip,
source.principal, source.namespace, request.auth.principal / audiences / presenter /
claims[...], destination.ip, destination.port, connection.sni. Not translated: CUSTOM and AUDIT
actions, dry-run, `experimental.envoy.filters.*`, `request.experimental.inline.headers[...]`,
trust-domain aliases. The differential test exercises everything except the fields that need
an mTLS peer (principals, namespaces, serviceAccounts, source.principal, source.namespace) and
connection.sni / destination.ip.
"""

from __future__ import annotations

import ipaddress
import re

JWT_FILTER = "envoy.filters.http.jwt_authn"   # pilot/pkg/xds/filters EnvoyJwtFilterName
JWT_PAYLOAD = "payload"                       # EnvoyJwtFilterPayload (payload_in_metadata)
RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
URI_TEMPLATE_TYPE = "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig"

MATCH_ONE, MATCH_ANY = "{*}", "{**}"          # pkg/config/security MatchOneTemplate / MatchAnyTemplate
_VALID_LITERAL = re.compile(r"^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$")  # security.validLiteral (pchar)

# builder.go rbacPolicyMatchNever
MATCH_NEVER = {"permissions": [{"not_rule": {"any": True}}],
               "principals": [{"not_id": {"any": True}}]}


class GenerateError(Exception):
    """A generator refused a value (istiod: the rule is skipped for ALLOW, the value for DENY)."""


# ------------------------------------------------------------------ matcher/string.go
def _sm_exact(v: str, ignore_case: bool = False) -> dict:
    return {"exact": v, **({"ignore_case": True} if ignore_case else {})}


def _sm_prefix(v: str, ignore_case: bool = False) -> dict:
    return {"prefix": v, **({"ignore_case": True} if ignore_case else {})}


def _sm_suffix(v: str, ignore_case: bool = False) -> dict:
    return {"suffix": v, **({"ignore_case": True} if ignore_case else {})}


def _sm_regex(r: str) -> dict:
    return {"safe_regex": {"regex": r}}


MATCH_ANY_STRING = _sm_regex(".+")  # generator.go matchAny


def string_matcher(v: str, prefix: str = "") -> dict:
    """StringMatcherWithPrefix: `*` -> regex `.+` (non-empty), `*x` -> suffix, `x*` -> prefix."""
    if v == "*":
        return _sm_regex(".+")
    if v.startswith("*"):
        return _sm_suffix(v[1:]) if not prefix else _sm_regex(prefix + ".*" + v[1:])
    if v.endswith("*"):
        return _sm_prefix(prefix + v[:-1])
    return _sm_exact(prefix + v)


def _or_value(matchers: list[dict]) -> dict:
    """OrMatcher: a single matcher stays bare."""
    return matchers[0] if len(matchers) == 1 else {"or_match": {"value_matchers": matchers}}


def string_or_value(values: list[str]) -> dict:
    """StringOrMatcher: a ValueMatcher that is any of the values' string matchers."""
    return _or_value([{"string_match": string_matcher(v)} for v in values])


# ------------------------------------------------------------------ matcher/header.go
def header_matcher(name: str, v: str) -> dict:
    """HeaderMatcher: `*` is present_match (any value, empty included), else a string match
    on the header value (Envoy joins repeated headers with `,`)."""
    if v == "*":
        return {"name": name, "present_match": True}
    if v.startswith("*"):
        return {"name": name, "string_match": _sm_suffix(v[1:])}
    if v.endswith("*"):
        return {"name": name, "string_match": _sm_prefix(v[:-1])}
    return {"name": name, "string_match": _sm_exact(v)}


def host_matcher(v: str) -> dict:
    """HostMatcher: like HeaderMatcher on `:authority` but ignore_case. No port handling:
    `example.com` does not match `example.com:8080`; `example.com:*` (a prefix) does."""
    if v == "*":
        return {"name": ":authority", "present_match": True}
    if v.startswith("*"):
        return {"name": ":authority", "string_match": _sm_suffix(v[1:], True)}
    if v.endswith("*"):
        return {"name": ":authority", "string_match": _sm_prefix(v[:-1], True)}
    return {"name": ":authority", "string_match": _sm_exact(v, True)}


# ------------------------------------------------------------------ matcher/template.go
def contains_path_template(v: str) -> bool:
    """security.ContainsPathTemplate."""
    return MATCH_ONE in v or MATCH_ANY in v


def sanitize_path_template(path: str) -> str:
    """sanitizePathTemplate: `{*}` -> `*`, `{**}` -> `**` (Envoy uri_template syntax)."""
    return path.replace(MATCH_ONE, "*").replace(MATCH_ANY, "**")


# ------------------------------------------------------------------ matcher/metadata.go, model/util.go
def _md(path: list[str], value: dict) -> dict:
    return {"filter": JWT_FILTER, "path": [{"key": k} for k in path], "value": value}


def jwt_claim_string(claim: str, sm: dict) -> dict:
    """MetadataStringMatcherForJWTClaim: payload.<claim> must be a string matching `sm`."""
    return _md([JWT_PAYLOAD, claim], {"string_match": sm})


def jwt_claims_list_or_value(claims: list[str], value: dict) -> dict:
    """MetadataListValueMatcherForJWTClaims -> MetadataListValueMatcher(useExtendedJwt=true):
    the claim is a list one of whose elements matches, or the claim itself matches."""
    return _md([JWT_PAYLOAD, *claims],
               {"or_match": {"value_matchers": [{"list_match": {"one_of": value}}, value]}})


def extract_name_in_brackets(s: str) -> str:
    """util.extractNameInBrackets."""
    if not (s.startswith("[") and s.endswith("]")):
        raise GenerateError(f"expecting format [<NAME>], but found {s}")
    return s[1:-1]


def extract_name_in_nested_brackets(s: str) -> list[str]:
    """util.extractNameInNestedBrackets: `[a][b]` -> [a, b]; anything else falls back to the
    single-bracket form, so `[a.b]` is one claim named `a.b`."""
    out, begin = [], 0
    while begin < len(s):
        end = -1
        if s[begin] == "[":
            for i in range(begin + 1, len(s)):
                if s[i] == "[":
                    break
                if s[i] == "]":
                    end = i
                    break
        if end == -1:
            return [extract_name_in_brackets(s)]
        out.append(s[begin + 1:end])
        begin = end + 1
    return out


# ------------------------------------------------------------------ networking/util
def cidr_range(addr: str) -> dict:
    """AddrStrToCidrRange: a CIDR keeps its address as written (Envoy masks it); a bare address
    is a /32 or /128. An IPv4-mapped IPv6 address stays IPv6 (/128)."""
    if not addr:
        raise GenerateError("empty address")
    try:
        if "/" in addr:
            a, bits = addr.split("/", 1)
            ip = ipaddress.ip_address(a)
            if not bits.isdigit() or int(bits) > ip.max_prefixlen:
                raise ValueError(addr)
            plen = int(bits)
        else:
            ip = ipaddress.ip_address(addr)
            plen = ip.max_prefixlen
    except ValueError as e:
        raise GenerateError(f"bad address {addr}: {e}") from None
    text = str(ip)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        text = f"::ffff:{ip.ipv4_mapped}"  # Go's netip prints the 4in6 form this way
    return {"address_prefix": text, "prefix_len": plen}


def _port(v: str) -> int:
    """util.convertToPort."""
    if not v.isdigit() or int(v) > 65535:
        raise GenerateError(f"invalid port {v}")
    return int(v)


# ------------------------------------------------------------------ model/generator.go
# A plain generator turns one value into one Permission or Principal; model.rule ORs them.
# An "extended" generator turns the whole value list into one Principal.
def _unimplemented(*_):
    raise GenerateError("unimplemented")


def _perm_dest_ip(key, v):  # destIPGenerator.permission
    return {"destination_ip": cidr_range(v)}


def _perm_dest_port(key, v):  # destPortGenerator.permission
    return {"destination_port": _port(v)}


def _perm_sni(key, v):  # connSNIGenerator.permission
    return {"requested_server_name": string_matcher(v)}


def _prin_src_ip(key, v):  # srcIPGenerator.principal
    return {"direct_remote_ip": cidr_range(v)}


def _prin_remote_ip(key, v):  # remoteIPGenerator.principal
    return {"remote_ip": cidr_range(v)}


def _authenticated(sm: dict) -> dict:  # principalAuthenticated (sidecar: useAuthenticated)
    return {"authenticated": {"principal_name": sm}}


def _prin_namespace(key, v):  # srcNamespaceGenerator.principal
    return _authenticated(_sm_regex(".*/ns/%s/.*" % v.replace("*", ".*")))


def _prin_principal(key, v):  # srcPrincipalGenerator.principal
    return _authenticated(string_matcher(v, "spiffe://"))


def _service_account_generator(namespace: str):
    def gen(key, v):  # srcServiceAccountGenerator.principal / serviceAccountRegex
        ns, sep, sa = v.partition("/")
        if not sep:
            ns, sa = namespace, v
        return _authenticated(_sm_regex(f"spiffe://.+/ns/{ns}/(.+/|)sa/{sa}(/.+)?"))
    return gen


def _prin_header(key, v):  # requestHeaderGenerator.principal
    return {"header": header_matcher(extract_name_in_brackets(key[len("request.headers"):]), v)}


def _perm_host(key, v):  # hostGenerator.permission
    return {"header": host_matcher(v)}


def _perm_method(key, v):  # methodGenerator.permission
    return {"header": header_matcher(":method", v)}


def _perm_path(key, v):  # pathGenerator.permission
    if contains_path_template(v):
        return {"uri_template": {"name": "uri-template", "typed_config": {
            "@type": URI_TEMPLATE_TYPE, "path_template": sanitize_path_template(v)}}}
    return {"url_path": {"path": string_matcher(v)}}


def _ext_request_principal(key, values):
    """requestPrincipalGenerator.extendedPrincipal: split each value at its LAST `/` into
    iss and sub, each matched on its own (string claims only):
      `*`            -> iss any (.+), sub any
      `*x/s` `*/s`   -> iss suffix x (or any when iss is exactly `*`), sub exact s
      `*x` (no /)    -> iss any, sub suffix x
      `i/x*` `i/*`   -> iss exact i, sub prefix x (or any when sub is exactly `*`)
      `x*` (no /)    -> iss prefix x, sub any
      `i/s`          -> iss exact i, sub exact s;   `x` (no /) -> iss exact x, sub exact ''
    """
    out = []
    for v in values:
        idx = v.rfind("/")
        found = idx >= 0
        iss, sub = (v[:idx], v[idx + 1:]) if found else (v, "")
        if v == "*":
            mi, ms = MATCH_ANY_STRING, MATCH_ANY_STRING
        elif v.startswith("*"):
            if found:
                mi = MATCH_ANY_STRING if iss == "*" else _sm_suffix(iss[1:])
                ms = _sm_exact(sub)
            else:
                mi, ms = MATCH_ANY_STRING, _sm_suffix(v[1:])
        elif v.endswith("*"):
            if found:
                mi = _sm_exact(iss)
                ms = MATCH_ANY_STRING if sub == "*" else _sm_prefix(sub[:-1])
            else:
                mi, ms = _sm_prefix(v[:-1]), MATCH_ANY_STRING
        else:
            mi, ms = _sm_exact(iss), _sm_exact(sub)
        out.append({"and_ids": {"ids": [{"metadata": jwt_claim_string("iss", mi)},
                                        {"metadata": jwt_claim_string("sub", ms)}]}})
    if not out:
        return None
    return out[0] if len(out) == 1 else {"or_ids": {"ids": out}}


def _ext_audiences(key, values):  # requestAudiencesGenerator.extendedPrincipal
    return {"metadata": jwt_claims_list_or_value(["aud"], string_or_value(values))}


def _ext_presenter(key, values):  # requestPresenterGenerator.extendedPrincipal (azp only)
    return {"metadata": jwt_claims_list_or_value(["azp"], string_or_value(values))}


def _ext_claims(key, values):  # requestClaimGenerator.extendedPrincipal
    claims = extract_name_in_nested_brackets(key[len("request.auth.claims"):])
    return {"metadata": jwt_claims_list_or_value(claims, string_or_value(values))}


# ------------------------------------------------------------------ model/model.go
class _Entry:
    """model.rule: one attribute with its values / notValues and its generator."""

    def __init__(self, key, values, not_values, gen=None, ext=None):
        self.key, self.values, self.not_values = key, list(values or []), list(not_values or [])
        self.gen, self.ext = gen, ext

    def _build(self, action: str, plain, wrap_or: str, wrap_not: str) -> list[dict]:
        def check(err: GenerateError):  # rule.checkError
            if action == "ALLOW":
                raise err

        out = []
        for vals, negate in ((self.values, False), (self.not_values, True)):
            if not vals:
                continue
            if self.ext is not None:
                try:
                    p = self.ext(self.key, vals)
                except GenerateError as e:
                    check(e)
                    p = None
                if p is not None:
                    out.append({wrap_not: p} if negate else p)
                continue
            ors = []
            for v in vals:
                try:
                    ors.append(plain(self.key, v))
                except GenerateError as e:
                    check(e)
            if ors:
                node = {wrap_or: {"rules" if wrap_or == "or_rules" else "ids": ors}}
                out.append({wrap_not: node} if negate else node)
        return out

    def permission(self, action: str) -> list[dict]:  # rule.permission
        return self._build(action, self.gen[0], "or_rules", "not_rule")

    def principal(self, action: str) -> list[dict]:  # rule.principal
        return self._build(action, self.gen[1] if self.gen else None, "or_ids", "not_id")


def _perm(fn):
    return (fn, _unimplemented)


def _prin(fn):
    return (_unimplemented, fn)


class _Model:
    """model.New + Model.Generate for one rule."""

    def __init__(self, rule: dict, namespace: str):
        base_perm: list[_Entry] = []
        base_prin: list[_Entry] = []
        for w in rule.get("when") or []:
            k, vals, nvals = w.get("key", ""), w.get("values"), w.get("notValues")
            if not vals and not nvals:
                continue  # ruleList.appendLast skips an empty condition
            if k == "destination.ip":
                base_perm.append(_Entry(k, vals, nvals, _perm(_perm_dest_ip)))
            elif k == "destination.port":
                base_perm.append(_Entry(k, vals, nvals, _perm(_perm_dest_port)))
            elif k == "connection.sni":
                base_perm.append(_Entry(k, vals, nvals, _perm(_perm_sni)))
            elif k == "source.ip":
                base_prin.append(_Entry(k, vals, nvals, _prin(_prin_src_ip)))
            elif k == "remote.ip":
                base_prin.append(_Entry(k, vals, nvals, _prin(_prin_remote_ip)))
            elif k == "source.namespace":
                base_prin.append(_Entry(k, vals, nvals, _prin(_prin_namespace)))
            elif k == "source.serviceAccount":
                base_prin.append(_Entry(k, vals, nvals, _prin(_service_account_generator(namespace))))
            elif k == "source.principal":
                base_prin.append(_Entry(k, vals, nvals, _prin(_prin_principal)))
            elif k == "request.auth.principal":
                base_prin.append(_Entry(k, vals, nvals, ext=_ext_request_principal))
            elif k == "request.auth.audiences":
                base_prin.append(_Entry(k, vals, nvals, ext=_ext_audiences))
            elif k == "request.auth.presenter":
                base_prin.append(_Entry(k, vals, nvals, ext=_ext_presenter))
            elif k.startswith("request.headers"):
                base_prin.append(_Entry(k, vals, nvals, _prin(_prin_header)))
            elif k.startswith("request.auth.claims"):
                base_prin.append(_Entry(k, vals, nvals, ext=_ext_claims))
            elif k.startswith("experimental.envoy.filters.") or k.startswith("request.experimental."):
                raise NotImplementedError(f"{k} is not translated by this module")
            else:
                raise GenerateError(f"unknown attribute {k}")

        # ruleList.insertFront, in istiod's call order (so the last inserted comes first)
        sa = _service_account_generator(namespace)
        self.principals: list[list[_Entry]] = []
        for f in rule.get("from") or []:
            s = f.get("source") or {}
            merged = list(base_prin)
            for key, vk, nk, gen, ext in (
                ("source.ip", "ipBlocks", "notIpBlocks", _prin(_prin_src_ip), None),
                ("remote.ip", "remoteIpBlocks", "notRemoteIpBlocks", _prin(_prin_remote_ip), None),
                ("source.namespace", "namespaces", "notNamespaces", _prin(_prin_namespace), None),
                ("source.serviceAccount", "serviceAccounts", "notServiceAccounts", _prin(sa), None),
                ("request.auth.principal", "requestPrincipals", "notRequestPrincipals", None,
                 _ext_request_principal),
                ("source.principal", "principals", "notPrincipals", _prin(_prin_principal), None),
            ):
                if s.get(vk) or s.get(nk):
                    merged.insert(0, _Entry(key, s.get(vk), s.get(nk), gen, ext))
            self.principals.append(merged)
        if not rule.get("from"):
            self.principals.append(base_prin)

        self.permissions: list[list[_Entry]] = []
        for t in rule.get("to") or []:
            o = t.get("operation") or {}
            merged = list(base_perm)
            for key, vk, nk, gen in (
                ("destination.port", "ports", "notPorts", _perm(_perm_dest_port)),
                ("path-matcher", "paths", "notPaths", _perm(_perm_path)),
                (":method", "methods", "notMethods", _perm(_perm_method)),
                (":authority", "hosts", "notHosts", _perm(_perm_host)),
            ):
                if o.get(vk) or o.get(nk):
                    merged.insert(0, _Entry(key, o.get(vk), o.get(nk), gen))
            self.permissions.append(merged)
        if not rule.get("to"):
            self.permissions.append(base_perm)

    def generate(self, action: str) -> dict:
        """Model.Generate: one Policy; each list is AND-ed, empty -> any."""
        perms = []
        for rl in self.permissions:  # generatePermission
            rules = [p for e in rl for p in e.permission(action)] or [{"any": True}]
            perms.append({"and_rules": {"rules": rules}})
        prins = []
        for rl in self.principals:  # generatePrincipal
            ids = [p for e in rl for p in e.principal(action)] or [{"any": True}]
            prins.append({"and_ids": {"ids": ids}})
        return {"permissions": perms, "principals": prins}


# ------------------------------------------------------------------ builder/builder.go
def policy_name(namespace: str, name: str, rule: int) -> str:
    """builder.policyName."""
    return f"ns[{namespace}]-policy[{name}]-rule[{rule}]"


def rbac_filters(policies: list[dict], namespace: str = "default") -> list[dict]:
    """Builder.BuildHTTP for ALLOW/DENY policies: [DENY rbac filter], [ALLOW rbac filter]."""
    out = []
    for action in ("DENY", "ALLOW"):
        chosen = [p for p in policies if p.get("action", "ALLOW") == action]
        if not chosen:
            continue
        envoy_policies: dict[str, dict] = {}
        for p in chosen:  # Builder.build
            rules = p.get("rules") or []
            for i, rule in enumerate(rules):
                if rule is None:
                    continue  # "skipped nil rule"
                try:
                    envoy_policies[policy_name(namespace, p["name"], i)] = \
                        _Model(rule, namespace).generate(action)
                except GenerateError:
                    continue  # "skipped invalid rule" / generate error: the rule is dropped
            if not rules:
                envoy_policies[policy_name(namespace, p["name"], 0)] = MATCH_NEVER
        out.append({"name": "envoy.filters.http.rbac", "typed_config": {
            "@type": RBAC_TYPE, "rules": {"action": action, "policies": envoy_policies}}})
    return out


# ------------------------------------------------------------------ validation (istiod webhook)
_WHEN_KEYS = ("source.ip", "remote.ip", "source.namespace", "source.serviceAccount",
              "source.principal", "request.auth.principal", "request.auth.audiences",
              "request.auth.presenter", "destination.ip", "destination.port", "connection.sni")


def _check_ips(vals, where):  # security.ValidateIPs
    for v in vals or []:
        try:
            cidr_range(v)
        except GenerateError as e:
            raise ValueError(f"{where}: {e}") from None


def _check_ports(vals, where):  # security.ValidatePorts
    for v in vals or []:
        if not str(v).isdigit() or int(v) > 65535:
            raise ValueError(f"{where}: bad port {v}")


def _check_map_key(key):  # security.validateMapKey
    i = key.find("[")
    if not (key.endswith("]") and 0 < i < len(key) - 2):
        raise ValueError(f"bad key {key}: should have format a[b]")


def _check_templates(vals, where):  # security.CheckValidPathTemplate
    for path in vals or []:
        templ, seen_any = contains_path_template(path), False
        for glob in path.strip("/").split("/"):
            if glob in (MATCH_ONE, MATCH_ANY) and not seen_any:
                seen_any = glob == MATCH_ANY
                continue
            if glob in (MATCH_ONE, MATCH_ANY):
                raise ValueError(f"{where}: {path}: {{**}} is not the last operator")
            if "{" in glob or "}" in glob:
                raise ValueError(f"{where}: {path}: '{{' or '}}' beyond a supported template")
            if templ and not _VALID_LITERAL.match(glob):
                raise ValueError(f"{where}: {path}: invalid literal segment {glob!r}")


def validate(policy: dict) -> None:
    """The parts of ValidateAuthorizationPolicy that apply to ALLOW/DENY HTTP policies; raises
    ValueError for a policy the API server would refuse."""
    if policy.get("action", "ALLOW") not in ("ALLOW", "DENY"):
        raise ValueError("only ALLOW and DENY are translated")
    for i, rule in enumerate(policy.get("rules") or []):
        at = f"{policy.get('name')}.rules[{i}]"
        if rule.get("from") is not None and not rule["from"]:
            raise ValueError(f"{at}: `from` must not be empty")
        for f in rule.get("from") or []:
            s = f.get("source")
            if not s or not any(s.values()):
                raise ValueError(f"{at}: `from.source` must not be empty")
            for k, vals in s.items():
                if any(v == "" for v in vals):
                    raise ValueError(f"{at}: empty value in {k}")
            for k in ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"):
                _check_ips(s.get(k), f"{at}.{k}")
        if rule.get("to") is not None and not rule["to"]:
            raise ValueError(f"{at}: `to` must not be empty")
        for t in rule.get("to") or []:
            o = t.get("operation")
            if not o or not any(o.values()):
                raise ValueError(f"{at}: `to.operation` must not be empty")
            for k, vals in o.items():
                if any(v == "" for v in vals):
                    raise ValueError(f"{at}: empty value in {k}")
            _check_ports(o.get("ports"), f"{at}.ports")
            _check_ports(o.get("notPorts"), f"{at}.notPorts")
            _check_templates(o.get("paths"), f"{at}.paths")
            _check_templates(o.get("notPaths"), f"{at}.notPaths")
        for w in rule.get("when") or []:
            key = w.get("key", "")
            if not key:
                raise ValueError(f"{at}: `key` must not be empty")
            if not w.get("values") and not w.get("notValues"):
                raise ValueError(f"{at}: values or notValues must be set for {key}")
            for vals in (w.get("values") or [], w.get("notValues") or []):  # security.ValidateAttribute
                if any(v == "" for v in vals):
                    raise ValueError(f"{at}: empty value for {key}")
                if key.startswith(("request.headers", "request.auth.claims")):
                    _check_map_key(key)
                elif key in ("source.ip", "remote.ip", "destination.ip"):
                    _check_ips(vals, f"{at}.{key}")
                elif key == "destination.port":
                    _check_ports(vals, f"{at}.{key}")
                elif key not in _WHEN_KEYS:
                    raise ValueError(f"{at}: unknown attribute {key}")
