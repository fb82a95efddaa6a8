//! `meshward`: check configs before deploying them, and ask authz why.
//!
//! Both commands run the filters' own code (config compilers, authz's
//! lifecycle), natively; nothing here reimplements a filter.

mod explain;
mod validate;

use std::path::Path;
use std::process::ExitCode;

use validate::Module;

const USAGE: &str = "usage:
  meshward validate [--module jwt-auth|authz|rate-limit|suite] FILE...
      compile each JSON config with its module's own compiler (the module is
      inferred from the config's fields unless given); exit 1 if any fails
  meshward explain --config AUTHZ.json --request REQUEST.json
      run authz on the request the file describes; print the decision as JSON
      (docs/cli.md has the request format)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("validate") => run_validate(&args[1..]),
        Some("explain") => run_explain(&args[1..]),
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
