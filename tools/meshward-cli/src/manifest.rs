//! `meshward validate x.yaml`: Kubernetes YAML (one or more documents); each
//! Istio `WasmPlugin`'s `spec.pluginConfig` goes through the same compilers
//! as a JSON config, other kinds are reported as skipped.

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::{Yaml, YamlLoader};

use crate::validate::{self, Module};

/// Larger manifests are refused rather than parsed.
const MAX_BYTES: usize = 4 << 20;

/// What one YAML file came to: one line per document, and whether any failed.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub failed: bool,
}

impl Report {
    fn error(&mut self, line: String) {
        self.failed = true;
        self.lines.push(line);
    }
}

pub fn is_yaml(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml")
}

/// Check every document of `text`; `path` names the file in each line.
pub fn check(path: &str, text: &[u8]) -> Report {
    let mut report = Report::default();
    let docs = match parse(text) {
        Ok(d) => d,
        Err(e) => {
            report.error(format!("{path}: {e}"));
            return report;
        }
    };
    for (index, doc) in docs.iter().enumerate() {
        let at = format!("{path}#{index}");
        match doc {
            Value::Null => {}
            Value::Object(obj) => document(&at, obj, &mut report),
            _ => report.error(format!("{at}: not a mapping (a Kubernetes object)")),
        }
    }
    if docs.iter().all(Value::is_null) {
        report.error(format!("{path}: no YAML document"));
    }
    report
}

fn document(at: &str, obj: &Map<String, Value>, report: &mut Report) {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    if kind != "WasmPlugin" || !api.starts_with("extensions.istio.io/") {
        let kind = if kind.is_empty() { "<no kind>" } else { kind };
        report
            .lines
            .push(format!("{at}: skipped ({kind} {name}: not a WasmPlugin)"));
        return;
    }
    let at = format!("{at} WasmPlugin {name}");
    let spec = obj.get("spec").and_then(Value::as_object);
    let url = spec.and_then(|s| s.get("url")).and_then(Value::as_str);
    let Some(config) = spec.and_then(|s| s.get("pluginConfig")) else {
        report.error(format!(
            "{at}: spec.pluginConfig: missing (a meshward module refuses an empty configuration)"
        ));
        return;
    };
    // The module the plugin loads decides; its config's fields only when the url names none.
    let module = url
        .and_then(module_of_url)
        .or_else(|| Module::infer(config));
    let Some(module) = module else {
        report.error(format!(
            "{at}: spec.pluginConfig: cannot tell which module it is for (spec.url names no meshward module and the fields fit none)"
        ));
        return;
    };
    let bytes = config.to_string();
    match validate::check(module, bytes.as_bytes()) {
        Ok(()) => report
            .lines
            .push(format!("{at}: ok ({} config)", module.name())),
        Err(e) => report.error(format!(
            "{at}: {} config: {}",
            module.name(),
            e.within("spec.pluginConfig")
        )),
    }
}

/// The module a WasmPlugin `url` loads, from its file or image name:
/// `oci://ghcr.io/meshward/authz:0.1.0`, `.../authz@sha256:...`,
/// `file:///opt/meshward-authz.wasm` -> authz.
pub fn module_of_url(url: &str) -> Option<Module> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let last = last.split('@').next().unwrap_or(last);
    let last = last.split(':').next().unwrap_or(last);
    let last = last.strip_suffix(".wasm").unwrap_or(last);
    let last = last.strip_prefix("meshward-").unwrap_or(last);
    Module::parse(last)
}

/// YAML text to JSON values, one per document.
pub fn parse(text: &[u8]) -> Result<Vec<Value>, String> {
    if text.len() > MAX_BYTES {
        return Err(format!("larger than {MAX_BYTES} bytes"));
    }
    let text = std::str::from_utf8(text).map_err(|e| format!("not UTF-8: {e}"))?;
    refuse_aliases(text)?;
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("YAML: {e}"))?;
    docs.iter()
        .enumerate()
        .map(|(i, d)| to_json(d).map_err(|e| format!("document {i}: {e}")))
        .collect()
}

/// The loader copies an alias's node for every use, so nested aliases grow
/// exponentially (the "billion laughs"); manifests don't need them.
fn refuse_aliases(text: &str) -> Result<(), String> {
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => return Ok(()),
            Ok((Event::Alias(_), mark)) => {
                return Err(format!(
                    "YAML aliases (*name) are not supported (line {} column {})",
                    mark.line(),
                    mark.col() + 1
                ))
            }
            Ok(_) => {}
            Err(e) => return Err(format!("YAML: {e}")),
        }
    }
}

