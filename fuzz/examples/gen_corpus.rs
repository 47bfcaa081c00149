//! Writes the seed corpora: `cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus`.
//!
//! Seeds come from real exchanges between two endpoints with the fuzzing provider, from
//! packets the ESP engine seals, and from the strings used around the code base. Existing
//! files with other names (found by the fuzzer, or added by hand) are left alone.

use std::path::Path;

use ipsec_fuzz::ike_harness::Role;
use ipsec_fuzz::{core_harness, esp_harness, ike_harness, strings_harness};

/// Named inputs of one target.
type Seeds = Vec<(String, Vec<u8>)>;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let sets: Vec<(&str, Seeds)> = vec![
        ("ike_message", ike_harness::message_seeds()),
        (
            "ike_responder",
            ike_harness::endpoint_seeds(Role::Responder),
        ),
        (
            "ike_initiator",
            ike_harness::endpoint_seeds(Role::Initiator),
        ),
        ("esp_decapsulate", esp_harness::seeds()),
        ("replay_window", core_harness::replay_seeds()),
        ("traffic_selectors", core_harness::ts_seeds()),
        ("proposal_strings", strings_harness::seeds()),
    ];
    #[cfg(feature = "peer-config")]
    let sets = {
        let mut sets = sets;
        sets.push(("peer_config", ipsec_fuzz::peer_config_harness::seeds()));
        sets
    };
    for (target, seeds) in sets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        for (name, data) in &seeds {
            std::fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
        }
        println!("{target}: {} seeds", seeds.len());
    }
}
