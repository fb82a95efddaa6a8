#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Allocations while building a request view, counted by a wrapping global
//! allocator. Under V8 every allocation is a call into the module's own
//! allocator, so the view of a JSON body keeps to a few per field: its name
//! and its bytes, with object keys and array indices written into one path
//! buffer rather than allocated each.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use anomaly::request::{Input, Limits, View};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn json_view_allocates_a_few_times_per_field() {
    let item = r#"{"sku":"SKU-000123","qty":2,"price":12.5,"note":"Leave it at the door, thanks"}"#;
    let items = vec![item; 40].join(",");
    let body = format!(
        r#"{{"customer":{{"name":"Ann","address":{{"street":"1 Main St","city":"Cork"}}}},"items":[{items}],"tags":["a","b"]}}"#
    );
    let headers: &[(&[u8], &[u8])] = &[(b"content-type", b"application/json")];
    let input = Input {
        method: b"POST",
        path: b"/orders",
        headers,
        body: Some(body.as_bytes()),
        body_truncated: false,
    };
    let before = ALLOCS.load(Relaxed);
    let view = View::build(&input, Limits::default());
    let used = ALLOCS.load(Relaxed) - before;
    let fields = view.fields.len();
    assert_eq!(fields, 1 + 3 + 40 * 2 + 2, "every string leaf is a field");
    // A name and a copy of the bytes per field, plus the growth of a few vectors.
    assert!(
        used <= 3 * fields + 24,
        "{used} allocations for {fields} fields"
    );
    println!("{used} allocations for {fields} fields");
}
