#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshward_fuzz::targets::authz_config(data));
