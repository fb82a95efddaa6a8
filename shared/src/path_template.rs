//! URI path templates shared by the filters, with the semantics of Envoy's
//! `uri_template` matcher (the form istiod emits for Istio's `{*}`/`{**}`):
//! `{*}` or `{name}` is one segment of one or more RFC 3986 pchars; `{**}`
//! or `{name=**}` is zero or more pchars and `/`, may appear once, and only
//! literal segments may follow it. So `/x/{**}` matches `/x/` and `/x/a/b`
//! but not `/x`, and `/foo/{**}/` matches `/foo/a/`. Named captures can be
//! read back, which the authz filter uses for object-level checks.

/// One segment before `{**}`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(Box<str>),
    /// One segment; `Some(capture index)` when named.
    One(Option<usize>),
}

/// `{**}` and the literal text after it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rest {
    capture: Option<usize>,
    /// `/lit/lit` or `/` (a trailing slash) or empty.
    tail: Box<str>,
}

/// A pre-parsed path template such as `/users/{user}/orders/{**}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    head: Vec<Seg>,
    rest: Option<Rest>,
    pub source: String,
}

/// Capture names declared by the templates of one path set.
pub type CaptureNames = Vec<String>;

/// Characters a literal segment may hold: RFC 3986 pchar without `*`
/// (Envoy's template syntax; `=` is allowed as in Envoy 1.40).
fn is_literal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()+,;:@=".contains(&b)
}

/// Characters a `{*}` / `{**}` variable matches. Envoy 1.40 matches `*` in a
/// segment as well (measured by the differential test against `rbac`).
fn is_pchar(b: u8) -> bool {
    is_literal(b) || b == b'*'
}

enum Var<'t> {
    One(Option<&'t str>),
    Rest(Option<&'t str>),
}

fn variable<'t>(text: &str, part: &'t str) -> Result<Option<Var<'t>>, String> {
    let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) else {
        if part.contains(['{', '}', '*']) {
            return Err(format!(
                "path template `{text}`: a segment must be a literal or one whole {{...}} variable"
            ));
        }
        return Ok(None);
    };
    let (name, kind) = match inner.split_once('=') {
        Some((n, k)) => (Some(n), k),
        None if inner == "*" || inner == "**" => (None, inner),
        None => (Some(inner), "*"),
    };
    if let Some(n) = name {
        let valid = n.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!("path template `{text}`: bad capture name `{n}`"));
        }
    }
    match kind {
        "*" => Ok(Some(Var::One(name))),
        "**" => Ok(Some(Var::Rest(name))),
        other => Err(format!(
            "path template `{text}`: unknown operator `{other}` (use `*` or `**`)"
        )),
    }
}

impl Template {
    pub fn parse(text: &str, names: &mut CaptureNames) -> Result<Template, String> {
        let Some(body) = text.strip_prefix('/') else {
            return Err(format!("path template `{text}` must start with `/`"));
        };
        let parts: Vec<&str> = body.split('/').collect();
        let mut head = Vec::with_capacity(parts.len());
        let mut rest: Option<(Option<usize>, Vec<&str>)> = None;
        let mut local: Vec<String> = Vec::new();
        let mut index =
            |n: Option<&str>, local: &mut Vec<String>| -> Result<Option<usize>, String> {
                let Some(n) = n else { return Ok(None) };
                if local.iter().any(|x| *x == n) {
                    return Err(format!(
                        "path template `{text}`: capture `{n}` appears twice"
                    ));
                }
                local.push(n.to_string());
                Ok(Some(match names.iter().position(|x| x == n) {
                    Some(i) => i,
                    None => {
                        names.push(n.to_string());
                        names.len() - 1
                    }
                }))
            };
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            match variable(text, part)? {
                Some(_) if rest.is_some() => {
                    return Err(format!(
                        "path template `{text}`: only literal segments may follow `{{**}}`"
                    ))
                }
                Some(Var::One(n)) => head.push(Seg::One(index(n, &mut local)?)),
                Some(Var::Rest(n)) => rest = Some((index(n, &mut local)?, Vec::new())),
                None => {
                    // A literal: one or more pchars; empty only as a trailing `/`.
                    // `/` alone is the root; otherwise empty only when trailing.
                    let ok = if part.is_empty() {
                        last
                    } else {
                        part.bytes().all(is_literal)
                    };
                    if !ok {
                        return Err(format!(
                            "path template `{text}`: `{part}` is not a valid literal segment"
                        ));
                    }
                    match &mut rest {
                        Some((_, tail)) => tail.push(part),
                        None => head.push(Seg::Lit((*part).into())),
                    }
                }
            }
        }
        let rest = rest.map(|(capture, tail)| Rest {
            capture,
            tail: tail
                .iter()
                .map(|t| format!("/{t}"))
                .collect::<String>()
                .into(),
        });
        Ok(Template {
            head,
            rest,
            source: text.to_string(),
        })
    }

    /// Match `path` (no query); captures are read back with [`Template::capture`].
    pub fn matches(&self, path: &str) -> bool {
        self.walk(path, None).is_some()
    }

    /// The value bound to capture `idx` when `path` matches.
    pub fn capture<'p>(&self, path: &'p str, idx: usize) -> Option<&'p str> {
        self.walk(path, Some(idx)).flatten()
    }

    fn walk<'p>(&self, path: &'p str, want: Option<usize>) -> Option<Option<&'p str>> {
        let mut rest = path.strip_prefix('/')?;
        let mut found = None;
        let n = self.head.len();
        for (i, seg) in self.head.iter().enumerate() {
            // Each head segment is followed by `/`, except the last one of a
            // template without `{**}`.
            let (cur, next) = match rest.split_once('/') {
                Some((c, r)) => (c, Some(r)),
                None => (rest, None),
            };
            let more = self.rest.is_some() || i + 1 < n;
            if more != next.is_some() {
                return None;
            }
            match seg {
                Seg::Lit(l) if **l == *cur => {}
                Seg::One(idx) if !cur.is_empty() && cur.bytes().all(is_pchar) => {
                    if want.is_some() && *idx == want {
                        found = Some(cur);
                    }
                }
                _ => return None,
            }
            rest = next.unwrap_or("");
        }
        match &self.rest {
            None => Some(found),
            Some(r) => {
                let middle = rest.strip_suffix(&*r.tail)?;
                if !middle.bytes().all(|b| b == b'/' || is_pchar(b)) {
                    return None;
                }
                if want.is_some() && r.capture == want {
                    found = Some(middle);
                }
                Some(found)
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Template::parse_plain(&text).map_err(serde::de::Error::custom)
    }
}

