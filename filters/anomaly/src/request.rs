//! The request as the detectors see it: a list of named fields (path, query
//! parameters, headers, cookies, body values), each with its raw bytes, plus
//! the facts the protocol detector reads. Building the view never fails: a
//! body that does not parse is reported as a finding and scanned as text.

use std::fmt::Write as _;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::score::{Hit, Severity};

/// Where a field came from; decides the decoding and which detectors run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Path,
    /// A query or form parameter's name.
    ParamName,
    /// A query or form parameter's value.
    ParamValue,
    Header,
    Cookie,
    /// A JSON object key.
    JsonKey,
    /// A JSON string leaf.
    JsonValue,
    /// A body that is neither JSON, XML nor a form, or one that did not parse.
    RawBody,
    /// An XML body that did not scan as XML, kept whole.
    XmlBody,
    /// An XML attribute value or text node.
    XmlValue,
    /// The `filename` of an uploaded file (multipart).
    FileName,
}

impl Kind {
    /// Form encoding (`+` is a space) applies to query and form parameters.
    pub fn plus(self) -> crate::normalize::Plus {
        match self {
            Kind::ParamName | Kind::ParamValue => crate::normalize::Plus::Space,
            _ => crate::normalize::Plus::Keep,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// e.g. `query.id`, `body.$.user.name`, `header.user-agent`, `cookie.sid`.
    pub name: String,
    pub kind: Kind,
    pub raw: Vec<u8>,
}

/// A request-level observation made while building the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    pub field: String,
    pub hit: Hit,
}

/// What the glue hands in. Header names are expected lowercase (HTTP/2 and
/// Envoy's header map); they are lowercased again here to be sure.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub method: &'a [u8],
    /// The `:path` pseudo-header: path and query, not decoded.
    pub path: &'a [u8],
    pub headers: &'a [(&'a [u8], &'a [u8])],
    /// The buffered body (at most the cap); `body_truncated` if more was sent.
    pub body: Option<&'a [u8]>,
    pub body_truncated: bool,
}

/// Bounds on the view, so a request cannot make it arbitrarily large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fields beyond this many are not scanned; a finding says so.
    pub max_fields: usize,
    /// JSON nesting beyond this depth is not walked.
    pub max_json_depth: usize,
    /// Field names shown in findings are cut to this many bytes.
    pub max_name_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_fields: 512,
            max_json_depth: 32,
            max_name_bytes: 64,
        }
    }
}

#[derive(Debug, Default)]
pub struct View {
    pub fields: Vec<Field>,
    pub anomalies: Vec<Anomaly>,
    /// Header names (lowercase) with their raw values, for the protocol checks.
    pub headers: Vec<(String, Vec<u8>)>,
    pub method: Vec<u8>,
    pub raw_path: Vec<u8>,
    /// The source (see [`Source`]) of each field in `fields`.
    sources: Vec<Source>,
    /// Fields pushed so far from each source, kept or not.
    counts: [usize; SOURCES],
    source: Source,
}

/// Where fields come from, for sharing `max_fields` out: padding one source
/// (say 300 query parameters) cannot push another (headers, body) out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Source {
    #[default]
    Path = 0,
    Query = 1,
    Headers = 2,
    Body = 3,
}
const SOURCES: usize = 4;

/// A printable, bounded rendering of a user-chosen name (a parameter, header,
/// cookie or JSON key) for use in a field name.
pub fn display_name(raw: &[u8], max: usize) -> String {
    let mut s = String::new();
    push_display(&mut s, raw, max);
    s
}

/// `prefix` followed by the display name of `raw`, in one allocation.
fn prefixed_name(prefix: &str, raw: &[u8], max: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + raw.len().min(max) + 1);
    s.push_str(prefix);
    push_display(&mut s, raw, max);
    s
}

fn push_display(s: &mut String, raw: &[u8], max: usize) {
    for &b in raw.iter().take(max) {
        s.push(if (0x21..0x7f).contains(&b) {
            b as char
        } else {
            '?'
        });
    }
    if raw.len() > max {
        s.push('~');
    }
}

