//! Every example config in docs/examples/meshward must configure the suite,
//! so the docs cannot drift from the module. (Schema validity is checked by pytest.)

use meshward::root::configure;
use meshward_shared::fake::FakeHost;

#[test]
fn doc_examples_configure_the_suite() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/meshward");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("examples dir") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let host = FakeHost::default();
        if configure(&host, &bytes).is_none() {
            panic!("{}: {:?}", path.display(), host.logs());
        }
        seen += 1;
    }
    assert!(seen >= 3, "expected the documented examples, found {seen}");
}
