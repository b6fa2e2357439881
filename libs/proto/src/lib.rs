//! Generated protobuf types for the platform's contracts (`proto/`).

pub mod events {
    pub mod v1 {
        #![allow(clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/mlops.events.v1.rs"));

        /// Value of the Kafka `schema-version` header for this package.
        pub const SCHEMA_VERSION: &str = "v1";
    }
}
