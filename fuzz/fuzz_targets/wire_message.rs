#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mirror_fuzz::wire_message(data));
