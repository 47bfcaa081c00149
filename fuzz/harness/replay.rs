//! Replaying committed fuzz inputs from `cargo test` (shared by the library crates' replay
//! tests through `#[path]`).

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;

/// Runs `check` on every file of `target`'s corpus and regression directories under
/// `fuzz_dir`; returns how many there were. A failing input is named before the panic is
/// propagated.
pub fn replay(fuzz_dir: &Path, target: &str, check: impl Fn(&[u8])) -> usize {
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(dir) = std::fs::read_dir(fuzz_dir.join(kind).join(target)) else {
            continue;
        };
        let mut files: Vec<_> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for f in files.iter().filter(|f| f.is_file()) {
            let data = std::fs::read(f).expect("read corpus file");
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
                eprintln!("fuzz input {} failed", f.display());
                resume_unwind(e);
            }
            n += 1;
        }
    }
    n
}
