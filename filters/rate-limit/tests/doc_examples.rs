//! Every config example in docs/rate-limit.md (a ```json block after an
//! `<!-- example -->` marker) must compile, so the docs cannot drift from the
//! filter. (Schema validity is checked by pytest.)

use rate_limit::config::Config;

fn examples(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find("<!-- example -->") {
        rest = &rest[i..];
        let Some(start) = rest.find("```json\n") else {
            break;
        };
        let body = &rest[start + 8..];
        let Some(end) = body.find("```") else { break };
        out.push(body[..end].to_string());
        rest = &body[end..];
    }
    out
}

#[test]
fn doc_examples_compile() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rate-limit.md");
    let doc = std::fs::read_to_string(path).expect("docs/rate-limit.md");
    let found = examples(&doc);
    assert!(
        found.len() >= 5,
        "expected the documented examples, found {}",
        found.len()
    );
    for (i, ex) in found.iter().enumerate() {
        if let Err(e) = Config::from_json(ex.as_bytes()) {
            panic!("example {i}: {e}\n{ex}");
        }
    }
}