impl Template {
    /// Parse a template that declares no captures the caller needs.
    pub fn parse_plain(text: &str) -> Result<Template, String> {
        Template::parse(text, &mut Vec::new())
    }

    /// The first segment when it is a literal followed by more (used to
    /// index rules by first segment).
    pub fn first_literal(&self) -> Option<&str> {
        match self.head.first() {
            Some(Seg::Lit(l)) => Some(l),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rest_and_captures() {
        let mut names = Vec::new();
        let t = Template::parse("/users/{user}/orders/{**}", &mut names).unwrap();
        assert_eq!(names, vec!["user"]);
        assert!(t.matches("/users/alice/orders/"));
        assert!(t.matches("/users/alice/orders/1/items"));
        assert!(
            !t.matches("/users/alice/orders"),
            "Envoy: `{{**}}` follows a `/`"
        );
        assert!(!t.matches("/users//orders/1"));
        assert!(!t.matches("/users/alice"));
        assert!(!t.matches("/users/alice/carts/1"));
        assert_eq!(t.capture("/users/alice/orders/9", 0), Some("alice"));
        let t = Template::parse_plain("/a/{*}/b").unwrap();
        assert!(t.matches("/a/x/b"));
        assert!(!t.matches("/a/x/y/b"));
        assert!(!t.matches("/a/x/b/c"));
        assert!(!t.matches("/a/x/b/"));
        assert_eq!(t.first_literal(), Some("a"));
        let mut names = Vec::new();
        let t = Template::parse("/files/{path=**}", &mut names).unwrap();
        assert_eq!(t.capture("/files/a/b", 0), Some("a/b"));
        assert_eq!(t.capture("/files/", 0), Some(""));
        assert!(!t.matches("/other"));
    }

    #[test]
    fn only_pchars_match() {
        let t = Template::parse_plain("/a/{*}").unwrap();
        // As Envoy 1.40's rbac answered in the differential test.
        for ok in [
            "/a/x",
            "/a/%2F",
            "/a/x:y@z",
            "/a/!$&'()+,;",
            "/a/x*y",
            "/a/b;c=d",
        ] {
            assert!(t.matches(ok), "{ok}");
        }
        for no in ["/a/x y", "/a/x\"", "/a/x[", "/a/x{", "/a/x|", "/a/"] {
            assert!(!t.matches(no), "{no}");
        }
        let t = Template::parse_plain("/a/{**}").unwrap();
        assert!(t.matches("/a//b"));
        assert!(t.matches("/a/b=c"));
        assert!(!t.matches("/a/b^c"));
    }

    #[test]
    fn literals_after_the_rest() {
        let t = Template::parse_plain("/foo/{**}/").unwrap();
        assert!(t.matches("/foo/a/"));
        assert!(t.matches("/foo/a/b/"));
        assert!(t.matches("/foo//"));
        assert!(!t.matches("/foo/a"));
        assert!(!t.matches("/foo/"));
        let t = Template::parse_plain("/foo/{**}/bar").unwrap();
        assert!(t.matches("/foo/a/b/bar"));
        assert!(t.matches("/foo//bar"));
        assert!(!t.matches("/foo/bar"));
        let t = Template::parse_plain("/{**}").unwrap();
        assert!(t.matches("/"));
        assert!(t.matches("/a/b"));
        let t = Template::parse_plain("/").unwrap();
        assert!(t.matches("/"));
        assert!(!t.matches("/a"));
        let t = Template::parse_plain("/a/{*}/").unwrap();
        assert!(t.matches("/a/b/"));
        assert!(!t.matches("/a/b"));
    }

    #[test]
    fn refused_templates() {
        for bad in [
            "users/{id}",
            "/a/{**}/{*}",
            "/a/{**}/{**}",
            "/a/x{id}",
            "/a/{id=foo}",
            "/a/{i d}",
            "/a/{1d}",
            "/a/{x}/{x}",
            "/a//{*}",
            "/a b/{*}",
            "/a*/{*}",
        ] {
            assert!(Template::parse_plain(bad).is_err(), "{bad}");
        }
    }
}
