//! cargo-fuzz target: [`strand_tests::fuzz::search_query`] (its doc says what must hold).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    strand_tests::fuzz::search_query(data);
});
