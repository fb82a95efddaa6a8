"""The soak (issue 13; docs/reliability.md, "Soak"): mixed traffic at a fixed rate through
jwt-auth -> authz -> rate-limit in one real Envoy, with Envoy's memory, its Wasm VM counts and
the latency sampled while it runs.

    stack = SoakStack(workdir, keys).start()
    run = Soak(stack, seconds=30, rate=100).run()
    problems = run.problems()          # the pass conditions; [] means it passed
    run.write_report(out_dir)          # Markdown + PNG

`test_soak.py` runs it for 30 s in `make test`; `make soak` runs it for 10 minutes.

Every request's expected answer is known before it is sent (a class below), except on the
rate-limited route, where the answer depends on what was counted before: there the check is
the counting itself, per identity and per fixed window (see `Soak._limited_problems`).
The client is open-loop: each request has a scheduled send time, and latency is measured from
that time, so a stall in Envoy shows up as latency instead of as a lower sending rate.
"""

from __future__ import annotations

import gc
import http.client
import json
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from . import TESTS_DIR
from . import tokens as tk
from .authz_support import authz_filter
from .configs import LOCAL_AUD, LOCAL_ISS, local_provider
from .envoy import Envoy, jwt_auth_filter, static_cluster
from .oidc import AUDIENCE, OidcProvider
from .ports import free_port, wait_listening
from .procs import Proc
from .rls_proc import rate_limit_filter

LIMIT = 5              # requests per identity per minute on /limited
LIMIT_WINDOW_S = 60
HOT_SUBJECTS = 200     # identities whose tokens are re-used (the token cache holds them)
LIMITED_SUBJECTS = 40  # identities sharing /limited, so each one goes over LIMIT
JWKS_REFRESH = "5s"    # idp provider's cache_duration: keys are refetched every 4.5 s
MAX_KEYS = 4096

# class -> (share of the traffic, expected status; None: decided by the counting check)
CLASSES: dict[str, tuple[int, int | None]] = {
    "valid": (40, 200),        # a hot identity's cached token, local JWKS
    "valid_new": (15, 200),    # an identity never seen before: a fresh verify, a new rate-limit key
    "idp": (10, 200),          # a token from the real OIDC provider, remote JWKS refreshed in the run
    "invalid": (10, 401),      # tampered signature, expired, unknown key, garbage
    "missing": (5, 401),       # no token
    "denied": (10, 403),       # a valid token on a path authz refuses
    "limited": (10, None),     # a valid token on the per-identity limited route: 200 or 429
}

AUTHZ = {"policies": [
    {"name": "signed-in", "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}],
                                     "to": [{"operation": {"notPaths": ["/forbidden/*"]}}]}]},
]}

RATE = {"max_keys": MAX_KEYS, "on_key_space_full": "deny", "rules": [
    {"name": "limited", "match": {"prefix": "/limited"}, "key": [{"identity": "sub"}],
     "limit": {"requests": LIMIT, "per": "minute", "algorithm": "fixed_window"}},
    # every other request also takes a per-identity key: new identities keep arriving, so the
    # slot table must keep re-using idle slots (a full table would answer 429: caught)
    {"name": "per-identity", "match": {"prefix": "/api"}, "key": [{"identity": "sub"}],
     "limit": {"requests": 1000, "per": "second"}},
]}


def jwt_config(keys, oidc: OidcProvider) -> dict:
    idp = {"issuer": oidc.issuer, "audiences": [AUDIENCE],
           "remote_jwks": {"http_uri": {"uri": oidc.jwks_uri, "cluster": "oidc", "timeout": "2s"},
                           "cache_duration": JWKS_REFRESH}}
    return {
        "providers": {"local": local_provider(keys), "idp": idp},
        "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "local"}, {"provider_name": "idp"}]}}}],
        "jwks_pending_timeout": "10s",
    }


