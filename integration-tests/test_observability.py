"""Observability through a real Envoy running the demo chain (envoy-configs/demo.yaml rendered
the way `make run` renders it, with its shipped stats_tags), after demo traffic that gets
allowed, 401, 403 and 429 answers:

- every metric that a query of the Grafana dashboard (deploy/observability/grafana/dashboards/
  meshward.json) uses is in /stats/prometheus, with the labels the query groups by;
- real Prometheus (Debian `prometheus`, loopback, temporary storage) scrapes that Envoy with
  deploy/observability/prometheus.yml's job, and every dashboard query returns data;
- each denial's audit line reaches an access log through filter state
  (`%FILTER_STATE(wasm.meshward.audit.<filter>:PLAIN)%`) with an RFC 3339 timestamp and the
  request id.

MESHWARD_MODULE=suite runs the demo as `make run` does (one suite module); standalone, as
`make run MODULES=standalone` (three modules).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import shutil
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from harness import REPO_ROOT
from harness.envoy import METRIC_TAGS, module_mode, parse_prometheus, static_cluster
from harness.ports import free_port
from harness.procs import Proc, wait_until

DASHBOARD = REPO_ROOT / "deploy" / "observability" / "grafana" / "dashboards" / "meshward.json"
SCRAPE_CONFIG = REPO_ROOT / "deploy" / "observability" / "prometheus.yml"
AUDIT_FIELDS = {"jwt-auth": "audit_jwt_auth", "authz": "audit_authz", "rate-limit": "audit_rate_limit"}


def _run_demo():
    spec = importlib.util.spec_from_file_location("run_demo", REPO_ROOT / "scripts" / "run_demo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def dashboard_queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def query_needs(expr: str) -> list[tuple[str, set[str]]]:
    """(metric, labels) pairs an expression reads: each meshward metric, with the labels of the
    `by (...)` clause of the aggregation around it (`le` is the bucket label of `_bucket`)."""
    needs = []
    for m in re.finditer(r"\b(meshward_[a-z0-9_]+)\b", expr):
        before = expr[:m.start()]
        by = re.findall(r"by \(([^)]*)\)", before)
        labels = {x.strip() for x in by[-1].split(",")} if by else set()
        needs.append((m.group(1), labels))
    return needs


# Istio's bootstrap (tools/packaging/common/envoy_bootstrap.json): its fixed tag regexes, one
# `(<tag>=\.=(.*?);\.;)` per `extraStatTags` entry, and a stats matcher that keeps only its
# own prefixes plus `proxyStatsMatcher.inclusionPrefixes`. docs/observability.md gives the
# settings this stands for.
ISTIO_FIXED_TAGS = [
    ("cluster_name", r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"),
    ("tcp_prefix", r"^tcp\.((.*?)\.)\w+?$"),
    ("response_code", r"_rq(_(\d{3}))$"),
    ("response_code_class", r"_rq(_(\dxx))$"),
    ("http_conn_manager_listener_prefix",
     r"^listener(?=\.).*?\.http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"),
    ("http_conn_manager_prefix", r"^http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"),
    ("listener_address", r"^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"),
    ("mongo_prefix", r"^mongo\.(.+?)\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$"),
]
ISTIO_LATE_TAGS = [
    ("cache", r"(cache\.(.+?)\.)"),
    ("component", r"(component\.(.+?)\.)"),
    ("tag", r"(tag\.(.+?);\.)"),
    ("wasm_filter", r"(wasm_filter\.(.+?)\.)"),
    ("authz_enforce_result", r"rbac(\.(allowed|denied))"),
    ("authz_dry_run_action", r"(\.istio_dry_run_(allow|deny)_)"),
    ("authz_dry_run_result", r"(\.shadow_(allowed|denied))"),
]


def istio_stats_config(extra_stat_tags: list[str], inclusion_prefixes: list[str]) -> dict:
    tags = ISTIO_FIXED_TAGS + [(t, f"({t}=\\.=(.*?);\\.;)") for t in extra_stat_tags] + ISTIO_LATE_TAGS
    return {
        "use_all_default_tags": False,
        "stats_tags": [{"tag_name": n, "regex": r} for n, r in tags],
        "stats_matcher": {"inclusion_list": {"patterns": [
            {"prefix": p} for p in ["reporter=", *inclusion_prefixes, "component", "istio"]]}},
    }


class Demo:
    """The demo chain in a real Envoy (with `stats_config` instead of the shipped one, if
    given), after demo traffic; `ids` are the request ids of the interesting requests."""

    def __init__(self, workdir: Path, stats_config: dict | None = None):
        from harness.echo import EchoUpstream
        from harness.envoy import Envoy

        run_demo = _run_demo()
        workdir.mkdir(parents=True, exist_ok=True)
        self.echo = EchoUpstream().start()
        key, jwks = run_demo.make_key(workdir)
        modules = "suite" if module_mode() == "suite" else "standalone"
        # The access log reaches its file at Envoy's file flush (10 s by default): sooner here.
        e = Envoy(workdir, [], [static_cluster("upstream", self.echo.port)], name="demo", access_log=False,
                  extra_args=("--file-flush-interval-msec", "200"))
        e.config = run_demo.render_config(jwks, e.port, e.admin_port, self.echo.port, modules)
        assert "stats_config" in e.config, "envoy-configs/demo.yaml ships stats_tags"
        if stats_config is not None:
            e.config["stats_config"] = stats_config
        # An access log that prints each filter's audit line from filter state.
        e.access_log_path = workdir / "access.log"
        hcm = e.config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm.setdefault("access_log", []).append({
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": str(e.access_log_path),
                "log_format": {"json_format": {
                    "request_id": "%REQ(X-REQUEST-ID)%", "status": "%RESPONSE_CODE%",
                    **{field: f"%FILTER_STATE(wasm.meshward.audit.{f}:PLAIN)%" for f, field in AUDIT_FIELDS.items()},
                }},
            },
        })
        self.envoy = e
        try:
            e.start()
        except Exception:
            self.echo.stop()
            raise
        token = run_demo.mint(key)
        self.sent: dict[str, tuple[int, int]] = {}
        self.ids = {
            "allow": self.send("allow", 200, "/hello", token),
            "no_token": self.send("no_token", 401, "/hello"),
            "tampered": self.send("tampered", 401, "/hello", run_demo.tamper(token)),
            "scope": self.send("scope", 403, "/admin", token),
            "bola": self.send("bola", 403, "/users/dev-admin/orders", token),
        }
        for i in range(3):
            self.send(f"limited{i}", 200, "/limited", token)
        self.ids["limited"] = self.send("limited", 429, "/limited", token)

    def send(self, label: str, want: int, path: str, tok: str | None = None) -> str:
        rid = f"obs-{label}-{uuid.uuid4()}"
        headers = {"x-request-id": rid}
        if tok:
            headers["authorization"] = f"Bearer {tok}"
        got = requests.get(self.envoy.url(path), headers=headers, timeout=15).status_code
        self.sent[label] = (want, got)
        return rid

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """/stats/prometheus once the fresh token's verify time is in it (histograms reach
        it at Envoy's stats flush, every 5 s by default)."""
        e = self.envoy
        wait_until(lambda: e.metric("meshward_jwt_auth_verify_time_us_count", provider="dev") >= 1, 12, 0.5)
        return parse_prometheus(e.prometheus())

    def stop(self) -> None:
        self.envoy.stop()
        self.echo.stop()


