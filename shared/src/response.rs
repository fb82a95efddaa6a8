//! Deny responses: `application/problem+json` bodies (RFC 9457) with a stable
//! reason code, plus per-filter overrides of status, headers and body.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::host::{Host, HostError};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A local reply ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl LocalReply {
    /// A problem+json reply; `reason` is the stable machine-readable code.
    pub fn problem(status: u32, reason: &str, detail: &str) -> Self {
        let body = serde_json::json!({
            "type": format!("urn:meshward:problem:{reason}"),
            "title": status_title(status),
            "status": status,
            "detail": detail,
            "reason": reason,
        });
        LocalReply {
            status,
            headers: vec![("content-type".into(), PROBLEM_JSON.into())],
            body: serde_json::to_vec(&body).unwrap_or_default(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Apply a user's override. `{reason}` in a custom body is replaced.
    pub fn customize(mut self, custom: &CustomResponse, reason: &str) -> Self {
        if let Some(status) = custom.status {
            self.status = u32::from(status);
        }
        if let Some(body) = &custom.body {
            self.body = body.replace("{reason}", reason).into_bytes();
            let ctype = custom.content_type.as_deref().unwrap_or("text/plain");
            self.headers.retain(|(k, _)| k != "content-type");
            self.headers.push(("content-type".into(), ctype.into()));
        }
        for (k, v) in &custom.headers {
            self.headers
                .retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            self.headers.push((k.to_ascii_lowercase(), v.clone()));
        }
        self
    }

    pub fn send<H: Host + ?Sized>(&self, host: &H) -> Result<(), HostError> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        host.send_local_reply(self.status, &headers, &self.body)
    }
}

/// User-configurable deny response (`deny_response` in every filter's config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomResponse {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
}

impl CustomResponse {
    /// Config-time checks: a real HTTP status and valid header names.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        use crate::config::ConfigError;
        if let Some(s) = self.status {
            if !(200..=599).contains(&s) {
                return Err(ConfigError::new(
                    "status",
                    format!("{s} is not an HTTP status in 200..=599"),
                ));
            }
        }
        for (name, value) in &self.headers {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !name.starts_with(':');
            if !ok {
                return Err(ConfigError::new(
                    format!("headers.{name}"),
                    "not a valid header name",
                ));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(ConfigError::new(
                    format!("headers.{name}"),
                    "value contains CR, LF or NUL",
                ));
            }
        }
        Ok(())
    }
}

fn status_title(status: u32) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Request Denied",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_body_has_reason() {
        let r = LocalReply::problem(401, "token_expired", "Jwt is expired");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["reason"], "token_expired");
        assert_eq!(v["status"], 401);
        assert_eq!(v["title"], "Unauthorized");
        assert_eq!(r.headers[0].1, PROBLEM_JSON);
    }

    #[test]
    fn customize_overrides() {
        let c = CustomResponse {
            status: Some(418),
            headers: [("X-Why".to_string(), "nope".to_string())].into(),
            body: Some("denied: {reason}".into()),
            content_type: None,
        };
        let r = LocalReply::problem(401, "bad_signature", "x").customize(&c, "bad_signature");
        assert_eq!(r.status, 418);
        assert_eq!(r.body, b"denied: bad_signature");
        assert!(r
            .headers
            .contains(&("content-type".into(), "text/plain".into())));
        assert!(r.headers.contains(&("x-why".into(), "nope".into())));
    }

    #[test]
    fn validate_rejects_bad_values() {
        let mut c = CustomResponse {
            status: Some(99),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().path, "status");
        c.status = None;
        c.headers.insert("x-a".into(), "a\r\nb".into());
        assert!(c.validate().is_err());
    }
}
