//! The proxy-wasm ABI calls whose SDK wrappers (proxy-wasm 0.2) panic on a
//! status Envoy does return, called here with every status mapped to a value.
//!
//! Envoy answers `BadArgument` to a header-map call when it no longer holds
//! the map: request headers once `on_http_request_headers` returned Continue
//! or after the request was resumed, response headers outside
//! `on_http_response_headers`, any map in a root context. `set_property`
//! answers `NotFound` in a root context. The SDK turns each of those into a
//! panic, which traps the VM and fails every later request on the worker.
//! Here they are an absent header or an error (envoyproxy/envoy
//! `source/extensions/common/wasm/context.cc`: `getConstMap`,
//! `getHeaderMapValue`, `setProperty`).
//!
//! The statuses are read as `u32`, not the SDK's `Status` enum, so a code it
//! has no variant for (6, 12) is a value too. Clippy's `disallowed-methods`
//! (workspace `clippy.toml`) keeps the panicking wrappers out of the tree.

use std::borrow::Cow;

use proxy_wasm::types::{MapType, Status};

use crate::host::HostError;

const OK: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

/// The error for a non-Ok status, named like the SDK's `Status` where it has one.
pub fn error(call: &'static str, code: u32) -> HostError {
    let known = [
        Status::Ok,
        Status::NotFound,
        Status::BadArgument,
        Status::SerializationFailure,
        Status::ParseFailure,
        Status::Empty,
        Status::CasMismatch,
        Status::InternalFailure,
    ];
    match known.into_iter().find(|s| *s as u32 == code) {
        Some(s) => HostError::new(call, s),
        None => HostError {
            call,
            status: format!("status {code}"),
        },
    }
}

/// One header's value; `None` when absent or when the map is not available now.
pub fn header_value(map: MapType, key: &str) -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: key is a live slice; on Ok the host has written a buffer it
    // allocated through this module's `proxy_on_memory_allocate` (the SDK's
    // global allocator), which we now own.
    let code = unsafe {
        proxy_get_header_map_value(map as u32, key.as_ptr(), key.len(), &mut data, &mut size)
    };
    match code {
        OK if data.is_null() => Some(Vec::new()),
        // SAFETY: see above; size is the allocation's length.
        OK => Some(unsafe { Vec::from_raw_parts(data, size, size) }),
        _ => None,
    }
}

/// Replace a header, or remove it with `None`.
pub fn set_header(map: MapType, key: &str, value: Option<&str>) -> Result<(), HostError> {
    // SAFETY: every pointer comes from a live slice of the given length.
    let code = unsafe {
        match value {
            Some(v) => proxy_replace_header_map_value(
                map as u32,
                key.as_ptr(),
                key.len(),
                v.as_ptr(),
                v.len(),
            ),
            None => proxy_remove_header_map_value(map as u32, key.as_ptr(), key.len()),
        }
    };
    status("set_header_map_value", code)
}

/// Add a header (a repeat of an existing name adds another value).
pub fn add_header(map: MapType, key: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: every pointer comes from a live slice of the given length.
    let code = unsafe {
        proxy_add_header_map_value(
            map as u32,
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    status("add_header_map_value", code)
}

/// Set a property (filter state) at `path`.
pub fn set_property(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    let path = property_path(path);
    // SAFETY: every pointer comes from a live slice of the given length.
    let code =
        unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) };
    status("set_property", code)
}

/// The ABI's property path: the segments joined by NUL.
pub fn property_path(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

/// The longest cluster name [`grpc_upstream`] can wrap (one-byte lengths).
pub const GRPC_CLUSTER_MAX: usize = 125;

/// The `upstream` of a gRPC call: a serialized `GrpcService` whose
/// `envoy_grpc.cluster_name` (fields 1 and 1) is `cluster`. Envoy reads the
/// bytes as that message when they parse as one, and as a bare cluster name
/// only when they do not. Some names parse (`a-cluster`: field 12, fixed64,
/// the other 8 bytes), leaving a service with no target, and Envoy 1.40 then
/// aborts the whole process ("panic: unset oneof"). Sent as the message, any
/// name means itself. Both lengths stay below 128 so each is one byte, as
/// the SDK passes this as `&str`: configs refuse names over
/// [`GRPC_CLUSTER_MAX`], and a longer one would go bare.
pub fn grpc_upstream(cluster: &str) -> Cow<'_, str> {
    let (Ok(inner), Ok(outer)) = (u8::try_from(cluster.len()), u8::try_from(cluster.len() + 2))
    else {
        return Cow::Borrowed(cluster);
    };
    if cluster.len() > GRPC_CLUSTER_MAX {
        return Cow::Borrowed(cluster);
    }
    let mut s = String::with_capacity(cluster.len() + 4);
    s.push('\n'); // field 1 (envoy_grpc), length-delimited
    s.push(char::from(outer));
    s.push('\n'); // field 1 (cluster_name), length-delimited
    s.push(char::from(inner));
    s.push_str(cluster);
    Cow::Owned(s)
}

fn status(call: &'static str, code: u32) -> Result<(), HostError> {
    match code {
        OK => Ok(()),
        _ => Err(error(call, code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_paths_are_nul_joined() {
        assert_eq!(property_path(&["a", "b.c"]), b"a\0b.c".to_vec());
        assert_eq!(property_path(&["one"]), b"one".to_vec());
        assert!(property_path(&[]).is_empty());
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct EnvoyGrpc {
        #[prost(string, tag = "1")]
        cluster_name: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct GrpcService {
        #[prost(message, optional, tag = "1")]
        envoy_grpc: Option<EnvoyGrpc>,
    }

    #[test]
    fn grpc_upstream_is_a_grpc_service_naming_the_cluster() {
        use prost::Message;
        for name in [
            "rls",
            "a-cluster",
            "outbound|8081||ratelimit.default.svc.cluster.local",
        ] {
            let up = grpc_upstream(name);
            let svc = GrpcService::decode(up.as_bytes()).unwrap();
            assert_eq!(svc.envoy_grpc.unwrap().cluster_name, name);
        }
        let longest = "c".repeat(125);
        assert!(matches!(grpc_upstream(&longest), Cow::Owned(_)));
        let too_long = "c".repeat(126);
        assert_eq!(grpc_upstream(&too_long), too_long.as_str());
    }

    #[test]
    fn statuses_outside_the_sdk_enum_are_errors_too() {
        assert!(error("x", 2).is(Status::BadArgument));
        assert!(error("x", 1).is(Status::NotFound));
        assert_eq!(error("x", 12).status, "status 12");
        assert_eq!(status("x", 0), Ok(()));
        assert!(status("x", 6).is_err());
    }
}
