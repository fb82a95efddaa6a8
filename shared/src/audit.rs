//! One structured JSON line per decision, logged by Envoy's wasm logger.
//! Carries the request id and a reason code; callers must never put a token
//! or secret in it (nothing here reads the Authorization header).

use proxy_wasm::types::LogLevel;
use serde_json::{Map, Value};

use crate::host::Host;

pub const MARKER: &str = "meshward_audit";

#[derive(Debug, Clone)]
pub struct AuditLine {
    fields: Map<String, Value>,
}

impl AuditLine {
    pub fn new(filter: &str, decision: &str, reason: &str) -> Self {
        let mut fields = Map::new();
        fields.insert(MARKER.into(), Value::from(1));
        fields.insert("filter".into(), filter.into());
        fields.insert("decision".into(), decision.into());
        fields.insert("reason".into(), reason.into());
        AuditLine { fields }
    }

    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// Request id, method and path, read from the request headers.
    pub fn request<H: Host + ?Sized>(mut self, host: &H) -> Self {
        for (key, header) in [
            ("request_id", "x-request-id"),
            ("method", ":method"),
            ("path", ":path"),
            ("authority", ":authority"),
        ] {
            if let Some(v) = host.request_header(header) {
                let v = if key == "path" { strip_query(&v) } else { v };
                self.fields.insert(key.into(), v.into());
            }
        }
        self
    }

    pub fn to_json(&self) -> String {
        Value::Object(self.fields.clone()).to_string()
    }

    pub fn emit<H: Host + ?Sized>(&self, host: &H) {
        host.log(LogLevel::Info, &self.to_json());
    }
}

/// The query string may carry a token (`access_token=`), so it is never logged.
fn strip_query(path: &str) -> String {
    path.split('?').next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;

    #[test]
    fn line_carries_request_fields_without_query() {
        let host = FakeHost::default();
        host.set_headers(&[
            ("x-request-id", "r-1"),
            (":method", "GET"),
            (":path", "/a?access_token=secret"),
        ]);
        AuditLine::new("jwt-auth", "deny", "bad_signature")
            .request(&host)
            .field("provider", "corp")
            .emit(&host);
        let logs = host.logs();
        assert_eq!(logs.len(), 1);
        let v: Value = serde_json::from_str(&logs[0].1).unwrap();
        assert_eq!(v["request_id"], "r-1");
        assert_eq!(v["reason"], "bad_signature");
        assert_eq!(v["path"], "/a");
        assert!(!logs[0].1.contains("secret"));
    }
}
