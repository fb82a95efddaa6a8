use super::*;
use crate::facts::{RequestFacts, Sources};
use crate::fake::FakeHost;

fn host() -> FakeHost {
    let h = FakeHost::default();
    h.set_headers(&[(":path", "/a"), (":method", "GET"), ("x-tenant", "t1")]);
    h
}

#[test]
fn a_header_is_read_from_the_host_once_whichever_stage_asks() {
    let h = host();
    let memo = RequestMemo::new(false);
    let m = MemoHost::new(&h, &memo);
    assert_eq!(m.request_header(":path").as_deref(), Some("/a"));
    assert_eq!(m.request_header(":PATH").as_deref(), Some("/a"));
    assert_eq!(m.request_header("absent"), None);
    assert_eq!(m.request_header("absent"), None);
    assert_eq!(h.reads(), vec!["header :path", "header absent"]);
}

#[test]
fn writes_update_the_view_and_reach_the_host() {
    let h = host();
    let memo = RequestMemo::new(false);
    let m = MemoHost::new(&h, &memo);
    assert_eq!(m.request_header("x-tenant").as_deref(), Some("t1"));
    m.set_request_header("x-tenant", Some("t2")).unwrap();
    assert_eq!(m.request_header("x-tenant").as_deref(), Some("t2"));
    m.set_request_header("x-tenant", None).unwrap();
    assert_eq!(m.request_header("x-tenant"), None);
    // an added value may not be the first one: asked again, it is read again
    m.add_request_header("x-tenant", "t3").unwrap();
    assert_eq!(m.request_header("x-tenant").as_deref(), Some("t3"));
    assert_eq!(h.reads(), vec!["header x-tenant", "header x-tenant"]);
    assert_eq!(h.header_count("x-tenant"), 1);
}

#[test]
fn the_header_list_is_read_once_and_answers_single_reads() {
    let h = host();
    let memo = RequestMemo::new(false);
    let m = MemoHost::new(&h, &memo);
    assert_eq!(m.request_headers().len(), 3);
    assert_eq!(m.request_header(":method").as_deref(), Some("GET"));
    assert_eq!(m.request_headers().len(), 3);
    assert_eq!(h.reads(), vec!["headers"]);
    m.set_request_header("x-new", Some("1")).unwrap();
    assert_eq!(m.request_headers().len(), 4);
    assert_eq!(h.reads(), vec!["headers", "headers"]);
}

#[test]
fn a_property_is_read_once_and_a_write_is_seen() {
    let h = host();
    h.put_property(&["source", "address"], b"10.0.0.1:5");
    let memo = RequestMemo::new(false);
    let m = MemoHost::new(&h, &memo);
    assert_eq!(
        m.property(&["source", "address"]).as_deref(),
        Some(&b"10.0.0.1:5"[..])
    );
    assert_eq!(
        m.property(&["source", "address"]).as_deref(),
        Some(&b"10.0.0.1:5"[..])
    );
    assert_eq!(m.property(&["source", "port"]), None);
    m.set_property(&["x"], b"1").unwrap();
    assert_eq!(m.property(&["x"]).as_deref(), Some(&b"1"[..]));
    assert_eq!(h.raw_property("x").as_deref(), Some(&b"1"[..]));
    assert_eq!(
        h.reads(),
        vec!["property source.address", "property source.port"]
    );
}

fn identity(sub: &str) -> Rc<Identity> {
    Rc::new(Identity {
        provider: "p".into(),
        issuer: "https://idp".into(),
        subject: sub.into(),
        ..Identity::default()
    })
}

#[test]
fn the_identity_goes_to_the_next_stage_in_memory_and_to_filter_state_only_when_asked() {
    let h = host();
    let memo = RequestMemo::new(true);
    let m = MemoHost::new(&h, &memo);
    assert!(!m.writes_outputs_by_default());
    let id = identity("alice");
    m.publish_identity(&id, b"{\"subject\":\"alice\"}", false)
        .unwrap();
    assert_eq!(h.raw_property(FILTER_STATE_KEY), None);
    let src = Sources::default();
    let facts = RequestFacts::new(&m, &src);
    assert_eq!(facts.identity().map(|i| i.subject.as_str()), Some("alice"));
    assert!(h.reads().is_empty(), "{:?}", h.reads());

    let memo = RequestMemo::new(true);
    let m = MemoHost::new(&h, &memo);
    m.publish_identity(&id, b"{\"subject\":\"alice\"}", true)
        .unwrap();
    assert_eq!(
        h.raw_property(FILTER_STATE_KEY).as_deref(),
        Some(&b"{\"subject\":\"alice\"}"[..])
    );
}

#[test]
fn with_an_authenticating_stage_no_identity_means_none_without_asking_envoy() {
    let h = host();
    // a stale value an earlier filter left: the module's own stage decides
    h.put_property(&[FILTER_STATE_KEY], b"{\"subject\":\"mallory\"}");
    let src = Sources::default();
    let memo = RequestMemo::new(true);
    let m = MemoHost::new(&h, &memo);
    assert!(RequestFacts::new(&m, &src).identity().is_none());
    assert!(h.reads().is_empty());

    // without one, filter state is read, as by a standalone filter
    let memo = RequestMemo::new(false);
    let m = MemoHost::new(&h, &memo);
    let facts = RequestFacts::new(&m, &src);
    assert!(facts.identity().is_none(), "not an Identity document");
    assert_eq!(h.reads(), vec![format!("property {FILTER_STATE_KEY}")]);
}
