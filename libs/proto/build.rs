//! Compiles `proto/` with protox (a pure-Rust protobuf compiler), so building
//! needs no system `protoc`. Also writes the file descriptor set that gRPC
//! server reflection serves.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "mlops/events/v1/events.proto",
        "mlops/registry/v1/registry.proto",
    ];
    println!("cargo:rerun-if-changed={}", root.display());

    let descriptors = protox::compile(files, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("mlops_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Clients wrap a channel built by the caller; keeps this crate free of
        // tonic's transport stack.
        .build_transport(false)
        // Artifact chunks pass through without a copy.
        .bytes(".mlops.registry.v1")
        .compile_fds(descriptors)?;
    Ok(())
}
