//! Generated protobuf types and gRPC stubs for the platform's contracts
//! (`proto/`).

pub mod events {
    pub mod v1 {
        #![allow(clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/mlops.events.v1.rs"));

        /// Value of the Kafka `schema-version` header for this package.
        pub const SCHEMA_VERSION: &str = "v1";
    }
}

pub mod registry {
    pub mod v1 {
        #![allow(clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/mlops.registry.v1.rs"));

        /// Value of the Kafka `schema-version` header for registry events.
        pub const SCHEMA_VERSION: &str = "v1";
    }
}

pub mod predictions {
    pub mod v1 {
        #![allow(clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/mlops.predictions.v1.rs"));

        /// Value of the Kafka `schema-version` header for predictions.
        pub const SCHEMA_VERSION: &str = "v1";
    }
}

/// The Open Inference Protocol's gRPC binding (KServe's and Triton's package
/// name, kept for wire compatibility).
pub mod inference {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/inference.rs"));
}

/// Encoded `FileDescriptorSet` of the `inference` package, for the
/// gateway's gRPC server reflection.
pub const INFERENCE_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/inference_descriptor.bin"));

/// Encoded `FileDescriptorSet` of every `mlops` file in `proto/` (and its imports), for
/// gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mlops_descriptor.bin"));