impl View {
    pub fn build(input: &Input<'_>, limits: Limits) -> View {
        let mut view = View {
            method: input.method.to_vec(),
            raw_path: input.path.to_vec(),
            ..View::default()
        };
        let (path, query) = match input.path.iter().position(|&b| b == b'?') {
            Some(q) => (&input.path[..q], Some(&input.path[q + 1..])),
            None => (input.path, None),
        };
        view.push(&limits, "path".to_string(), Kind::Path, path);
        view.source = Source::Query;
        if let Some(query) = query {
            view.params(&limits, "query", query);
        }
        view.source = Source::Headers;
        let mut content_type: &[u8] = b"";
        for &(name, value) in input.headers {
            let lname = String::from_utf8_lossy(name).to_ascii_lowercase();
            if lname == "content-type" {
                content_type = value;
            }
            if lname == "cookie" {
                view.cookies(&limits, value);
            } else if !lname.starts_with(':') && !crate::engine::structured_header(&lname) {
                let field = prefixed_name("header.", lname.as_bytes(), limits.max_name_bytes);
                view.push(&limits, field, Kind::Header, value);
            }
            view.headers.push((lname, value.to_vec()));
        }
        view.source = Source::Body;
        if let Some(body) = input.body.filter(|b| !b.is_empty()) {
            view.body(&limits, content_type, body, input.body_truncated);
        }
        view.share_out(limits.max_fields);
        view
    }

    /// True once the current source has as many fields as could ever be kept.
    fn source_full(&self, limits: &Limits) -> bool {
        self.counts[self.source as usize] > limits.max_fields
    }

    fn push(&mut self, limits: &Limits, name: String, kind: Kind, raw: &[u8]) {
        // One past the cap is counted, so share_out knows the source overflowed.
        let n = &mut self.counts[self.source as usize];
        if *n > limits.max_fields {
            return;
        }
        *n += 1;
        self.fields.push(Field {
            name,
            kind,
            raw: raw.to_vec(),
        });
        self.sources.push(self.source);
    }

    /// A value that may hold a JSON document of its own (a JSON string leaf,
    /// a query or form parameter: `filter={"status":["open","late"]}`). A
    /// document's keys and string leaves are the fields, as in a JSON body:
    /// its quotes and brackets are JSON's syntax, and read whole as one
    /// value they look like SQL string breakouts (`{"tags":["or","update"]}`).
    /// Anything else, or a document that does not parse, is one field.
    /// `depth` counts the JSON levels around the value.
    fn value(&mut self, limits: &Limits, name: String, kind: Kind, raw: &[u8], depth: usize) {
        if self.embedded_json(limits, &name, kind, raw, depth) {
            return;
        }
        self.push(limits, name, kind, raw);
    }