fn to_json(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Real(r) => r
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("number `{r}` has no JSON form"))?,
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut map = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Real(r) => r.clone(),
                    other => return Err(format!("mapping key {other:?} is not a scalar")),
                };
                map.insert(key, to_json(v)?);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err("a value YAML could not resolve".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLUGIN: &str = "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: p}\nspec:\n  url: URL\n  pluginConfig:\n";

    fn plugin(url: &str, config: &str) -> String {
        format!("{}{config}", PLUGIN.replace("URL", url))
    }

    #[test]
    fn the_url_names_the_module() {
        for (url, want) in [
            ("oci://ghcr.io/meshward/authz:0.1.0", Some(Module::Authz)),
            ("ghcr.io/meshward/jwt-auth", Some(Module::JwtAuth)),
            (
                "oci://ghcr.io/meshward/rate-limit@sha256:00",
                Some(Module::RateLimit),
            ),
            ("file:///opt/meshward-authz.wasm", Some(Module::Authz)),
            ("https://h/dist/meshward.wasm?x=1", Some(Module::Suite)),
            ("oci://localhost:5000/nosuch:1", None),
        ] {
            assert_eq!(module_of_url(url), want, "{url}");
        }
    }

    #[test]
    fn plugin_config_errors_carry_file_document_plugin_and_path() {
        let text = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s}}\n---\n{}",
            plugin(
                "oci://x/rate-limit:1",
                "    rules:\n    - name: a\n      limit: {requests: 0, per: second}\n"
            )
        );
        let r = check("m.yaml", text.as_bytes());
        assert!(r.failed);
        assert_eq!(
            r.lines[0],
            "m.yaml#0: skipped (Service s: not a WasmPlugin)"
        );
        assert!(
            r.lines[1].starts_with(
                "m.yaml#1 WasmPlugin p: rate-limit config: spec.pluginConfig.rules[0].limit.requests"
            ),
            "{}",
            r.lines[1]
        );
    }

    #[test]
    fn the_url_beats_the_fields() {
        // a jwt-auth config in a plugin that loads authz fails as authz's config
        let r = check(
            "m.yaml",
            plugin("oci://x/authz:1", "    providers: {}\n").as_bytes(),
        );
        assert!(
            r.failed && r.lines[0].contains("authz config: spec.pluginConfig"),
            "{:?}",
            r.lines
        );
        // no module in the url: inferred from the config
        let r = check(
            "m.yaml",
            plugin("oci://x/custom:1", "    providers: {}\n").as_bytes(),
        );
        assert!(r.lines[0].contains("jwt-auth config"), "{:?}", r.lines);
    }

    #[test]
    fn bad_yaml_is_a_clear_error() {
        for (text, want) in [
            ("a: [1, 2\n", "YAML: "),
            ("a: 1\na: 2\n", "duplicated key"),
            ("a: &x [1]\nb: *x\n", "aliases"),
            ("- 1\n", "not a mapping"),
            ("", "no YAML document"),
            ("a: .nan\n", "no JSON form"),
        ] {
            let r = check("f.yaml", text.as_bytes());
            assert!(r.failed, "{text}");
            assert!(
                r.lines.iter().any(|l| l.contains(want)),
                "{text}: {:?}",
                r.lines
            );
        }
        // nesting is bounded by the parser, so the conversion's recursion is too
        let deep = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let r = check("f.yaml", deep.as_bytes());
        assert!(
            r.failed && r.lines[0].contains("recursion limit"),
            "{:?}",
            r.lines
        );
        let r = check("f.yaml", &[0xff, 0xfe]);
        assert!(r.failed && r.lines[0].contains("not UTF-8"));
        let r = check(
            "f.yaml",
            plugin("oci://x/authz:1", "")
                .replace("  pluginConfig:\n", "")
                .as_bytes(),
        );
        assert!(
            r.failed && r.lines[0].contains("spec.pluginConfig: missing"),
            "{:?}",
            r.lines
        );
    }

    #[test]
    fn yaml_scalars_become_the_json_the_filter_reads() {
        let v = parse(b"t: 08:00\nu: yes\nq: '18:00'\nn: 1.5\ni: 7\nz: ~\n").unwrap();
        assert_eq!(
            v[0],
            serde_json::json!({"t": "08:00", "u": "yes", "q": "18:00", "n": 1.5, "i": 7, "z": null})
        );
    }
}
