//! URI path templates shared by the filters: `/users/{user}/orders/{**}`.
//! `{name}` or `{*}` is one non-empty segment, `{**}` or `{name=**}` the rest
//! (zero or more segments, last position only). Named captures can be read
//! back, which the authz filter uses for object-level checks.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(Box<str>),
    /// One segment; `Some(capture index)` when named.
    One(Option<usize>),
    /// The rest (zero or more segments); must be last.
    Rest(Option<usize>),
}

/// A pre-parsed path template such as `/users/{user}/orders/{**}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segs: Vec<Seg>,
    pub source: String,
}

/// Capture names declared by the templates of one path set.
pub type CaptureNames = Vec<String>;

impl Template {
    pub fn parse(text: &str, names: &mut CaptureNames) -> Result<Template, String> {
        let Some(body) = text.strip_prefix('/') else {
            return Err(format!("path template `{text}` must start with `/`"));
        };
        let parts: Vec<&str> = body.split('/').collect();
        let mut segs = Vec::with_capacity(parts.len());
        let mut local: Vec<&str> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let (name, kind) = match inner.split_once('=') {
                    Some((n, k)) => (Some(n), k),
                    None if inner == "*" || inner == "**" => (None, inner),
                    None => (Some(inner), "*"),
                };
                if let Some(n) = name {
                    let valid =
                        !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                    if !valid {
                        return Err(format!("path template `{text}`: bad capture name `{n}`"));
                    }
                    if local.contains(&n) {
                        return Err(format!(
                            "path template `{text}`: capture `{n}` appears twice"
                        ));
                    }
                    local.push(n);
                }
                let idx = name.map(|n| match names.iter().position(|x| x == n) {
                    Some(i) => i,
                    None => {
                        names.push(n.to_string());
                        names.len() - 1
                    }
                });
                match kind {
                    "*" => segs.push(Seg::One(idx)),
                    "**" if last => segs.push(Seg::Rest(idx)),
                    "**" => {
                        return Err(format!(
                            "path template `{text}`: `**` is allowed only in the last segment"
                        ))
                    }
                    other => {
                        return Err(format!(
                            "path template `{text}`: unknown operator `{other}` (use `*` or `**`)"
                        ))
                    }
                }
            } else if part.contains(['{', '}', '*']) {
                return Err(format!(
                    "path template `{text}`: a segment must be a literal or one whole {{...}} variable"
                ));
            } else {
                segs.push(Seg::Lit((*part).into()));
            }
        }
        Ok(Template {
            segs,
            source: text.to_string(),
        })
    }

    /// Match `path` (no query); on success return nothing more: captures are
    /// read back with [`Template::capture`].
    pub fn matches(&self, path: &str) -> bool {
        self.walk(path, None).is_some()
    }

    /// The value bound to capture `idx` when `path` matches.
    pub fn capture<'p>(&self, path: &'p str, idx: usize) -> Option<&'p str> {
        self.walk(path, Some(idx)).flatten()
    }

    fn walk<'p>(&self, path: &'p str, want: Option<usize>) -> Option<Option<&'p str>> {
        let body = path.strip_prefix('/')?;
        let mut rest = body;
        let mut found = None;
        let mut done = false;
        for seg in &self.segs {
            if done {
                // The path ended: only a trailing `{**}` (zero segments) still matches.
                return match seg {
                    Seg::Rest(idx) => {
                        if want.is_some() && *idx == want {
                            found = Some("");
                        }
                        Some(found)
                    }
                    _ => None,
                };
            }
            match seg {
                Seg::Rest(idx) => {
                    if want.is_some() && *idx == want {
                        found = Some(rest);
                    }
                    return Some(found);
                }
                _ => {
                    let (cur, next) = match rest.split_once('/') {
                        Some((c, n)) => (c, n),
                        None => {
                            done = true;
                            (rest, "")
                        }
                    };
                    match seg {
                        Seg::Lit(l) if **l == *cur => {}
                        Seg::One(idx) if !cur.is_empty() => {
                            if want.is_some() && *idx == want {
                                found = Some(cur);
                            }
                        }
                        _ => return None,
                    }
                    rest = next;
                }
            }
        }
        done.then_some(found)
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

    /// The first segment when it is a literal (used to index rules).
    pub fn first_literal(&self) -> Option<&str> {
        match self.segs.first() {
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
        assert!(t.matches("/users/alice/orders"));
        assert!(t.matches("/users/alice/orders/1/items"));
        assert!(!t.matches("/users//orders/1"));
        assert!(!t.matches("/users/alice"));
        assert!(!t.matches("/users/alice/carts/1"));
        assert_eq!(t.capture("/users/alice/orders/9", 0), Some("alice"));
        let t = Template::parse_plain("/a/{*}/b").unwrap();
        assert!(t.matches("/a/x/b"));
        assert!(!t.matches("/a/x/y/b"));
        assert!(!t.matches("/a/x/b/c"));
        assert_eq!(t.first_literal(), Some("a"));
        let mut names = Vec::new();
        let t = Template::parse("/files/{path=**}", &mut names).unwrap();
        assert_eq!(t.capture("/files/a/b", 0), Some("a/b"));
        assert!(!t.matches("/other"));
    }

    #[test]
    fn refused_templates() {
        for bad in [
            "users/{id}",
            "/a/{**}/b",
            "/a/x{id}",
            "/a/{id=foo}",
            "/a/{i d}",
            "/a/{x}/{x}",
        ] {
            assert!(Template::parse_plain(bad).is_err(), "{bad}");
        }
    }
}
