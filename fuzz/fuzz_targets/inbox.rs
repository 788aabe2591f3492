#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ps_fuzz_targets::inbox(data));
