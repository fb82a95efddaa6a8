//! `meshward`: check configs before deploying them, and ask authz why.
//!
//! Both commands run the filters' own code (config compilers, authz's
//! lifecycle), natively; nothing here reimplements a filter.

mod explain;
mod jwt;
mod manifest;
mod validate;

use std::path::Path;
use std::process::ExitCode;

use validate::Module;

const USAGE: &str = "usage:
  meshward validate [--module jwt-auth|authz|rate-limit|suite] FILE...
      compile each JSON config with its module's own compiler (the module is
      inferred from the config's fields unless given); a .yaml/.yml file is
      read as Kubernetes manifests: each Istio WasmPlugin's spec.pluginConfig
      is compiled for the module its spec.url loads; exit 1 if any fails
  meshward explain --config AUTHZ.json --request REQUEST.json
      run authz on the request the file describes; print the decision as JSON
      (docs/cli.md has the request format)
  meshward jwt inspect TOKEN [--jwks JWKS.json] [--config JWT-AUTH.json]
      decode a token; with keys, check its signature; with a jwt-auth config,
      run every provider's checks; exit 1 if a check asked for fails
  meshward token --key KEY.pem [--kid K] [--iss I] [--aud A] [--sub S]
                 [--scope S] [--ttl SECONDS] [--claim NAME=JSON]... [--print-jwks]
      mint an ES256 dev token (defaults: the demo's; `make run` writes
      .run/dev-key.pem), or print the key's public JWKS";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("validate") => run_validate(&args[1..]),
        Some("explain") => run_explain(&args[1..]),
        Some("jwt") if args.get(1).map(String::as_str) == Some("inspect") => {
            run_inspect(&args[2..])
        }
        Some("token") => run_token(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => usage_error("a command is required"),
    }
}

fn usage_error(why: &str) -> ExitCode {
    eprintln!("meshward: {why}\n{USAGE}");
    ExitCode::from(2)
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(Path::new(path)).map_err(|e| format!("{path}: cannot read: {e}"))
}

fn run_validate(args: &[String]) -> ExitCode {
    let mut module = None;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--module" => match it.next().map(|m| (m, Module::parse(m))) {
                Some((_, Some(m))) => module = Some(m),
                Some((m, None)) => return usage_error(&format!("unknown module `{m}`")),
                None => return usage_error("--module needs a value"),
            },
            flag if flag.starts_with("--") => {
                return usage_error(&format!("unknown option `{flag}`"))
            }
            file => files.push(file),
        }
    }
    if files.is_empty() {
        return usage_error("validate needs at least one FILE");
    }
    let mut failed = false;
    for path in files {
        if manifest::is_yaml(path) {
            let report = match read(path) {
                Ok(b) => manifest::check(path, &b),
                Err(e) => {
                    failed = true;
                    println!("{e}");
                    continue;
                }
            };
            failed |= report.failed;
            for line in report.lines {
                println!("{line}");
            }
            continue;
        }
        match read(path).and_then(|b| validate::file(&b, module)) {
            Ok(m) => println!("{path}: ok ({} config)", m.name()),
            Err(e) => {
                failed = true;
                println!("{path}: {e}");
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_explain(args: &[String]) -> ExitCode {
    let (mut config, mut request) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let slot = match a.as_str() {
            "--config" => &mut config,
            "--request" => &mut request,
            other => return usage_error(&format!("unknown argument `{other}`")),
        };
        match it.next() {
            Some(v) => *slot = Some(v.clone()),
            None => return usage_error(&format!("{a} needs a FILE")),
        }
    }
    let (Some(config), Some(request)) = (config, request) else {
        return usage_error("explain needs --config and --request");
    };
    let result = read(&config).and_then(|cfg| {
        let req = read(&request)?;
        let req: serde_json::Value = serde_json::from_slice(&req)
            .map_err(|e| format!("{request}: not a JSON document: {e}"))?;
        explain::explain(&cfg, &req)
    });
    match result {
        Ok(out) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&out).unwrap_or_else(|_| out.to_string())
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("meshward explain: {e}");
            ExitCode::from(1)
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn run_inspect(args: &[String]) -> ExitCode {
    let (mut token, mut jwks, mut config) = (None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let slot = match a.as_str() {
            "--jwks" => &mut jwks,
            "--config" => &mut config,
            flag if flag.starts_with("--") => {
                return usage_error(&format!("unknown option `{flag}`"))
            }
            t => {
                token = Some(t.to_string());
                continue;
            }
        };
        match it.next() {
            Some(v) => *slot = Some(v.clone()),
            None => return usage_error(&format!("{a} needs a FILE")),
        }
    }
    let Some(token) = token else {
        return usage_error("jwt inspect needs a TOKEN");
    };
    let result = (|| {
        let jwks = jwks
            .map(|p| read(&p).map(|b| String::from_utf8_lossy(&b).into_owned()))
            .transpose()?;
        let config = config.map(|p| read(&p)).transpose()?;
        jwt::inspect(&token, jwks.as_deref(), config.as_deref(), now())
    })();
    match result {
        Ok(i) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&i.report).unwrap_or_else(|_| i.report.to_string())
            );
            if i.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("meshward jwt inspect: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_token(args: &[String]) -> ExitCode {
    let mut claims = jwt::Claims::default();
    let (mut key, mut print_jwks) = (None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--print-jwks" {
            print_jwks = true;
            continue;
        }
        let Some(v) = it.next() else {
            return usage_error(&format!("{a} needs a value"));
        };
        match a.as_str() {
            "--key" => key = Some(v.clone()),
            "--kid" => claims.kid = v.clone(),
            "--iss" => claims.iss = v.clone(),
            "--aud" => claims.aud = v.clone(),
            "--sub" => claims.sub = v.clone(),
            "--scope" => claims.scope = v.clone(),
            "--ttl" => match v.parse() {
                Ok(t) => claims.ttl = t,
                Err(_) => return usage_error("--ttl needs whole seconds"),
            },
            "--claim" => {
                let Some((name, json)) = v.split_once('=') else {
                    return usage_error("--claim needs NAME=JSON");
                };
                let value = serde_json::from_str(json)
                    .unwrap_or_else(|_| serde_json::Value::String(json.to_string()));
                claims.extra.insert(name.to_string(), value);
            }
            other => return usage_error(&format!("unknown option `{other}`")),
        }
    }
    let Some(key) = key else {
        return usage_error("token needs --key (make run writes .run/dev-key.pem)");
    };
    let result = read(&key)
        .and_then(|b| jwt::key_from_pem(&String::from_utf8_lossy(&b)))
        .and_then(|k| {
            if print_jwks {
                Ok(jwt::jwks_for(&k, &claims.kid).to_string())
            } else {
                jwt::mint(&k, &claims, now())
            }
        });
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("meshward token: {e}");
            ExitCode::from(1)
        }
    }
}
