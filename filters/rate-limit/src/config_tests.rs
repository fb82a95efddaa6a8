use super::*;
use serde_json::json;

fn err(v: serde_json::Value) -> ConfigError {
    match Config::from_json(v.to_string().as_bytes()) {
        Ok(_) => panic!("accepted: {v}"),
        Err(e) => e,
    }
}

fn ok(v: serde_json::Value) -> Config {
    match Config::from_json(v.to_string().as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn minimal_config_defaults() {
    let c = ok(json!({"rules": [{"name": "all", "limit": {"requests": 10, "per": "second"}}]}));
    assert_eq!(c.max_keys, 10_000);
    assert_eq!(c.domain, "meshward");
    assert!(!c.match_all && !c.needs_identity);
    // lease admission by default: leases go back on tick
    assert_eq!(c.admission, Admission::Lease);
    assert_eq!(c.lease, LeaseConfig::default());
    assert_eq!((c.lease.max, c.lease.lifetime_ms), (64, 100));
    assert!(c.needs_tick);
    let r = &c.rules[0];
    assert_eq!(r.mode, Mode::Local);
    let Limits::Single(s) = &r.limits else {
        panic!()
    };
    assert_eq!(s.limit.algorithm, Algorithm::TokenBucket);
    assert_eq!(
        (s.limit.requests, s.limit.period_ms, s.limit.burst),
        (10, 1000, 10)
    );
    assert_eq!(s.unit, Some(Unit::Second));
}

#[test]
fn errors_name_the_field_path() {
    let cases = [
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "fortnight"}}]}),
            "rules[0].limit.per",
        ),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 0, "per": "second"}}]}),
            "rules[0].limit.requests",
        ),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second", "burts": 2}}]}),
            "rules[0].limit.burts",
        ),
        (
            json!({"rules": [{"name": "a", "mode": "global", "limit": {"requests": 1, "per": "second"}}]}),
            "rules[0].mode",
        ),
        (
            json!({"rules": [{"name": "a", "key": [{"identity": "email"}], "limit": {"requests": 1, "per": "second"}}]}),
            "rules[0].key[0].identity",
        ),
        (
            json!({"rules": [{"name": "a", "key": [{"source_ip": {"ipv4_prefix": 33}}], "limit": {"requests": 1, "per": "second"}}]}),
            "rules[0].key[0].source_ip.ipv4_prefix",
        ),
        (
            json!({"rules": [{"name": "a", "key": [{"path_template": "/a/{**}/{*}"}], "limit": {"requests": 1, "per": "second"}}]}),
            "rules[0].key[0].path_template",
        ),
        (
            json!({"rules": [{"name": "a", "throttle": {"max_delay": "1s"}, "limit": {"requests": 1, "per": "second", "algorithm": "fixed_window"}}]}),
            "rules[0].throttle",
        ),
        (
            json!({"rules": [{"name": "a", "cost": 5, "limit": {"requests": 10, "per": "second", "burst": 2}}]}),
            "rules[0].cost",
        ),
        (
            json!({"rules": [{"name": "a", "tiers": {"claim": "plan", "limits": {"free": {"requests": 1, "per": "eon"}}}}]}),
            "rules[0].tiers.limits.free.per",
        ),
        (json!({"rules": [{"name": "a"}]}), "rules[0].limit"),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}, {"name": "a", "limit": {"requests": 1, "per": "second"}}]}),
            "rules[1].name",
        ),
        (json!({"rules": []}), "rules"),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "max_keys": 0}),
            "max_keys",
        ),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "hybrid": {"share": 0}}),
            "hybrid.share",
        ),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "deny_response": {"status": 99}}),
            "deny_response.status",
        ),
        (
            json!({"rules": [{"name": "a", "match": {"prefix": "x"}, "limit": {"requests": 1, "per": "second"}}]}),
            "rules[0].match.prefix",
        ),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "rate_limit_service": {"cluster": "rls", "timeout": "5"}}),
            "rate_limit_service.timeout",
        ),
        (
            json!({"rules": [{"name": "a", "mode": "global", "limit": {"requests": 1, "per": "7s"}}], "rate_limit_service": {"cluster": "rls"}}),
            "rules[0].limit.per",
        ),
        (
            json!({"rules": [{"name": "a", "mode": "global", "limit": {"requests": 1, "per": "second"}}], "rate_limit_service": {"cluster": "c".repeat(126)}}),
            "rate_limit_service.cluster",
        ),
        (
            json!({"rules": [{"name": "a", "mode": "hybrid", "limit": {"requests": 1, "per": "month"}}], "rate_limit_service": {"cluster": "rls"}}),
            "rules[0].limit.per",
        ),
        (
            json!({"rules": [{"name": "a", "mode": "global", "limit": {"requests": 1, "per": "second", "algorithm": "gcra"}}], "rate_limit_service": {"cluster": "rls"}}),
            "rules[0].limit.algorithm",
        ),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "admission": "batched"}),
            "admission",
        ),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "lease": {"max": 0}}),
            "lease.max",
        ),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "lease": {"max": 2_000_000}}),
            "lease.max",
        ),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "lease": {"lifetime": "0.001s"}}),
            "lease.lifetime",
        ),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "lease": {"lifetime": "100ms"}}),
            "lease.lifetime",
        ),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "lease": {"size": 4}}),
            "lease.size",
        ),
        (
            json!({"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "admission": "per_request", "lease": {"max": 4}}),
            "lease",
        ),
    ];
    for (cfg, path) in cases {
        let e = err(cfg.clone());
        assert_eq!(e.path, path, "{cfg}: {e}");
    }
}