# ---------------------------------------------------------------------------- the stack
class SoakStack:
    """OIDC provider, an echo upstream in its own process (so the client's GIL is not the
    bottleneck), and Envoy with the three filters."""

    def __init__(self, workdir: Path, keys, concurrency: int = 2):
        self.workdir = Path(workdir)
        self.keys = keys
        self.concurrency = concurrency
        self.oidc = OidcProvider(self.workdir, [tk.rsa_key("idp-1")], name="soak-oidc")
        self.echo: Proc | None = None
        self.envoy: Envoy | None = None

    def start(self) -> "SoakStack":
        try:
            self.oidc.start()
            port = free_port()
            self.echo = Proc("soak-echo", [sys.executable, "-m", "harness.echo", port, "--no-record"],
                             self.workdir / "soak-echo.log", cwd=TESTS_DIR).start()
            if not wait_listening(port, timeout=10):
                raise RuntimeError(f"echo upstream did not listen:\n{self.echo.tail()}")
            filters = [jwt_auth_filter(jwt_config(self.keys, self.oidc)), authz_filter(AUTHZ),
                       rate_limit_filter(RATE)]
            clusters = [static_cluster("upstream", port), static_cluster("oidc", self.oidc.port)]
            # no access log: a 10-minute file of every request is not what is measured
            self.envoy = Envoy(self.workdir, filters, clusters, name="envoy-soak",
                               concurrency=self.concurrency, access_log=False).start()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for p in (self.envoy, self.echo, self.oidc):
            if p is not None:
                p.stop()


# ---------------------------------------------------------------------------- tokens
class Tokens:
    """Every token the run sends, minted before it needs them where possible."""

    def __init__(self, keys, oidc: OidcProvider, ttl: int):
        self.keys = keys
        self.oidc = oidc
        self.ttl = ttl
        signers = [keys.ed, keys.ec, keys.rsa]
        self.hot = [self._mint(f"hot-{i}", signers[i % 3]) for i in range(HOT_SUBJECTS)]
        self.limited = [self._mint(f"lim-{i}", keys.ed) for i in range(LIMITED_SUBJECTS)]
        good = self.hot[0]
        head, body, sig = good.split(".")
        self.invalid = [
            f"{head}.{body}.{sig[:-6]}AAAAAA",                                          # tampered
            tk.mint(keys.ed, tk.claims(LOCAL_ISS, LOCAL_AUD, sub="old", ttl=-3600)),   # expired
            tk.mint(keys.attacker_ec, tk.claims(LOCAL_ISS, LOCAL_AUD, sub="mallory")),  # unknown key
            "eyJhbGciOiJFUzI1NiJ9.e30.AAAA",                                           # not a token
        ]
        self._new = 0
        self._lock = threading.Lock()
        self._idp: tuple[float, str] | None = None

    def _mint(self, sub: str, key) -> str:
        return tk.mint(key, tk.claims(LOCAL_ISS, LOCAL_AUD, sub=sub, ttl=self.ttl))

    def fresh(self) -> tuple[str, str]:
        with self._lock:
            self._new += 1
            n = self._new
        sub = f"new-{n}"
        return sub, self._mint(sub, self.keys.ed)

    @property
    def new_identities(self) -> int:
        return self._new

    def idp(self) -> str:
        # a new provider token every 60 s (their lifetime is the provider's default)
        with self._lock:
            if self._idp is None or time.monotonic() - self._idp[0] > 60:
                self._idp = (time.monotonic(), self.oidc.token())
            return self._idp[1]


# ---------------------------------------------------------------------------- records
@dataclass
class Record:
    cls: str
    sched: float        # scheduled send time (monotonic)
    wall: float         # wall-clock send time (for the rate-limit window)
    latency: float      # seconds from the scheduled time to the full response
    status: int         # 0: connection error or timeout
    sub: str = ""
    error: str = ""


@dataclass
class Sample:
    t: float                 # seconds since the start of the traffic
    rss_kb: int
    allocated: int           # Envoy's server.memory_allocated (bytes)
    heap: int                # server.memory_heap_size
    vm_created: int
    vm_active: int
    jwks_ok: int
    jwks_failed: int
    key_space_full: int
    cas_errors: int