    fn embedded_json(
        &mut self,
        limits: &Limits,
        name: &str,
        kind: Kind,
        raw: &[u8],
        depth: usize,
    ) -> bool {
        if !matches!(raw.trim_ascii_start().first(), Some(b'{' | b'[' | b'%')) {
            return false;
        }
        // A parameter is read as the server reads it: URL-decoded, `+` a space.
        let decoded;
        let doc = if kind == Kind::ParamValue {
            decoded = crate::normalize::url_decode(raw, crate::normalize::Plus::Space);
            &decoded[..]
        } else {
            raw
        };
        let doc = doc.trim_ascii();
        let framed = matches!(
            (doc.first(), doc.last()),
            (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']'))
        );
        framed && depth < limits.max_json_depth && self.json(limits, doc, name.to_string(), depth)
    }

    /// Walks a JSON document into fields named from `path`; `depth` is the
    /// nesting around it. On a parse error nothing it read is kept.
    fn json(&mut self, limits: &Limits, doc: &[u8], mut path: String, depth: usize) -> bool {
        let source = self.source as usize;
        let (fields, anomalies, count) =
            (self.fields.len(), self.anomalies.len(), self.counts[source]);
        let mut de = serde_json::Deserializer::from_slice(doc);
        let walk = JsonWalk {
            view: self,
            limits,
            path: &mut path,
            depth,
        };
        if walk.deserialize(&mut de).and_then(|()| de.end()).is_ok() {
            return true;
        }
        self.fields.truncate(fields);
        self.sources.truncate(fields);
        self.counts[source] = count;
        self.anomalies.truncate(anomalies);
        false
    }

    /// Keeps at most `max` fields, shared fairly between the sources: each
    /// gets an equal share, and what a source does not use goes to the
    /// others. Any field left out is a critical finding, since a request
    /// with more fields than the cap is itself suspicious (padding meant to
    /// push a payload past the scan).
    fn share_out(&mut self, max: usize) {
        if self.fields.len() <= max {
            return;
        }
        let mut quota = [0usize; SOURCES];
        let mut order: Vec<usize> = (0..SOURCES).collect();
        order.sort_by_key(|&s| self.counts[s]);
        let mut left = max;
        for (i, &s) in order.iter().enumerate() {
            let share = left / (SOURCES - i);
            quota[s] = self.counts[s].min(share).min(left);
            left -= quota[s];
        }
        let mut kept = [0usize; SOURCES];
        let mut dropped: Option<String> = None;
        let fields = std::mem::take(&mut self.fields);
        for (field, &src) in fields.into_iter().zip(&self.sources) {
            let k = &mut kept[src as usize];
            if *k < quota[src as usize] {
                *k += 1;
                self.fields.push(field);
            } else if dropped.is_none() {
                dropped = Some(field.name);
            }
        }
        self.sources.clear();
        self.anomalies.push(Anomaly {
            field: dropped.unwrap_or_default(),
            hit: Hit {
                rule: "protocol.too-many-fields",
                severity: Severity::Critical,
                offset: 0,
            },
        });
    }

    /// `a=1&b=2` (query string or form body). A parameter's name is a field
    /// of its own, named by its position, since names carry payloads too.
    fn params(&mut self, limits: &Limits, prefix: &str, s: &[u8]) {
        for (n, pair) in s
            .split(|&b| b == b'&')
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(e) => (&pair[..e], &pair[e + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let decoded = crate::normalize::url_decode(name, crate::normalize::Plus::Space);
            let shown = display_name(&decoded, limits.max_name_bytes);
            self.push(limits, format!("{prefix}-name[{n}]"), Kind::ParamName, name);
            self.value(
                limits,
                format!("{prefix}.{shown}"),
                Kind::ParamValue,
                value,
                0,
            );
        }
    }

    fn cookies(&mut self, limits: &Limits, header: &[u8]) {
        for pair in header.split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() {
                continue;
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(e) => (&pair[..e], &pair[e + 1..]),
                None => (&pair[..0], pair),
            };
            let field = prefixed_name("cookie.", name, limits.max_name_bytes);
            self.push(limits, field, Kind::Cookie, value);
        }
    }

    fn body(&mut self, limits: &Limits, content_type: &[u8], body: &[u8], truncated: bool) {
        let ct = content_type
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii()
            .to_ascii_lowercase();
        let is_json = ct == b"application/json" || (ct.ends_with(b"+json") && ct.contains(&b'/'));
        if is_json && !truncated {
            if self.json(limits, body, String::from("body.$"), 0) {
                return;
            }
            // The body is scanned as text.
            self.anomalies.push(Anomaly {
                field: "body".to_string(),
                hit: Hit {
                    rule: "protocol.malformed-json",
                    severity: Severity::Warning,
                    offset: 0,
                },
            });
        }
        if ct == b"application/x-www-form-urlencoded" || (ct.is_empty() && looks_like_form(body)) {
            self.params(limits, "body", body);
            return;
        }
        if ct.ends_with(b"/xml") || ct.ends_with(b"+xml") {
            self.xml(limits, body);
            return;
        }
        if ct == b"multipart/form-data" && !truncated {
            match boundary(content_type) {
                Some(b) if self.multipart(limits, body, b) => return,
                _ => self.anomalies.push(Anomaly {
                    field: "body".to_string(),
                    hit: Hit {
                        rule: "protocol.malformed-multipart",
                        severity: Severity::Warning,
                        offset: 0,
                    },
                }),
            }
        }
        // Other types, a truncated JSON body or one that did not parse: scan as text.
        self.push(limits, "body".to_string(), Kind::RawBody, body);
    }
}