#[test]
fn tiers_and_modes_compile() {
    let c = ok(json!({
        "mode": "global",
        "rate_limit_service": {"cluster": "rls", "timeout": "0.05s", "failure_mode_deny": false},
        "match_all": true,
        "rules": [
            {"name": "plan", "key": [{"identity": "sub"}],
             "tiers": {"claim": "plan", "limits": {"free": {"requests": 10, "per": "minute"},
                                                    "gold": {"requests": 1000, "per": "minute"}}}},
            {"name": "burst", "mode": "local", "throttle": {"max_delay": "0.5s"},
             "limit": {"requests": 5, "per": "second", "algorithm": "gcra"}},
            {"name": "quota", "limit": {"requests": 100000, "per": "month"}}
        ]
    }));
    assert!(c.needs_identity && c.needs_tick && c.match_all);
    assert_eq!(
        c.rls.as_ref().map(|r| (r.timeout_ms, r.failure_mode_deny)),
        Some((50, false))
    );
    assert_eq!(c.rules[0].mode, Mode::Global);
    assert_eq!(c.rules[1].max_delay_ms, 500);
    assert_eq!(
        c.rules[0]
            .limits
            .pick(Some("gold"))
            .map(|s| s.limit.requests),
        Some(1000)
    );
    assert_eq!(c.rules[0].limits.pick(Some("silver")), None);
    assert_eq!(c.rules[0].limits.pick(None), None);
    let Limits::Single(q) = &c.rules[2].limits else {
        panic!()
    };
    assert_eq!(q.unit, Some(Unit::Month));
    assert_eq!(q.limit.algorithm, Algorithm::FixedWindow);
}

#[test]
fn tier_default_from_limit() {
    let c = ok(
        json!({"rules": [{"name": "t", "limit": {"requests": 3, "per": "minute"},
        "tiers": {"claim": "plan", "limits": {"gold": {"requests": 30, "per": "minute"}}}}]}),
    );
    assert_eq!(
        c.rules[0]
            .limits
            .pick(Some("bronze"))
            .map(|s| s.limit.requests),
        Some(3)
    );
    assert_eq!(
        c.rules[0]
            .limits
            .pick(Some("gold"))
            .map(|s| s.limit.requests),
        Some(30)
    );
}

#[test]
fn admission_modes_compile() {
    let c = ok(
        json!({"admission": "lease", "lease": {"max": 8, "lifetime": "2.5s"},
                      "rules": [{"name": "a", "limit": {"requests": 10, "per": "second"}}]}),
    );
    assert_eq!(c.admission, Admission::Lease);
    assert_eq!((c.lease.max, c.lease.lifetime_ms), (8, 2500));
    let c = ok(json!({"admission": "per_request",
                      "rules": [{"name": "a", "limit": {"requests": 10, "per": "second"}}]}));
    assert_eq!(c.admission, Admission::PerRequest);
    // per-request local rules need no tick
    assert!(!c.needs_tick);
}
