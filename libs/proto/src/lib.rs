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

/// Encoded `FileDescriptorSet` of every file in `proto/` (and its imports), for
/// gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mlops_descriptor.bin"));