/// Walks a JSON body as serde_json reads it, pushing each string leaf (and
/// each key that is not a plain identifier) as a field, without building a
/// tree. Every occurrence of a repeated key is scanned: upstream parsers
/// disagree on which one wins.
struct JsonWalk<'a> {
    view: &'a mut View,
    limits: &'a Limits,
    path: &'a mut String,
    depth: usize,
}

impl JsonWalk<'_> {
    /// Reads one child value at `depth + 1`, or skips it past the depth cap.
    fn child<F, E>(&mut self, next: F) -> Result<bool, E>
    where
        F: FnOnce(Option<JsonWalk<'_>>) -> Result<bool, E>,
    {
        let depth = self.depth + 1;
        if depth > self.limits.max_json_depth {
            let read = next(None)?;
            // One notice per value at the first level past the cap.
            if read && depth == self.limits.max_json_depth + 1 {
                self.view.anomalies.push(Anomaly {
                    field: self.path.clone(),
                    hit: Hit {
                        rule: "protocol.json-too-deep",
                        severity: Severity::Notice,
                        offset: 0,
                    },
                });
            }
            return Ok(read);
        }
        if self.view.source_full(self.limits) {
            return next(None);
        }
        next(Some(JsonWalk {
            view: self.view,
            limits: self.limits,
            path: self.path,
            depth,
        }))
    }
}

impl<'de> DeserializeSeed<'de> for JsonWalk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonWalk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        let depth = self.depth;
        let name = self.path.clone();
        self.view
            .value(self.limits, name, Kind::JsonValue, v.as_bytes(), depth);
        Ok(())
    }

    // Numbers, booleans and null cannot carry a payload.
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let len = self.path.len();
        let mut i = 0usize;
        loop {
            // Writing to a String cannot fail.
            let _ = write!(self.path, "[{i}]");
            let more = self.child(|walk| match walk {
                Some(w) => seq.next_element_seed(w).map(|e| e.is_some()),
                None => seq.next_element::<IgnoredAny>().map(|e| e.is_some()),
            })?;
            self.path.truncate(len);
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let len = self.path.len();
        while map
            .next_key_seed(JsonKey {
                view: self.view,
                limits: self.limits,
                path: self.path,
            })?
            .is_some()
        {
            self.child(|walk| match walk {
                Some(w) => map.next_value_seed(w).map(|()| true),
                None => map.next_value::<IgnoredAny>().map(|_| true),
            })?;
            self.path.truncate(len);
        }
        Ok(())
    }
}

/// A JSON object key, read without a copy: appends `.<key>` to the path and
/// pushes the key as a field when it could carry a payload.
struct JsonKey<'a> {
    view: &'a mut View,
    limits: &'a Limits,
    path: &'a mut String,
}

impl<'de> DeserializeSeed<'de> for JsonKey<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for JsonKey<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object key")
    }

    fn visit_str<E>(self, k: &str) -> Result<(), E> {
        self.path.push('.');
        push_display(self.path, k.as_bytes(), self.limits.max_name_bytes);
        // Keys rarely carry payloads, but they can; scan them as their own field.
        if needs_key_scan(k) {
            let name = format!("{}#key", self.path);
            self.view
                .push(self.limits, name, Kind::JsonKey, k.as_bytes());
        }
        Ok(())
    }
}

