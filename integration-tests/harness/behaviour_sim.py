"""Seeded traffic simulator for the anomaly filter's behaviour detectors.

It writes a trace of requests with their own (fake) clock: benign traffic of
many identities over several days, plus one injected scenario per behaviour
detector. The trace is replayed through the behaviour core by the
`behaviour_replay` example (days of traffic in seconds), and the same
scenario shapes drive a real Envoy in test_anomaly_behaviour.py.

Benign identities follow their own habits, which is what the detectors learn:
- a timezone and working hours (office users on weekdays; service accounts
  around the clock at a steady rate);
- sessions of 3-40 requests a few seconds apart, a few sessions an hour;
- 4-12 path templates drawn from an API catalogue, with a skew toward a few;
- their own pool of 5-40 objects, read at random;
- one home network (/24) and country; 3% of sessions come from a second
  network (mobile), 0.3% of identities travel to a second country;
- about 2.5% of responses are errors (404, 409, 422), clustered a little.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# 2026-11-30 00:00 UTC, a Monday.
T0_MS = 1_795_996_800_000

CATALOGUE = [
    ("GET", "/v1/orders"), ("GET", "/v1/orders/{id}"), ("POST", "/v1/orders"),
    ("PUT", "/v1/orders/{id}"), ("GET", "/v1/orders/{id}/items"),
    ("GET", "/v1/invoices"), ("GET", "/v1/invoices/{id}"), ("GET", "/v1/invoices/{id}/pdf"),
    ("GET", "/v1/customers/{id}"), ("PATCH", "/v1/customers/{id}"),
    ("GET", "/v1/products"), ("GET", "/v1/products/{id}"), ("GET", "/v1/search?q=shoes"),
    ("GET", "/v1/me"), ("PUT", "/v1/me/settings"), ("GET", "/v1/notifications"),
    ("POST", "/v1/payments"), ("GET", "/v1/payments/{id}"), ("GET", "/v1/reports/daily"),
    ("GET", "/v1/shipments/{id}"), ("POST", "/v1/shipments"), ("GET", "/v1/carts/{id}"),
    ("POST", "/v1/carts/{id}/items"), ("DELETE", "/v1/carts/{id}/items/{id}"),
]
HIDDEN = ["/v1/admin/users", "/v1/admin/audit", "/internal/debug/vars", "/v1/admin/keys",
          "/v1/export/all", "/internal/metrics", "/v1/admin/config", "/v1/users",
          "/v1/admin/impersonate", "/v1/billing/ledger"]
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "PL", "ES", "IT", "SE", "JP", "BR", "IN"]


@dataclass
class Identity:
    name: str
    tz: int                 # hours east of UTC
    service: bool           # a machine client, busy around the clock
    start_h: int
    end_h: int
    templates: list
    weights: list
    objects: list
    net: str                # "a.b.c" (/24)
    mobile_net: str
    country: str
    travel_country: str | None
    sessions_per_hour: float
    rng: random.Random = field(repr=False, default=None)


def _ident(rng: random.Random, i: int) -> Identity:
    service = rng.random() < 0.15
    k = rng.randint(4, 12)
    templates = rng.sample(CATALOGUE, k)
    weights = [1.0 / (j + 1) for j in range(k)]
    first = rng.randint(1, 9_000_000)
    return Identity(
        name=f"user-{i:05d}",
        tz=rng.choice([-8, -5, 0, 1, 1, 2, 3, 5, 9]),
        service=service,
        start_h=rng.randint(7, 10),
        end_h=rng.randint(16, 19),
        templates=templates,
        weights=weights,
        objects=[first + rng.randint(0, 50_000) for _ in range(rng.randint(5, 40))],
        net=f"{rng.randint(11, 199)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
        mobile_net=f"{rng.randint(11, 199)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
        country=rng.choice(COUNTRIES),
        travel_country=rng.choice(COUNTRIES) if rng.random() < 0.003 else None,
        sessions_per_hour=rng.uniform(0.5, 2.0) if service else rng.uniform(0.5, 3.0),
        rng=random.Random(rng.random()),
    )


def _fill(path: str, objects: list, rng: random.Random) -> str:
    while "{id}" in path:
        path = path.replace("{id}", str(rng.choice(objects)), 1)
    return path


def _active(ident: Identity, t_ms: int) -> bool:
    if ident.service:
        return True
    local = t_ms + ident.tz * HOUR_MS
    hour = (local // HOUR_MS) % 24
    day = (local // DAY_MS + 4) % 7  # 0 = Sunday
    if day in (0, 6):
        return ident.rng.random() < 0.03  # the odd weekend check
    return ident.start_h <= hour < ident.end_h


def _session(ident: Identity, t: int, travelling: bool, events: list, tag=None) -> None:
    rng = ident.rng
    mobile = rng.random() < 0.03
    net = ident.mobile_net if mobile else ident.net
    country = ident.travel_country if travelling else ident.country
    errors_left = 2 if rng.random() < 0.05 else 0
    for _ in range(rng.randint(3, 40)):
        m, tpl = rng.choices(ident.templates, ident.weights)[0]
        status = 200
        if errors_left or rng.random() < 0.02:
            status = rng.choice([404, 409, 422])
            errors_left = max(0, errors_left - 1)
        events.append({
            "t": t, "id": ident.name, "src": f"{net}.{rng.randint(2, 250)}",
            "country": country, "m": m, "p": _fill(tpl, ident.objects, rng),
            "status": status, "scenario": tag,
        })
        t += rng.randint(800, 9_000)


@dataclass
class Scenario:
    name: str
    rule: str
    identity: str
    start_ms: int
    window_s: int           # documented: flagged within this many seconds


def generate(seed: int = 1, identities: int = 200, days: int = 9) -> tuple[list, list]:
    """Benign events for `days` days, then the six scenarios on day `days`-1.
    Returns (events sorted by time, scenarios)."""
    rng = random.Random(seed)
    people = [_ident(rng, i) for i in range(identities)]
    events: list = []
    end = T0_MS + days * DAY_MS
    for p in people:
        t = T0_MS + rng.randint(0, HOUR_MS)
        travel_from = T0_MS + rng.randint(3, days - 1) * DAY_MS
        while t < end:
            gap = int(rng.expovariate(p.sessions_per_hour) * HOUR_MS)
            t += max(gap, 60_000)
            if t < end and _active(p, t):
                _session(p, t, p.travel_country is not None and t >= travel_from, events)
    scenarios = _inject(rng, people, events, T0_MS + (days - 1) * DAY_MS)
    events.sort(key=lambda e: e["t"])
    return events, scenarios


def _office(people, rng):
    """An office identity (weekday hours), for scenarios that need one."""
    return rng.choice([p for p in people if not p.service])


def _inject(rng, people, events, day_ms) -> list:
    out = []
    used = set()

    def pick(office=False):
        while True:
            p = _office(people, rng) if office else rng.choice(people)
            if p.name not in used:
                used.add(p.name)
                return p

    def working_time(p):
        # 11:00 local on this (week)day, inside every office identity's hours.
        return day_ms + (11 - p.tz) * HOUR_MS

    def req(p, t, path, status=200, m="GET", src=None, country=None, tag=None):
        events.append({"t": t, "id": p.name, "src": src or f"{p.net}.{rng.randint(2, 250)}",
                       "country": country or p.country, "m": m, "p": path,
                       "status": status, "scenario": tag})

    # 1. Rate spike: a stolen token scripted at 20 req/s for 30 s, known paths.
    p = pick()
    t = working_time(p) + 15 * 60_000
    out.append(Scenario("rate-spike", "behaviour.rate-spike", p.name, t, 10))
    for i in range(600):
        m, tpl = rng.choice(p.templates)
        req(p, t + i * 50, _fill(tpl, p.objects, rng), m=m, tag="rate-spike")

    # 2. Error burst: credential or permission probing, 401/403 every 1.5 s.
    p = pick()
    t = working_time(p) + 25 * 60_000
    out.append(Scenario("error-burst", "behaviour.error-burst", p.name, t, 60))
    for i in range(40):
        m, tpl = rng.choice(p.templates)
        req(p, t + i * 1500, _fill(tpl, p.objects, rng), m=m,
            status=rng.choice([401, 403]), tag="error-burst")

    # 3. New paths: the token tries endpoints it never used.
    p = pick()
    t = working_time(p) + 35 * 60_000
    out.append(Scenario("new-paths", "behaviour.new-path", p.name, t, 5))
    for i, path in enumerate(HIDDEN):
        req(p, t + i * 3000, path, tag="new-paths")

    # 4. New address and country: the token replayed from elsewhere.
    p = pick()
    t = working_time(p) + 45 * 60_000
    country = next(c for c in COUNTRIES if c not in (p.country, p.travel_country))
    out.append(Scenario("new-country", "behaviour.new-country", p.name, t, 5))
    for i in range(5):
        m, tpl = rng.choice(p.templates)
        req(p, t + i * 2000, _fill(tpl, p.objects, rng), m=m,
            src=f"198.51.100.{10 + i}", country=country, tag="new-country")

    # 5. Off-hours: an office identity at 03:00 local on Saturday.
    p = pick(office=True)
    sat = day_ms - ((day_ms // DAY_MS + 4) % 7) * DAY_MS + 6 * DAY_MS
    t = sat + (3 - p.tz) * HOUR_MS
    if t < day_ms:  # keep it after the learning; the next Saturday if needed
        t += 7 * DAY_MS
    out.append(Scenario("off-hours", "behaviour.off-hours", p.name, t, 5))
    for i in range(8):
        m, tpl = rng.choice(p.templates)
        req(p, t + i * 4000, _fill(tpl, p.objects, rng), m=m, tag="off-hours")

    # 6. Enumeration (BOLA probing): invoice ids walked at 2 req/s.
    p = pick()
    t = working_time(p) + 55 * 60_000
    out.append(Scenario("enumeration", "behaviour.enumeration", p.name, t, 30))
    base = rng.randint(100_000, 900_000)
    for i in range(120):
        req(p, t + i * 500, f"/v1/invoices/{base + i}", tag="enumeration")
    return out


def write_trace(events: list, path: Path) -> None:
    with path.open("w") as f:
        for e in events:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")


def evaluate(events: list, scenarios: list, findings: list, learning_ms: int,
             detection_threshold: int = 3) -> dict:
    """Scenario detection delays and benign false alerts from replay output."""
    by_index = {f["i"]: f for f in findings if "i" in f}
    result = {"scenarios": {}, "benign": {}}
    for s in scenarios:
        delay = None
        for i, e in enumerate(events):
            if e.get("scenario") != s.name:
                continue
            f = by_index.get(i)
            if f and s.rule in f["rules"]:
                delay = (e["t"] - s.start_ms) / 1000
                break
        result["scenarios"][s.name] = {"rule": s.rule, "delay_s": delay,
                                       "window_s": s.window_s}
    benign = 0
    alerts = 0
    detected = 0
    per_rule: dict = {}
    start = events[0]["t"] + learning_ms if events else 0
    for i, e in enumerate(events):
        if e.get("scenario") is not None or e["t"] < start:
            continue
        benign += 1
        f = by_index.get(i)
        if f:
            alerts += 1
            detected += f.get("points", 0) >= detection_threshold
            for r in f["rules"]:
                per_rule[r] = per_rule.get(r, 0) + 1
    result["benign"] = {"requests": benign, "alerts": alerts,
                        "per_10k": round(alerts * 10_000 / max(benign, 1), 2),
                        "detected": detected,
                        "detected_per_10k": round(detected * 10_000 / max(benign, 1), 2),
                        "by_rule": per_rule}
    return result
