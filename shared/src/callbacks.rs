//! The per-stream callbacks a filter implements, recorded in the module.
//!
//! Envoy calls a stream callback only when the module exports it, and every
//! call into V8 costs about 0.7 µs on our machines (docs/performance.md). The
//! proxy-wasm SDK exports all of them, so `tools/wasm-trim` reads the list
//! declared here (custom section [`SECTION`]) and removes the exports of the
//! others at build time.

/// Name of the custom section holding the newline-separated callback names.
pub const SECTION: &str = "meshward.callbacks";

/// Every per-stream HTTP callback, as declared (`proxy_on_` + name is the export).
pub const STREAM: &[&str] = &[
    "request_headers",
    "request_body",
    "request_trailers",
    "request_metadata",
    "response_headers",
    "response_body",
    "response_trailers",
    "response_metadata",
    "log",
    "done",
];

/// Declare the stream callbacks this filter implements, e.g.
/// `meshward_shared::stream_callbacks!("request_headers", "done");`.
/// Also defines `pub const STREAM_CALLBACKS: &[&str]` for tests.
#[macro_export]
macro_rules! stream_callbacks {
    ($($name:literal),+ $(,)?) => {
        /// The per-stream callbacks this module keeps exported (see `meshward_shared::callbacks`).
        pub const STREAM_CALLBACKS: &[&str] = &[$($name),+];
        const _: () = {
            const TEXT: &str = concat!($($name, "\n"),+);
            #[used]
            #[link_section = "meshward.callbacks"]
            static CALLBACKS: [u8; TEXT.len()] = {
                let src = TEXT.as_bytes();
                let mut out = [0u8; TEXT.len()];
                let mut i = 0;
                while i < src.len() {
                    out[i] = src[i];
                    i += 1;
                }
                out
            };
        };
    };
}

/// The unit test every filter carries: fails when the glue (the source text
/// given, e.g. `concat!(include_str!("filter.rs"), include_str!("root.rs"))`)
/// implements a stream callback missing from its `stream_callbacks!`.
#[macro_export]
macro_rules! test_stream_callbacks_declared {
    ($glue:expr) => {
        #[test]
        fn every_stream_callback_the_glue_implements_is_declared_for_wasm_trim() {
            let missing = $crate::callbacks::undeclared($glue, super::STREAM_CALLBACKS);
            assert!(
                missing.is_empty(),
                "implemented but not in stream_callbacks!: {missing:?}"
            );
        }
    };
}

/// Check a declaration against the callbacks a filter's source implements
/// (`fn on_http_<name>` / `fn on_log` / `fn on_done`): an implemented but
/// undeclared callback would silently never run once trimmed.
pub fn undeclared(source: &str, declared: &[&str]) -> Vec<String> {
    let mut missing = Vec::new();
    for name in STREAM {
        let method = match *name {
            "log" | "done" => format!("fn on_{name}("),
            other => format!("fn on_http_{other}("),
        };
        if source.contains(&method) && !declared.contains(name) {
            missing.push((*name).to_string());
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_an_implemented_callback_that_is_not_declared() {
        let src = "impl HttpContext for F {\n fn on_http_request_headers(&mut self) {}\n fn on_http_response_headers(&mut self) {}\n}\nfn on_done(&mut self) -> bool { true }";
        assert_eq!(
            undeclared(src, &["request_headers"]),
            vec!["response_headers".to_string(), "done".to_string()]
        );
        assert!(undeclared(src, &["request_headers", "response_headers", "done"]).is_empty());
    }

    #[test]
    fn unknown_names_are_not_stream_callbacks() {
        assert!(!STREAM.contains(&"tick"));
        assert!(STREAM.iter().all(|n| !n.starts_with("proxy_on_")));
    }
}
