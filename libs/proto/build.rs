//! Compiles `proto/` with protox (a pure-Rust protobuf compiler), so building
//! needs no system `protoc`. Also writes the file descriptor set that gRPC
//! server reflection serves.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let platform = [
        "mlops/events/v1/events.proto",
        "mlops/registry/v1/registry.proto",
        "mlops/predictions/v1/predictions.proto",
    ];
    let inference = ["inference/grpc_service.proto"];
    println!("cargo:rerun-if-changed={}", root.display());

    // One descriptor set per server, so each reflects only what it serves.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let inference_descriptors = protox::compile(inference, [&root])?;
    std::fs::write(
        out_dir.join("inference_descriptor.bin"),
        inference_descriptors.encode_to_vec(),
    )?;
    let mut descriptors = protox::compile(platform, [&root])?;
    std::fs::write(
        out_dir.join("mlops_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    descriptors.file.extend(inference_descriptors.file);
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Clients wrap a channel built by the caller; keeps this crate free of
        // tonic's transport stack.
        .build_transport(false)
        // Artifact chunks pass through without a copy.
        .bytes(".mlops.registry.v1")
        .bytes(".inference")
        .compile_fds(descriptors)?;
    Ok(())
}
