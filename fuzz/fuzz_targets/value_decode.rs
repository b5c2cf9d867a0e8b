#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mirror_fuzz::value_decode(data));
