//! Compiles `proto/` with protox (a pure-Rust protobuf compiler), so building
//! needs no system `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["mlops/events/v1/events.proto"];
    println!("cargo:rerun-if-changed={}", root.display());

    let descriptors = protox::compile(files, [&root])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(false)
        .compile_fds(descriptors)?;
    Ok(())
}
