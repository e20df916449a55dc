//! Tauri's build step, plus a stand-in front end: `generate_context!` refuses to compile without
//! `frontendDist` (../ui/dist), which only exists after `npm run build` in ui/. So that
//! `cargo build`, `cargo clippy` and `cargo test` of the workspace work in a fresh checkout (CI
//! jobs without node), a missing dist gets a placeholder page that says how to build the real one.
//! tests/desktop-smoke.sh always builds ui/ first, so the shipped page is the one it checks.

use std::path::Path;

const PLACEHOLDER: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"UTF-8\"><title>Twofold</title></head>\n\
<body><h1>Twofold</h1><p>This build has no front end: run <code>npm ci &amp;&amp; npm run build</code> in <code>ui/</code>, then build the app again.</p></body></html>\n";

fn main() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/dist");
    // Run again when the front end is (re)built, so the placeholder warning does not linger.
    println!(
        "cargo:rerun-if-changed={}",
        dist.join("index.html").display()
    );
    if !dist.join("index.html").exists() {
        println!(
            "cargo:warning=ui/dist is missing: embedding a placeholder page; run `npm ci && npm run build` in ui/ for the real window"
        );
        std::fs::create_dir_all(&dist).expect("create ui/dist");
        std::fs::write(dist.join("index.html"), PLACEHOLDER).expect("write ui/dist/index.html");
    }
    tauri_build::build();
}
