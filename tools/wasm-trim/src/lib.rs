//! Remove the exports of per-stream callbacks a module did not declare in
//! its `meshward.callbacks` custom section (see `meshward_shared::callbacks`).
//! Every other section is copied byte for byte.

use std::fmt;

use meshward_shared::callbacks::STREAM;
use wasm_encoder::{ExportKind, ExportSection, RawSection};
use wasmparser::{ExternalKind, Parser, Payload};

pub use meshward_shared::callbacks::SECTION;

#[derive(Debug)]
pub enum TrimError {
    Parse(wasmparser::BinaryReaderError),
    /// The module does not say which callbacks it needs: trimming blind could
    /// remove one it implements.
    NoDeclaration,
    UnknownCallback(String),
    Truncated,
}

impl fmt::Display for TrimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrimError::Parse(e) => write!(f, "not a valid Wasm module: {e}"),
            TrimError::NoDeclaration => write!(
                f,
                "no `{SECTION}` custom section: declare the filter's callbacks with meshward_shared::stream_callbacks!"
            ),
            TrimError::Truncated => write!(f, "a section lies outside the module"),
            TrimError::UnknownCallback(n) => {
                write!(f, "`{SECTION}` names `{n}`, which is not a stream callback")
            }
        }
    }
}

impl std::error::Error for TrimError {}

impl From<wasmparser::BinaryReaderError> for TrimError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        TrimError::Parse(e)
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub module: Vec<u8>,
    pub declared: Vec<String>,
    pub removed: Vec<String>,
}

/// The callbacks a module declares, if it declares any.
pub fn declared(module: &[u8]) -> Result<Option<Vec<String>>, TrimError> {
    let mut out: Option<Vec<String>> = None;
    for payload in Parser::new(0).parse_all(module) {
        if let Payload::CustomSection(c) = payload? {
            if c.name() == SECTION {
                let text = String::from_utf8_lossy(c.data());
                let names = out.get_or_insert_with(Vec::new);
                for n in text.split('\n').map(str::trim).filter(|n| !n.is_empty()) {
                    if !STREAM.contains(&n) {
                        return Err(TrimError::UnknownCallback(n.to_string()));
                    }
                    // A module linking several filters holds each one's list (the suite).
                    if !names.iter().any(|have| have == n) {
                        names.push(n.to_string());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The module's export names, in order.
pub fn exports(module: &[u8]) -> Result<Vec<String>, TrimError> {
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        if let Payload::ExportSection(s) = payload? {
            for e in s {
                out.push(e?.name.to_string());
            }
        }
    }
    Ok(out)
}

pub fn trim(module: &[u8]) -> Result<Trimmed, TrimError> {
    let declared = declared(module)?.ok_or(TrimError::NoDeclaration)?;
    let dropped = |name: &str| {
        name.strip_prefix("proxy_on_")
            .is_some_and(|cb| STREAM.contains(&cb) && !declared.iter().any(|d| d == cb))
    };
    let mut out = wasm_encoder::Module::new();
    let mut removed = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload?;
        match &payload {
            Payload::Version { .. } | Payload::End(_) => continue,
            Payload::ExportSection(s) => {
                let mut section = ExportSection::new();
                for e in s.clone() {
                    let e = e?;
                    if dropped(e.name) {
                        removed.push(e.name.to_string());
                        continue;
                    }
                    section.export(e.name, kind(e.kind), e.index);
                }
                out.section(&section);
            }
            _ => {
                if let Some((id, range)) = payload.as_section() {
                    let data = usize::try_from(range.start)
                        .ok()
                        .zip(usize::try_from(range.end).ok())
                        .and_then(|(a, b)| module.get(a..b))
                        .ok_or(TrimError::Truncated)?;
                    out.section(&RawSection { id, data });
                }
            }
        }
    }
    Ok(Trimmed {
        module: out.finish(),
        declared,
        removed,
    })
}

fn kind(k: ExternalKind) -> ExportKind {
    match k {
        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
    }
}

#[cfg(test)]
mod tests;