@dataclass
class SoakRun:
    seconds: float
    rate: float
    warmup: float
    mix: dict[str, int] = field(default_factory=lambda: {c: w for c, (w, _) in CLASSES.items()})
    records: list[Record] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    envoy_problems: list[str] = field(default_factory=list)
    new_identities: int = 0
    behind_s: float = 0.0     # how far the slowest client thread fell behind its schedule
    started_at: str = ""
    client_objects: int = 0   # objects the client process's GC tracked before the run

    # -- pass conditions --------------------------------------------------------------
    RSS_GROWTH_BOUND_KB = 8 * 1024
    P99_FACTOR = 3.0
    P99_FLOOR_S = 0.050

    def steady(self) -> list[Sample]:
        return [s for s in self.samples if s.t >= self.warmup]

    def rss_growth_kb(self) -> int:
        """Median RSS over the last fifth of the steady samples minus the first fifth."""
        st = self.steady()
        if len(st) < 5:
            return 0
        k = max(1, len(st) // 5)
        return int(statistics.median(s.rss_kb for s in st[-k:]) - statistics.median(s.rss_kb for s in st[:k]))

    def buckets(self) -> list[tuple[float, int, float, float]]:
        """(bucket start, requests, p50, p99) per bucket of the steady part, by scheduled time."""
        width = 10.0 if self.seconds >= 120 else 5.0
        t0 = min((r.sched for r in self.records), default=0.0)
        by: dict[int, list[float]] = {}
        for r in self.records:
            rel = r.sched - t0
            if rel >= self.warmup and r.status:
                by.setdefault(int((rel - self.warmup) // width), []).append(r.latency)
        out = []
        for b in sorted(by):
            lat = sorted(by[b])
            if len(lat) < 20:  # the tail bucket of a run
                continue
            out.append((self.warmup + b * width, len(lat), pct(lat, 50), pct(lat, 99)))
        return out

    def problems(self) -> list[str]:
        out = list(self.envoy_problems)
        bad = [r for r in self.records if CLASSES[r.cls][1] is not None and r.status != CLASSES[r.cls][1]]
        bad += [r for r in self.records if CLASSES[r.cls][1] is None and r.status not in (200, 429)]
        if bad:
            shown = ", ".join(f"{r.cls}:{r.status}{' ' + r.error if r.error else ''}" for r in bad[:10])
            out.append(f"{len(bad)} unexpected answers of {len(self.records)} (first: {shown})")
        out += self._limited_problems()
        expected = self.seconds * self.rate
        if len(self.records) < 0.95 * expected:
            out.append(f"sent {len(self.records)} requests, planned {expected:.0f}")
        if self.behind_s > 2.0:
            out.append(f"the client fell {self.behind_s:.1f} s behind its schedule")
        st = self.steady()
        if not st:
            out.append("no memory samples after warm-up")
            return out
        first, last = st[0], self.samples[-1]
        if last.vm_created != first.vm_created or last.vm_active != first.vm_active:
            out.append(f"Wasm VMs changed after warm-up: created {first.vm_created} -> {last.vm_created}, "
                       f"active {first.vm_active} -> {last.vm_active}")
        if last.jwks_failed:
            out.append(f"{last.jwks_failed} JWKS fetches failed")
        refreshes = last.jwks_ok - self.samples[0].jwks_ok
        if self.mix.get("idp") and refreshes < 2:
            out.append(f"the remote JWKS was refreshed {refreshes} times (cache_duration {JWKS_REFRESH})")
        if last.key_space_full or last.cas_errors:
            out.append(f"rate-limit table: key_space_full {last.key_space_full}, CAS/write errors {last.cas_errors}")
        growth = self.rss_growth_kb()
        if growth > self.RSS_GROWTH_BOUND_KB:
            out.append(f"RSS grew {growth} kB after warm-up (bound {self.RSS_GROWTH_BOUND_KB} kB)")
        b = self.buckets()
        if len(b) >= 2:
            med = statistics.median(x[3] for x in b)
            worst = max(b, key=lambda x: x[3])
            if worst[3] > max(self.P99_FACTOR * med, med + self.P99_FLOOR_S):
                out.append(f"p99 unstable: {worst[3] * 1e3:.1f} ms in the bucket at {worst[0]:.0f} s, "
                           f"median bucket p99 {med * 1e3:.1f} ms")
        return out

    def _limited_problems(self) -> list[str]:
        """Per (identity, window): at most LIMIT answered 200, and exactly min(LIMIT, sent)
        when every request of the group was sent well inside its window. A request sent
        within 1 s of a window edge may be counted in either window: it is left out of both
        sums, and each of them may then be off by one per such request."""
        groups: dict[tuple[str, int], list[Record]] = {}
        edge: dict[tuple[str, int], int] = {}
        for r in self.records:
            if r.cls != "limited" or r.status not in (200, 429):
                continue
            w, off = divmod(r.wall, LIMIT_WINDOW_S)
            near = off < 1.0 or off > LIMIT_WINDOW_S - 1.0
            key = (r.sub, int(w))
            if near:
                # it may belong to this window or the neighbour on the near side
                other = (r.sub, int(w) - 1 if off < 1.0 else int(w) + 1)
                edge[key] = edge.get(key, 0) + 1
                edge[other] = edge.get(other, 0) + 1
                continue
            groups.setdefault(key, []).append(r)
        out = []
        for key, rs in groups.items():
            ok = sum(r.status == 200 for r in rs)
            slack = edge.get(key, 0)
            want = min(LIMIT, len(rs))
            if ok > LIMIT or ok < want - slack:
                out.append(f"limited {key[0]} window {key[1]}: {ok} of {len(rs)} admitted, "
                           f"limit {LIMIT} (edge requests {slack})")
        return out[:10]

    # -- report -----------------------------------------------------------------------
    def summary(self) -> dict:
        by: dict[str, dict[int, int]] = {}
        for r in self.records:
            by.setdefault(r.cls, {}).setdefault(r.status, 0)
            by[r.cls][r.status] += 1
        st = self.steady()
        lat = sorted(r.latency for r in self.records if r.status)
        rss = [s.rss_kb for s in self.samples]
        return {
            "requests": len(self.records), "by_class": by, "new_identities": self.new_identities,
            "p50_ms": pct(lat, 50) * 1e3 if lat else 0, "p99_ms": pct(lat, 99) * 1e3 if lat else 0,
            "p999_ms": pct(lat, 99.9) * 1e3 if lat else 0, "max_ms": lat[-1] * 1e3 if lat else 0,
            "rss_start_kb": rss[0] if rss else 0, "rss_max_kb": max(rss) if rss else 0,
            "rss_steady_first_kb": st[0].rss_kb if st else 0, "rss_end_kb": rss[-1] if rss else 0,
            "rss_growth_kb": self.rss_growth_kb(),
            "jwks_refreshes": (self.samples[-1].jwks_ok - self.samples[0].jwks_ok) if self.samples else 0,
            "vm_created": self.samples[-1].vm_created if self.samples else 0,
            "buckets": self.buckets(),
        }

    def write_report(self, out_dir: Path, stem: str) -> Path:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        s = self.summary()
        probs = self.problems()
        png = out_dir / f"{stem}.png"
        plotted = self._plot(png)
        lines = [
            f"# Soak {self.started_at}",
            "",
            f"{self.seconds:.0f} s at {self.rate:.0f} req/s (open loop), warm-up {self.warmup:.0f} s; "
            f"Envoy 1.40, 2 workers, jwt-auth -> authz -> rate-limit (integration-tests/harness/soak.py).",
            "",
            f"**Result: {'PASS' if not probs else 'FAIL'}**" + ("" if not probs else ": " + "; ".join(probs)),
            "",
            "| class | expected | answers |",
            "|---|---|---|",
        ]
        for cls, (_, want) in CLASSES.items():
            got = ", ".join(f"{k}: {v}" for k, v in sorted(s["by_class"].get(cls, {}).items()))
            lines.append(f"| {cls} | {want if want else f'200 up to {LIMIT}/min per identity, then 429'} | {got} |")
        lines += [
            "",
            "| figure | value |",
            "|---|---|",
            f"| requests | {s['requests']} |",
            f"| new identities (fresh token, new rate-limit key) | {s['new_identities']} |",
            f"| remote JWKS refreshes (both workers) | {s['jwks_refreshes']} |",
            f"| latency p50 / p99 / p99.9 / max | {s['p50_ms']:.1f} / {s['p99_ms']:.1f} / "
            f"{s['p999_ms']:.1f} / {s['max_ms']:.1f} ms |",
            f"| Envoy RSS at start / after warm-up / end / max | {s['rss_start_kb'] / 1024:.1f} / "
            f"{s['rss_steady_first_kb'] / 1024:.1f} / {s['rss_end_kb'] / 1024:.1f} / {s['rss_max_kb'] / 1024:.1f} MiB |",
            f"| RSS growth after warm-up (median of last fifth - first fifth) | {s['rss_growth_kb']} kB "
            f"(bound {self.RSS_GROWTH_BOUND_KB} kB) |",
            f"| Wasm VMs created (no restart: unchanged after warm-up) | {s['vm_created']} |",
            f"| client process: objects tracked by Python's GC (its cyclic GC is off during the run) "
            f"| {self.client_objects} |",
            "",
            "p99 per bucket after warm-up (ms): "
            + ", ".join(f"{b[0]:.0f}s {b[3] * 1e3:.1f}" for b in s["buckets"]),
            "",
        ]
        if plotted:
            lines.append(f"![RSS and latency over time]({png.name})")
        md = out_dir / f"{stem}.md"
        md.write_text("\n".join(lines) + "\n")
        (out_dir / f"{stem}.json").write_text(json.dumps(
            {"summary": s, "problems": probs,
             "samples": [vars(x) for x in self.samples]}, indent=1, default=str))
        return md

    def _plot(self, png: Path) -> bool:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return False
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
        t = [s.t for s in self.samples]
        a1.plot(t, [s.rss_kb / 1024 for s in self.samples], color="tab:blue", label="Envoy RSS")
        a1.axvspan(0, self.warmup, color="0.9", label="warm-up")
        a1.set_ylabel("RSS, MiB", color="tab:blue")
        lo = min(s.rss_kb for s in self.samples) / 1024
        a1.set_ylim(lo - 2, max(s.rss_kb for s in self.samples) / 1024 + 2)
        a1b = a1.twinx()
        a1b.plot(t, [s.allocated / 2**20 for s in self.samples], color="tab:orange",
                 label="server.memory_allocated")
        a1b.set_ylabel("memory_allocated, MiB", color="tab:orange")
        a1.legend(loc="lower right")
        a1.set_title(f"Soak: {self.rate:.0f} req/s for {self.seconds:.0f} s through jwt-auth -> authz -> rate-limit")
        b = self.buckets()
        a2.plot([x[0] for x in b], [x[2] * 1e3 for x in b], marker=".", label="p50")
        a2.plot([x[0] for x in b], [x[3] * 1e3 for x in b], marker=".", label="p99")
        a2.set_ylabel("latency, ms")
        a2.set_xlabel("seconds")
        a2.legend(loc="upper right")
        fig.tight_layout()
        fig.savefig(png, dpi=90)
        plt.close(fig)
        return True


def pct(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return 0.0
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


# ---------------------------------------------------------------------------- the run
class Soak:
    def __init__(self, stack: SoakStack, seconds: float, rate: float = 100.0, threads: int = 4,
                 seed: int = 20261206, warmup: float | None = None, timeout: float = 5.0,
                 mix: dict[str, int] | None = None):
        self.stack = stack
        self.mix = mix or {c: w for c, (w, _) in CLASSES.items()}
        self.seconds = seconds
        self.rate = rate
        self.threads = threads
        self.seed = seed
        # long runs: until both workers' token caches (1000 each) are full of new identities
        self.warmup = warmup if warmup is not None else min(180.0, max(10.0, seconds / 3))
        self.timeout = timeout
        self.tokens = Tokens(stack.keys, stack.oidc, ttl=int(seconds) + 3600)
        self._stop = threading.Event()

    def _plan(self, worker: int) -> random.Random:
        return random.Random(self.seed * 100 + worker)

    def _request(self, rng: random.Random, n: int) -> tuple[str, str, dict, str]:
        """(class, path, headers, subject) for one request."""
        names = list(self.mix)
        cls = rng.choices(names, weights=[self.mix[c] for c in names])[0]
        item = f"/{rng.randrange(10_000)}"
        if cls == "valid":
            return cls, "/api/items" + item, bearer(rng.choice(self.tokens.hot)), ""
        if cls == "valid_new":
            sub, tok = self.tokens.fresh()
            return cls, "/api/items" + item, bearer(tok), sub
        if cls == "idp":
            return cls, "/api/partner" + item, bearer(self.tokens.idp()), ""
        if cls == "invalid":
            return cls, "/api/items" + item, bearer(self.tokens.invalid[n % len(self.tokens.invalid)]), ""
        if cls == "missing":
            return cls, "/api/items" + item, {}, ""
        if cls == "denied":
            return cls, "/forbidden" + item, bearer(rng.choice(self.tokens.hot)), ""
        i = rng.randrange(LIMITED_SUBJECTS)
        return cls, "/limited" + item, bearer(self.tokens.limited[i]), f"lim-{i}"

    def _client(self, worker: int, t0: float, out: list[Record], behind: list[float]) -> None:
        envoy = self.stack.envoy
        assert envoy is not None
        rng = self._plan(worker)
        period = self.threads / self.rate
        conn = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=self.timeout)
        n = 0
        worst = 0.0
        while not self._stop.is_set():
            sched = t0 + (n + worker / self.threads) * period
            if sched - t0 >= self.seconds:
                break
            cls, path, headers, sub = self._request(rng, n)
            now = time.monotonic()
            if sched > now:
                time.sleep(sched - now)
            else:
                worst = max(worst, now - sched)
            wall = time.time()
            status, err = 0, ""
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as e:
                err = f"{type(e).__name__}: {e}"[:120]
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=self.timeout)
            out.append(Record(cls, sched, wall, time.monotonic() - sched, status, sub, err))
            n += 1
        conn.close()
        behind.append(worst)

    def _sampler(self, t0: float, out: list[Sample]) -> None:
        envoy = self.stack.envoy
        assert envoy is not None
        while True:
            out.append(sample(envoy, time.monotonic() - t0))
            if self._stop.wait(1.0):
                break

    def run(self) -> SoakRun:
        envoy = self.stack.envoy
        assert envoy is not None
        run = SoakRun(seconds=self.seconds, rate=self.rate, warmup=self.warmup, mix=dict(self.mix),
                      started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.tokens.idp()
        t0 = time.monotonic() + 0.5
        per_thread: list[list[Record]] = [[] for _ in range(self.threads)]
        behind: list[float] = []
        clients = [threading.Thread(target=self._client, args=(w, t0, per_thread[w], behind), daemon=True)
                   for w in range(self.threads)]
        sampler = threading.Thread(target=self._sampler, args=(t0, run.samples), daemon=True)
        # The latency is the client's view, so a full collection of the pytest process's heap
        # (late in a whole-suite run it holds every earlier test's objects) would stall every
        # client thread at once and show up as Envoy's p99. The run creates no cycles.
        gc.collect()
        run.client_objects = len(gc.get_objects())
        was_enabled = gc.isenabled()
        gc.freeze()
        gc.disable()
        try:
            sampler.start()
            for c in clients:
                c.start()
            for c in clients:
                c.join(self.seconds + 60)
            self._stop.set()
            sampler.join(10)
        finally:
            gc.unfreeze()
            if was_enabled:
                gc.enable()
        run.records = sorted((r for rs in per_thread for r in rs), key=lambda r: r.sched)
        run.behind_s = max(behind, default=0.0)
        run.new_identities = self.tokens.new_identities
        run.envoy_problems = envoy.health_problems()
        return run


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def sample(envoy: Envoy, t: float) -> Sample:
    try:
        st = requests.get(envoy.admin_url("/stats?format=json"), timeout=5).json().get("stats", [])
        stats = {s["name"]: s["value"] for s in st if "value" in s}
    except (requests.RequestException, ValueError):
        stats = {}

    def stat(suffix: str) -> int:
        return int(sum(v for k, v in stats.items() if k.endswith(suffix)))

    return Sample(
        t=t, rss_kb=envoy.proc.rss_kb() if envoy.proc else 0,
        allocated=stat("server.memory_allocated"), heap=stat("server.memory_heap_size"),
        vm_created=stat("wasm.envoy.wasm.runtime.v8.created"),
        vm_active=stat("wasm.envoy.wasm.runtime.v8.active"),
        jwks_ok=stat("meshward.jwt_auth.provider=.=idp;.;jwks_fetch_success"),
        jwks_failed=stat("meshward.jwt_auth.provider=.=idp;.;jwks_fetch_failed"),
        key_space_full=stat("meshward.rate_limit.key_space_full"),
        cas_errors=stat("meshward.rate_limit.cas_contention") + stat("meshward.rate_limit.shared_data_error"),
    )
