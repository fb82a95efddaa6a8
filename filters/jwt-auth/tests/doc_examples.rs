//! Every example config in docs/examples/jwt-auth must compile, so the docs
//! cannot drift from the filter. (Schema validity is checked by pytest.)

use jwt_auth::config::Config;

#[test]
fn doc_examples_compile() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/jwt-auth");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("examples dir") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if let Err(e) = Config::from_json(&bytes) {
            panic!("{}: {e}", path.display());
        }
        seen += 1;
    }
    assert!(seen >= 4, "expected the documented examples, found {seen}");
}
