//! The binary as a user runs it: exit codes, output, and a clear error for
//! each kind of bad input.

// A helper failing (no binary, no temp dir) is a broken test setup: fail loudly.
#![allow(clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn meshward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshward"))
        .args(args)
        .output()
        .expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn repo(path: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "..", path]
        .iter()
        .collect();
    p.to_string_lossy().into_owned()
}

fn tmp(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("meshward-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p.to_string_lossy().into_owned()
}

#[test]
fn every_documented_example_validates() {
    let mut files = Vec::new();
    for module in ["jwt-auth", "authz", "meshward"] {
        for e in std::fs::read_dir(repo(&format!("docs/examples/{module}"))).expect("examples") {
            files.push(e.expect("entry").path().to_string_lossy().into_owned());
        }
    }
    let args: Vec<&str> = std::iter::once("validate")
        .chain(files.iter().map(String::as_str))
        .collect();
    let o = meshward(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(text(&o).matches(": ok (").count(), files.len());
}

#[test]
fn a_broken_config_fails_with_its_field_path() {
    let bad = tmp(
        "bad.json",
        r#"{"rules": [{"name": "x", "limit": {"requests": 0, "per": "second"}}]}"#,
    );
    let good = tmp(
        "good.json",
        r#"{"rules": [{"name": "x", "limit": {"requests": 1, "per": "second"}}]}"#,
    );
    let o = meshward(&["validate", &good, &bad]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("good.json: ok (rate-limit config)"), "{out}");
    assert!(
        out.contains("bad.json: rate-limit config: rules[0].limit"),
        "{out}"
    );
    let suite = tmp(
        "suite.json",
        r#"{"authz": {"policies": [{"name": "p", "action": "MAYBE"}]}}"#,
    );
    let o = meshward(&["validate", &suite]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("suite config: authz.policies[0]"),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_invocations_say_what_is_wrong() {
    for (args, code, want) in [
        (vec![], 2, "a command is required"),
        (vec!["lint"], 2, "a command is required"),
        (vec!["validate"], 2, "at least one FILE"),
        (
            vec!["validate", "--module", "waf", "x.json"],
            2,
            "unknown module `waf`",
        ),
        (vec!["validate", "/nonexistent/x.json"], 1, "cannot read"),
        (vec!["explain", "--config"], 2, "--config needs a FILE"),
        (
            vec!["explain", "--config", "a.json"],
            2,
            "needs --config and --request",
        ),
    ] {
        let o = meshward(&args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
    }
    let not_json = tmp("not.json", "providers: {}");
    let o = meshward(&["validate", &not_json]);
    assert!(text(&o).contains("not a JSON document"), "{}", text(&o));
}

#[test]
fn explain_prints_the_decision_and_the_reply() {
    let req = tmp(
        "req.json",
        r#"{"method": "GET", "path": "/users/dev-admin/orders", "claims": {"iss": "https://dev.meshward.local", "sub": "dev-user"}}"#,
    );
    let cfg = repo("docs/examples/authz/bola.json");
    let o = meshward(&["explain", "--config", &cfg, "--request", &req]);
    assert!(o.status.success(), "{}", text(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON out");
    // dev-user asking for dev-admin's orders: the object-level check refuses
    assert_eq!(out["decision"], "deny", "{out}");
    assert_eq!(out["status"], 403, "{out}");
    assert_eq!(out["reason"], "no_allow_match", "{out}");
    assert!(
        out["why"]
            .as_str()
            .unwrap_or("")
            .contains("objects did not match"),
        "{out}"
    );
    let own = tmp(
        "own.json",
        r#"{"path": "/users/dev-user/orders", "claims": {"iss": "https://dev.meshward.local", "sub": "dev-user"}}"#,
    );
    let o = meshward(&["explain", "--config", &cfg, "--request", &own]);
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON out");
    assert_eq!(
        (out["decision"].as_str(), out["policy"].as_str()),
        (Some("allow"), Some("own-orders")),
        "{out}"
    );
    let bad = tmp("bad-req.json", "{");
    let o = meshward(&["explain", "--config", &cfg, "--request", &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("not a JSON document"), "{}", text(&o));
}

#[test]
fn wasmplugin_yaml_is_validated_document_by_document() {
    let shipped = [
        repo("istio-manifests/base/meshward.yaml"),
        repo("istio-manifests/single-filters/authz.yaml"),
        repo("istio-manifests/infra/idp-egress.yaml"),
    ];
    let args: Vec<&str> = std::iter::once("validate")
        .chain(shipped.iter().map(String::as_str))
        .collect();
    let o = meshward(&args);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("meshward.yaml#0 WasmPlugin meshward: ok (suite config)"),
        "{out}"
    );
    assert!(
        out.contains("idp-egress.yaml#0: skipped (ServiceEntry corp-idp: not a WasmPlugin)"),
        "{out}"
    );

    let bad = tmp(
        "plugins.yml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n\
         apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: edge}\n\
         spec:\n  url: oci://ghcr.io/meshward/meshward:0.1.0\n  pluginConfig:\n    authz:\n      policies: [{name: p, action: MAYBE}]\n",
    );
    let o = meshward(&["validate", &bad]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(
            "plugins.yml#1 WasmPlugin edge: suite config: spec.pluginConfig.authz.policies[0]"
        ),
        "{}",
        text(&o)
    );
    for (body, want) in [
        ("a: [1\n", "YAML: "),
        ("a: 1\na: 2\n", "duplicated key"),
        ("a: &x {b: 1}\nc: *x\n", "aliases (*name) are not supported"),
    ] {
        let f = tmp("broken.yaml", body);
        let o = meshward(&["validate", &f]);
        assert_eq!(o.status.code(), Some(1), "{body}: {}", text(&o));
        assert!(text(&o).contains(want), "{body}: {}", text(&o));
    }
}