/// Plain identifier keys (`user_name`, `createdAt`) cannot carry a payload.
fn needs_key_scan(k: &str) -> bool {
    !k.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A body sent without a content type that reads as `name=value&...`; some
/// frameworks parse it as a form anyway, so it is scanned as one.
fn looks_like_form(body: &[u8]) -> bool {
    match body.iter().position(|&b| b == b'=') {
        Some(e) if e > 0 => body[..e].iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']' | b'%')
        }),
        _ => false,
    }
}

impl View {
    /// XML, read leniently into its text nodes and attribute values (markup
    /// is XML's own syntax, so only values are scanned). Comments and
    /// processing instructions are skipped, CDATA is text. A document that
    /// does not scan (a `<` never closed) is kept whole as [`Kind::XmlBody`].
    fn xml(&mut self, limits: &Limits, body: &[u8]) {
        let mut i = 0;
        let mut tag: &[u8] = b"";
        let mut values: Vec<(String, &[u8])> = Vec::new();
        let mut ok = true;
        while i < body.len() {
            let rest = &body[i..];
            if !rest.starts_with(b"<") {
                let end = rest.iter().position(|&b| b == b'<').unwrap_or(rest.len());
                let text = rest[..end].trim_ascii();
                if !text.is_empty() {
                    values.push((
                        format!("body.xml.{}", display_name(tag, limits.max_name_bytes)),
                        text,
                    ));
                }
                i += end;
                continue;
            }
            let (open, close): (&[u8], &[u8]) = if rest.starts_with(b"<!--") {
                (b"<!--", b"-->")
            } else if rest.starts_with(b"<![CDATA[") {
                (b"<![CDATA[", b"]]>")
            } else if rest.starts_with(b"<?") {
                (b"<?", b"?>")
            } else {
                (b"<", b">")
            };
            let Some(end) = find_bytes(&rest[open.len()..], close) else {
                ok = false;
                break;
            };
            let inner = &rest[open.len()..open.len() + end];
            if open == b"<![CDATA[" {
                values.push((
                    format!("body.xml.{}", display_name(tag, limits.max_name_bytes)),
                    inner,
                ));
            } else if open == b"<" && !inner.starts_with(b"/") && !inner.starts_with(b"!") {
                let name_end = inner
                    .iter()
                    .position(|&b| b.is_ascii_whitespace() || b == b'/')
                    .unwrap_or(inner.len());
                tag = &inner[..name_end];
                xml_attributes(&inner[name_end..], |name, value| {
                    values.push((
                        format!(
                            "body.xml.{}@{}",
                            display_name(tag, limits.max_name_bytes),
                            display_name(name, limits.max_name_bytes)
                        ),
                        value,
                    ));
                });
            }
            i += open.len() + end + close.len();
        }
        if !ok {
            self.push(limits, "body".to_string(), Kind::XmlBody, body);
            return;
        }
        for (name, value) in values {
            self.push(limits, name, Kind::XmlValue, value);
        }
    }
}

/// `name="value"` and `name='value'` pairs inside a start tag.
fn xml_attributes<'a>(s: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8])) {
    let mut i = 0;
    while i < s.len() {
        let Some(eq) = s[i..].iter().position(|&b| b == b'=') else {
            return;
        };
        let name = s[i..i + eq].trim_ascii();
        let mut j = i + eq + 1;
        while s.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        let Some(&q) = s.get(j) else { return };
        if q != b'"' && q != b'\'' {
            return;
        }
        let Some(len) = s[j + 1..].iter().position(|&b| b == q) else {
            return;
        };
        f(name, &s[j + 1..j + 1 + len]);
        i = j + 1 + len + 1;
    }
}

fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A multipart delimiter as RFC 2046 recognises it: at the start of a line
/// (after CRLF, or a bare LF, read leniently), or at the very start of the
/// body when `at_start`. Returns where it starts and the length of the line
/// break before it. A `--boundary` inside a line is content, not a delimiter.
fn find_delimiter(hay: &[u8], delim: &[u8], at_start: bool) -> Option<(usize, usize)> {
    if at_start && hay.starts_with(delim) {
        return Some((0, 0));
    }
    let mut from = 0;
    while let Some(at) = find_bytes(&hay[from..], delim) {
        let at = from + at;
        if at > 0 && hay[at - 1] == b'\n' {
            let eol = if at > 1 && hay[at - 2] == b'\r' { 2 } else { 1 };
            return Some((at, eol));
        }
        from = at + 1;
    }
    None
}

/// The `boundary` parameter of a multipart content type (quotes removed).
fn boundary(content_type: &[u8]) -> Option<&[u8]> {
    content_type.split(|&b| b == b';').skip(1).find_map(|p| {
        let p = p.trim_ascii();
        let (k, v) = p.split_at(p.iter().position(|&b| b == b'=')?);
        if !k.trim_ascii().eq_ignore_ascii_case(b"boundary") {
            return None;
        }
        let v = v[1..].trim_ascii();
        let v = v
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(v);
        // RFC 2046: 1 to 70 characters.
        (!v.is_empty() && v.len() <= 70).then_some(v)
    })
}

/// `name="..."` or `filename="..."` in a Content-Disposition line.
fn disposition_param<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut rest = line;
    while let Some(at) = find_bytes(rest, key) {
        let before_ok = at == 0 || matches!(rest[at - 1], b';' | b' ' | b'\t');
        let after = &rest[at + key.len()..];
        if before_ok {
            if let Some(v) = after.strip_prefix(b"=\"") {
                let end = v.iter().position(|&b| b == b'"').unwrap_or(v.len());
                return Some(&v[..end]);
            }
            if let Some(v) = after.strip_prefix(b"=") {
                let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
                return Some(v[..end].trim_ascii());
            }
        }
        rest = after;
    }
    None
}

impl View {
    /// `multipart/form-data`: each part's content is a field named by its
    /// `name` (`body.<name>`), and an uploaded file's `filename` is a field of
    /// its own (`body.<name>#filename`), since it reaches file systems.
    /// False when the body has no part delimited by the boundary.
    fn multipart(&mut self, limits: &Limits, body: &[u8], boundary: &[u8]) -> bool {
        let mut delim = b"--".to_vec();
        delim.extend_from_slice(boundary);
        let mut parts = 0;
        let mut rest = match find_delimiter(body, &delim, true) {
            Some((at, _)) => &body[at + delim.len()..],
            None => return false,
        };
        loop {
            if rest.starts_with(b"--") {
                break;
            }
            // The line break before a delimiter belongs to the delimiter.
            let Some((end, eol)) = find_delimiter(rest, &delim, false) else {
                break;
            };
            let part = &rest[..end - eol];
            rest = &rest[end + delim.len()..];
            let part = part
                .strip_prefix(b"\r\n")
                .or_else(|| part.strip_prefix(b"\n"))
                .unwrap_or(part);
            let (head, content) = match find_bytes(part, b"\r\n\r\n") {
                Some(h) => (&part[..h], &part[h + 4..]),
                None => match find_bytes(part, b"\n\n") {
                    Some(h) => (&part[..h], &part[h + 2..]),
                    None => continue,
                },
            };
            let disposition = head
                .split(|&b| b == b'\n')
                .find(|l| l.len() > 20 && l[..20].eq_ignore_ascii_case(b"content-disposition:"))
                .unwrap_or_default();
            let name = disposition_param(disposition, b"name").unwrap_or_default();
            let shown = display_name(name, limits.max_name_bytes);
            if let Some(filename) = disposition_param(disposition, b"filename") {
                // The file's content is not scanned: uploads are data, not parameters.
                self.push(
                    limits,
                    format!("body.{shown}#filename"),
                    Kind::FileName,
                    filename,
                );
            } else {
                self.push(limits, format!("body.{shown}"), Kind::RawBody, content);
            }
            parts += 1;
        }
        parts > 0
    }
}
