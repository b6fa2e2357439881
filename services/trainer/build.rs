//! Records the source revision the trainer was built from, so every run
//! names the code that produced it. `MLOPS_GIT_REVISION` overrides (image
//! builds without `.git`).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MLOPS_GIT_REVISION");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Rerun when HEAD moves; only paths that exist, or cargo reruns always.
    for path in [".git/HEAD", ".git/logs/HEAD"] {
        let path = root.join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let revision = std::env::var("MLOPS_GIT_REVISION")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .current_dir(&root)
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=MLOPS_TRAINER_REVISION={revision}");
}