def missing_dashboard_metrics(samples) -> list[str]:
    missing = []
    for expr in dashboard_queries():
        for metric, labels in query_needs(expr):
            if not any(n == metric and labels <= set(lbl) for n, lbl, _ in samples):
                missing.append(f"{metric} by {sorted(labels)}  (in {expr})")
    return missing


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = Demo(tmp_path_factory.mktemp("observability"))
    yield d.envoy, d.ids, d.sent, d
    d.stop()


def test_demo_traffic_gets_the_intended_answers(demo):
    _, _, sent, _ = demo
    assert all(want == got for want, got in sent.values()), sent


def test_every_dashboard_metric_is_in_envoy_prometheus_with_its_labels(demo):
    _, _, _, d = demo
    assert len(dashboard_queries()) >= 20
    samples = d.samples()
    missing = missing_dashboard_metrics(samples)
    assert not missing, "\n".join(missing)
    # and the traffic shows up under the right labels
    value = {(n, tuple(sorted(lbl.items()))): v for n, lbl, v in samples}
    assert value[("meshward_jwt_auth_denied", (("reason", "token_missing"),))] >= 1
    assert value[("meshward_jwt_auth_denied", (("reason", "bad_signature"),))] >= 1
    # someone else's orders: no ALLOW policy matches, so the default denies
    assert value[("meshward_authz_denied", (("policy", "_default"),))] >= 1
    assert value[("meshward_authz_allowed", (("policy", "own-user-data"),))] == 0
    assert value[("meshward_rate_limit_limited", (("rule", "limited-per-user"),))] == 1
    assert value[("meshward_rate_limit_allowed", (("rule", "limited-per-user"),))] == 3
    fresh = [v for (n, lbl), v in value.items()
             if n == "meshward_jwt_auth_verify_time_us_count" and ("provider", "dev") in lbl]
    assert fresh and fresh[0] >= 1, "one fresh token was verified"
    assert not [n for n, _, _ in samples if "=.=" in n or n.startswith("meshward") and "policy_" in n]


