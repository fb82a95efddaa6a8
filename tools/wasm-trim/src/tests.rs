use super::*;
use wasm_encoder::{
    CodeSection, CustomSection, ExportKind, ExportSection, Function, FunctionSection, Instruction,
    MemorySection, MemoryType, Module, TypeSection,
};

/// A module exporting `names` (all the same empty function) and memory,
/// with an optional `meshward.callbacks` section.
fn module(names: &[&str], declared: Option<&str>) -> Vec<u8> {
    let mut m = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], []);
    m.section(&types);
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    m.section(&funcs);
    let mut mem = MemorySection::new();
    mem.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    m.section(&mem);
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    for n in names {
        exports.export(n, ExportKind::Func, 0);
    }
    m.section(&exports);
    let mut code = CodeSection::new();
    let mut f = Function::new([]);
    f.instruction(&Instruction::End);
    code.function(&f);
    m.section(&code);
    if let Some(text) = declared {
        m.section(&CustomSection {
            name: SECTION.into(),
            data: text.as_bytes().into(),
        });
    }
    m.finish()
}

const ALL: &[&str] = &[
    "proxy_on_context_create",
    "proxy_on_request_headers",
    "proxy_on_request_body",
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_log",
    "proxy_on_done",
    "proxy_on_delete",
    "proxy_on_tick",
    "proxy_on_memory_allocate",
];

#[test]
fn drops_only_undeclared_stream_callbacks() {
    let t = trim(&module(ALL, Some("request_headers\ndone\n"))).unwrap();
    assert_eq!(
        t.removed,
        [
            "proxy_on_request_body",
            "proxy_on_response_headers",
            "proxy_on_response_body",
            "proxy_on_log"
        ]
    );
    assert_eq!(
        exports(&t.module).unwrap(),
        [
            "memory",
            "proxy_on_context_create",
            "proxy_on_request_headers",
            "proxy_on_done",
            "proxy_on_delete",
            "proxy_on_tick",
            "proxy_on_memory_allocate"
        ]
    );
    assert_eq!(t.declared, ["request_headers", "done"]);
    wasmparser::Validator::new()
        .validate_all(&t.module)
        .unwrap();
    // Idempotent: the declaration travels with the module.
    let again = trim(&t.module).unwrap();
    assert!(again.removed.is_empty());
    assert_eq!(again.module, t.module);
}

#[test]
fn a_module_without_a_declaration_is_refused() {
    let err = trim(&module(ALL, None)).unwrap_err();
    assert!(matches!(err, TrimError::NoDeclaration), "{err}");
    assert!(err.to_string().contains("stream_callbacks!"));
}

#[test]
fn an_unknown_callback_name_is_refused() {
    let err = trim(&module(ALL, Some("request_headers\ntick\n"))).unwrap_err();
    assert!(
        matches!(err, TrimError::UnknownCallback(ref n) if n == "tick"),
        "{err}"
    );
}

#[test]
fn garbage_is_a_parse_error_not_a_panic() {
    assert!(matches!(
        trim(b"\0asm\x01\0\0\0\x07\xff"),
        Err(TrimError::Parse(_))
    ));
    assert!(matches!(trim(b"not wasm"), Err(TrimError::Parse(_))));
}
