//! Protobuf-JSON durations (`"5s"`, `"0.250s"`), as Envoy configs spell them.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parse `"<seconds>[.<fraction>]s"`; anything else is an error message.
pub fn parse(text: &str) -> Result<Duration, String> {
    let body = text
        .strip_suffix('s')
        .ok_or_else(|| format!("duration `{text}` must end in `s`, e.g. \"5s\" or \"0.5s\""))?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (whole, frac, frac_ok) = match body.split_once('.') {
        Some((w, f)) => (w, f, digits(f) && f.len() <= 9),
        None => (body, "", true),
    };
    if !digits(whole) || !frac_ok {
        return Err(format!(
            "duration `{text}` is not a non-negative number of seconds"
        ));
    }
    let secs: u64 = whole
        .parse()
        .map_err(|_| format!("duration `{text}` is too large"))?;
    let nanos = if frac.is_empty() {
        0
    } else {
        let scale = 10u32.pow(9 - frac.len() as u32);
        frac.parse::<u32>()
            .map_err(|_| format!("duration `{text}`"))?
            * scale
    };
    Ok(Duration::new(secs, nanos))
}

/// A serde-friendly duration field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProtoDuration(pub Duration);

impl<'de> Deserialize<'de> for ProtoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s)
            .map(ProtoDuration)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proto_durations() {
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("0.250s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["5", "-1s", "s", "1.s", "5ms", "1.0000000001s", "abc s", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
