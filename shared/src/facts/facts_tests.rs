use super::*;
use crate::fake::FakeHost;

fn host(headers: &[(&str, &str)]) -> FakeHost {
    let h = FakeHost::at(1_700_000_000);
    h.set_headers(headers);
    h
}

#[test]
fn each_fact_is_read_once_and_only_when_asked() {
    let h = host(&[
        (":path", "/a/../b?x=1&y=2"),
        (":method", "GET"),
        ("x-a", "1"),
    ]);
    let src = Sources::default();
    let f = RequestFacts::new(&h, &src);
    assert!(h.reads().is_empty(), "nothing is read up front");
    assert_eq!(f.path(), Ok("/b"));
    assert_eq!(f.path(), Ok("/b"));
    assert_eq!(f.query(), Some("x=1&y=2"));
    assert_eq!(f.query_param("y"), Some("2"));
    assert_eq!(f.raw_target(), "/a/../b?x=1&y=2");
    assert_eq!(h.reads(), ["header :path"]);
    assert_eq!(f.method(), "GET");
    assert_eq!(f.method(), "GET");
    assert_eq!(f.header("x-a"), Some("1"));
    assert_eq!(f.header("x-b"), None);
    assert_eq!(h.reads(), ["header :path", "header :method", "headers"]);
}

#[test]
fn repeated_headers_keep_every_value() {
    let h = host(&[("x-role", "user"), ("X-Role", "admin"), ("x-empty", "")]);
    let src = Sources::default();
    let f = RequestFacts::new(&h, &src);
    assert_eq!(
        f.header_values("x-role").collect::<Vec<_>>(),
        ["user", "admin"]
    );
    assert_eq!(f.header("x-empty"), Some(""));
}

#[test]
fn ambiguous_paths_are_errors_unless_envoy_is_trusted() {
    let h = host(&[(":path", "/a%2Fb")]);
    let src = Sources::default();
    assert_eq!(
        RequestFacts::new(&h, &src).path(),
        Err(PathError::EncodedSeparator)
    );
    let trust = Sources {
        path: PathNormalization::Envoy,
        ..Sources::default()
    };
    assert_eq!(RequestFacts::new(&h, &trust).path(), Ok("/a%2Fb"));
}

#[test]
fn peer_comes_from_filter_state_not_from_headers() {
    let h = host(&[("x-forwarded-for", "9.9.9.9")]);
    h.put_property(&["source", "address"], b"9.9.9.9:0");
    h.put_property(&["filter_state", PEER_FILTER_STATE], b"10.0.0.7");
    let src = Sources::default();
    let f = RequestFacts::new(&h, &src);
    assert_eq!(f.peer_ip(), "10.0.0.7".parse().ok());
    // remote.ip is Envoy's derived address.
    assert_eq!(f.client_ip(), "9.9.9.9".parse().ok());
    let direct = Sources {
        peer: PeerSource::SourceAddress,
        ..Sources::default()
    };
    assert_eq!(
        RequestFacts::new(&h, &direct).peer_ip(),
        "9.9.9.9".parse().ok()
    );
}

#[test]
fn trusted_hops_follow_envoys_rule_and_fall_back_to_the_peer() {
    let h = host(&[
        ("x-forwarded-for", "203.0.113.9, 10.0.0.1"),
        ("x-forwarded-for", "10.0.0.2"),
    ]);
    h.put_property(&["filter_state", PEER_FILTER_STATE], b"10.0.0.2");
    let with = |hops| Sources {
        xff_num_trusted_hops: Some(hops),
        ..Sources::default()
    };
    let at = |hops| {
        let s = with(hops);
        RequestFacts::new(&h, &s).client_ip()
    };
    assert_eq!(at(0), "10.0.0.2".parse().ok());
    assert_eq!(at(1), "10.0.0.1".parse().ok());
    assert_eq!(at(2), "203.0.113.9".parse().ok());
    assert_eq!(at(3), "10.0.0.2".parse().ok(), "too few entries: the peer");
    let bad = host(&[("x-forwarded-for", "1.2.3.4:80")]);
    bad.put_property(&["filter_state", PEER_FILTER_STATE], b"10.0.0.9");
    let s = with(0);
    assert_eq!(
        RequestFacts::new(&bad, &s).client_ip(),
        "10.0.0.9".parse().ok()
    );
}

#[test]
fn identity_from_jwt_authn_keeps_types() {
    let h = host(&[]);
    let src = Sources {
        meshward_identity: true,
        jwt_authn: Some(JwtAuthnSource {
            filter: "f".into(),
            payload_key: "p".into(),
        }),
        ..Sources::default()
    };
    assert!(RequestFacts::new(&h, &src).identity().is_none());
    let claims = serde_json::json!({"iss": "j", "sub": "al", "n": 5, "o": {"a": ""}});
    let claims = claims.as_object().cloned().unwrap_or_default();
    h.put_property(&["metadata"], &metadata::encode_payload("f", "p", &claims));
    let f = RequestFacts::new(&h, &src);
    let id = f.identity().unwrap();
    assert_eq!(
        (id.provider.as_str(), id.subject.as_str()),
        ("jwt_authn", "al")
    );
    assert_eq!(id.claims, claims, "types survive");
    let mut id = Identity::from_claims(
        "corp",
        serde_json::json!({"iss": "i", "sub": "s"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    id.write(&h).unwrap();
    let f = RequestFacts::new(&h, &src);
    assert_eq!(f.identity().map(|i| i.subject.as_str()), Some("s"));
    id.subject = "changed".into();
    assert_eq!(
        f.identity().map(|i| i.subject.as_str()),
        Some("s"),
        "read once"
    );
}