def test_audit_lines_reach_the_access_log_with_timestamp_and_request_id(demo):
    e, ids, _, _ = demo
    expect = {"no_token": ("jwt-auth", "token_missing"), "tampered": ("jwt-auth", "bad_signature"),
              "bola": ("authz", None), "limited": ("rate-limit", "rate_limited")}
    log = wait_until(lambda: (lines := e.access_log()) and
                     all(any(x.get("request_id") == ids[k] for x in lines) for k in expect) and lines, 15)
    assert log, e.access_log()
    by_id = {x.get("request_id"): x for x in log}
    now = dt.datetime.now(dt.timezone.utc)
    for label, (flt, reason) in expect.items():
        entry = by_id[ids[label]]
        raw = entry[AUDIT_FIELDS[flt]]
        assert isinstance(raw, str) and raw.startswith("{"), (label, entry)
        line = json.loads(raw)
        assert line["meshward_audit"] == 1 and line["filter"] == flt, line
        assert line["request_id"] == ids[label], line
        assert line["decision"] == "deny", line
        if reason:
            assert line["reason"] == reason, line
        ts = line["timestamp"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ts), ts
        assert abs((dt.datetime.fromisoformat(ts.replace("Z", "+00:00")) - now).total_seconds()) < 120
    # an allowed request writes no audit line (audit_allow is off in the demo)
    allowed = by_id[ids["allow"]]
    assert all(allowed.get(f) in (None, "-", "") for f in AUDIT_FIELDS.values()), allowed
    # the same lines are in Envoy's log (the Wasm logger, info)
    assert ids["bola"] in e.log_text()


def _prometheus_bin() -> str | None:
    return shutil.which("prometheus")


def test_real_prometheus_answers_every_dashboard_query(demo, tmp_path):
    binary = _prometheus_bin()
    assert binary, "Debian `prometheus` is missing: scripts/ensure-deps.sh installs it"
    e, _, _, _ = demo
    cfg = yaml.safe_load(SCRAPE_CONFIG.read_text())
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "envoy")
    assert job["metrics_path"] == "/stats/prometheus"
    # the shipped job, pointed at this test's Envoy and scraped faster
    job["static_configs"] = [{"targets": [f"127.0.0.1:{e.admin_port}"]}]
    job["scrape_interval"] = "1s"
    cfg["global"]["scrape_interval"] = "1s"
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    port = free_port()
    proc = Proc("prometheus", [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'data'}", "--storage.tsdb.retention.time=1h",
                               f"--web.listen-address=127.0.0.1:{port}"], tmp_path / "prometheus.log").start()
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        def ready():
            try:
                return requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        assert wait_until(ready, 30, 0.2), proc.tail(30)

        def scraped() -> bool:
            r = requests.get(f"{api}/query", params={"query": "count_over_time(meshward_jwt_auth_allowed[1m])"},
                             timeout=5).json()
            res = r.get("data", {}).get("result", [])
            return bool(res) and float(res[0]["value"][1]) >= 4
        assert wait_until(scraped, 30, 0.5), proc.tail(30)
        # more traffic between scrapes, so rates are non-zero
        for _ in range(3):
            requests.get(e.url("/hello"), timeout=5)
        time.sleep(2.5)
        empty = []
        for expr in dashboard_queries():
            q = expr.replace("$__rate_interval", "1m")
            r = requests.get(f"{api}/query", params={"query": q}, timeout=10).json()
            assert r.get("status") == "success", (q, r)
            if not r["data"]["result"]:
                empty.append(q)
        assert not empty, "dashboard queries with no data:\n" + "\n".join(empty)
    finally:
        proc.stop()


def test_istio_settings_give_the_same_labels(tmp_path):
    """With Istio's bootstrap stats settings, `extraStatTags` naming meshward's tags and
    `proxyStatsMatcher.inclusionPrefixes: [wasmcustom.meshward]`, the dashboard finds every
    metric with the same labels, and Istio's own tag regexes take nothing from our names
    (e.g. its `.shadow_denied` one). Without the inclusion prefix the metrics are absent."""
    d = Demo(tmp_path / "istio", istio_stats_config(METRIC_TAGS, ["wasmcustom.meshward"]))
    try:
        assert all(w == g for w, g in d.sent.values()), d.sent
        samples = d.samples()
        missing = missing_dashboard_metrics(samples)
        assert not missing, "\n".join(missing)
        ours = [(n, lbl) for n, lbl, _ in samples if n.startswith("meshward_")]
        stray = [(n, lbl) for n, lbl in ours if set(lbl) - set(METRIC_TAGS) - {"le"}]
        assert not stray, stray[:10]
        assert ("meshward_authz_shadow_denied", {"policy": "_default"}) in ours
    finally:
        d.stop()
    d = Demo(tmp_path / "istio-default", istio_stats_config(METRIC_TAGS, []))
    try:
        assert all(w == g for w, g in d.sent.values()), d.sent
        text = d.envoy.prometheus()
        assert "meshward_" not in text, [l for l in text.splitlines() if "meshward_" in l][:5]
    finally:
        d.stop()


def test_dashboard_and_provisioning_are_consistent():
    dash = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in dash["panels"] for t in p["targets"]}
    prov = yaml.safe_load((REPO_ROOT / "deploy/observability/grafana/provisioning/datasources/prometheus.yml")
                          .read_text())
    assert uids == {d["uid"] for d in prov["datasources"]}
    assert prov["datasources"][0]["url"] == "http://127.0.0.1:9090"
    boards = yaml.safe_load((REPO_ROOT / "deploy/observability/grafana/provisioning/dashboards/meshward.yml")
                            .read_text())
    assert boards["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/meshward"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert Path(DASHBOARD).name == "meshward.json"
