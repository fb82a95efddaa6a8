//! One structured JSON line per decision, logged by Envoy's wasm logger and
//! written to filter state (`wasm.meshward.audit.<filter>`), so an access log
//! can print it where the log level drops info lines (Istio's default).
//! Carries a timestamp, the request id and a reason code; callers must never
//! put a token or secret in it (nothing here reads the Authorization header).

use std::time::UNIX_EPOCH;

use proxy_wasm::types::LogLevel;
use serde_json::{Map, Value};

use crate::host::Host;

pub const MARKER: &str = "meshward_audit";

/// Filter-state key of a filter's last audit line in this request (Envoy adds
/// the `wasm.` prefix): `meshward.audit.jwt-auth`, `.authz`, `.rate-limit`.
pub const STATE_PREFIX: &str = "meshward.audit.";

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

    /// Stamp the line with the host clock, log it, and put it in filter state
    /// (one write, only for requests that get a line).
    pub fn emit<H: Host + ?Sized>(mut self, host: &H) {
        let ms = host
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
        self.fields
            .insert("timestamp".into(), rfc3339_ms(ms).into());
        let line = self.to_json();
        host.log(LogLevel::Info, &line);
        let filter = self
            .fields
            .get("filter")
            .and_then(Value::as_str)
            .unwrap_or("filter");
        let key = format!("{STATE_PREFIX}{filter}");
        if let Err(e) = host.set_property(&[&key], line.as_bytes()) {
            host.log(
                LogLevel::Debug,
                &format!("meshward: could not write the audit line to filter state: {e}"),
            );
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC) for milliseconds since the epoch.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Days to a civil date (proleptic Gregorian), after H. Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
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
        // the same line, in filter state for the access log
        let state = host.raw_property("meshward.audit.jwt-auth").unwrap();
        assert_eq!(String::from_utf8(state).unwrap(), logs[0].1);
        assert_eq!(v["timestamp"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (leap day) 12:34:56.789
        assert_eq!(rfc3339_ms(951_827_696_789), "2000-02-29T12:34:56.789Z");
        assert_eq!(rfc3339_ms(1_796_558_400_000), "2026-12-06T12:00:00.000Z");
        assert_eq!(rfc3339_ms(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }
}
