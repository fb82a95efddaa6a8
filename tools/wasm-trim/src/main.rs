//! `wasm-trim IN OUT`: write IN without the stream-callback exports it does
//! not declare. `wasm-trim --list IN`: print its exports.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasm-trim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args {
        [flag, input] if flag == "--list" => {
            let bytes = read(input)?;
            for name in wasm_trim::exports(&bytes).map_err(|e| format!("{input}: {e}"))? {
                println!("{name}");
            }
            Ok(())
        }
        [input, output] => {
            let bytes = read(input)?;
            let t = wasm_trim::trim(&bytes).map_err(|e| format!("{input}: {e}"))?;
            std::fs::write(output, &t.module).map_err(|e| format!("{output}: {e}"))?;
            println!(
                "{output}: keeps {}; removed {}",
                t.declared.join(","),
                if t.removed.is_empty() {
                    "nothing".to_string()
                } else {
                    t.removed.join(",")
                }
            );
            Ok(())
        }
        _ => Err("usage: wasm-trim IN.wasm OUT.wasm | wasm-trim --list IN.wasm".to_string()),
    }
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}
