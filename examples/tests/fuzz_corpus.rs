//! Replays the committed corpus of the `tun_coalescer` fuzz target through the same check
//! (`fuzz/harness/coalescer.rs`), so that plain `cargo test` keeps every input passing.

#[path = "../../fuzz/harness/coalescer.rs"]
mod coalescer_harness;

#[test]
fn tun_coalescer_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in ["corpus/tun_coalescer", "regressions/tun_coalescer"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            coalescer_harness::check_coalescer(&data);
            n += 1;
        }
    }
    assert!(n >= 5, "the committed seeds are there ({n} inputs)");
}
