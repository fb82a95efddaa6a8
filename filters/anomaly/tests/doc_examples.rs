#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Every example config in docs/examples/anomaly, and every ```json block in
//! docs/anomaly.md, must be accepted by the config compiler, so the docs
//! cannot drift from the filter. (pytest checks the same files against the
//! JSON Schema.)

use anomaly::config::Config;

fn docs() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

#[test]
fn doc_example_files_compile() {
    let mut seen = 0;
    for entry in std::fs::read_dir(docs().join("examples/anomaly")).expect("examples dir") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if let Err(e) = Config::parse(&bytes) {
            panic!("{}: {e}", path.display());
        }
        seen += 1;
    }
    assert!(seen >= 3, "expected the documented examples, found {seen}");
}

#[test]
fn json_blocks_in_the_docs_page_compile() {
    let text = std::fs::read_to_string(docs().join("anomaly.md")).expect("docs/anomaly.md");
    let mut seen = 0;
    let mut rest = text.as_str();
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").expect("unterminated block");
        if let Err(e) = Config::parse(&body.as_bytes()[..end]) {
            panic!("docs/anomaly.md block #{seen}: {e}\n{}", &body[..end]);
        }
        seen += 1;
        rest = &body[end + 3..];
    }
    assert!(seen >= 1, "no json blocks in docs/anomaly.md");
}
