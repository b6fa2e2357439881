//! Bearer-token authentication and role checks.
//!
//! Tokens are random 256-bit secrets; the registry keeps only their sha256
//! (a slow password hash buys nothing for secrets with that much entropy).
//! A bootstrap admin token can be given by env or file to create the first
//! real tokens.

use std::fmt;

use mlops_proto::registry::v1 as pb;
use rand::RngExt;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Roles are ordered: each includes the rights of the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Reader,
    Writer,
    Approver,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::Writer => "writer",
            Self::Approver => "approver",
            Self::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "reader" => Some(Self::Reader),
            "writer" => Some(Self::Writer),
            "approver" => Some(Self::Approver),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn from_proto(role: i32) -> Result<Self> {
        match pb::Role::try_from(role) {
            Ok(pb::Role::Reader) => Ok(Self::Reader),
            Ok(pb::Role::Writer) => Ok(Self::Writer),
            Ok(pb::Role::Approver) => Ok(Self::Approver),
            Ok(pb::Role::Admin) => Ok(Self::Admin),
            _ => Err(Error::invalid(
                "role must be one of ROLE_READER, ROLE_WRITER, ROLE_APPROVER, ROLE_ADMIN",
            )),
        }
    }

    pub fn to_proto(self) -> pb::Role {
        match self {
            Self::Reader => pb::Role::Reader,
            Self::Writer => pb::Role::Writer,
            Self::Approver => pb::Role::Approver,
            Self::Admin => pb::Role::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is calling: the token's name (recorded in the audit log) and its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    pub fn require(&self, needed: Role, action: &str) -> Result<()> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "{action} needs the {needed} role; token {:?} has the {} role",
                self.name, self.role
            )))
        }
    }
}

/// A newly minted token: shown once to its creator, stored as a hash.
pub struct NewToken {
    pub token_id: String,
    pub secret: SecretString,
    pub secret_sha256: String,
}

/// Token secrets look like `mlops_<64 hex>`; the prefix makes leaked tokens
/// easy to find with secret scanners.
pub const TOKEN_PREFIX: &str = "mlops_";

pub fn mint_token() -> NewToken {
    let mut rng = rand::rng();
    let secret_bytes: [u8; 32] = rng.random();
    let id_bytes: [u8; 8] = rng.random();
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(secret_bytes));
    NewToken {
        token_id: hex::encode(id_bytes),
        secret_sha256: hash_secret(&secret),
        secret: SecretString::from(secret),
    }
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Extracts the bearer secret from gRPC metadata.
pub fn bearer(metadata: &tonic::metadata::MetadataMap) -> Result<SecretString> {
    let Some(value) = metadata.get("authorization") else {
        return Err(Error::Unauthenticated(
            "missing `authorization: Bearer <token>` metadata".into(),
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| Error::Unauthenticated("authorization metadata is not ASCII".into()))?;
    let Some(secret) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    else {
        return Err(Error::Unauthenticated(
            "authorization metadata must be `Bearer <token>`".into(),
        ));
    };
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(Error::Unauthenticated("the bearer token is empty".into()));
    }
    Ok(SecretString::from(secret.to_string()))
}

/// The bootstrap admin token from configuration, kept as a hash.
#[derive(Clone)]
pub struct BootstrapToken {
    secret_sha256: String,
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BootstrapToken(<redacted>)")
    }
}

/// The principal name the bootstrap token acts as.
pub const BOOTSTRAP_PRINCIPAL: &str = "bootstrap-admin";

impl BootstrapToken {
    pub fn new(secret: &SecretString) -> Self {
        Self {
            secret_sha256: hash_secret(secret.expose_secret()),
        }
    }

    pub fn matches(&self, secret_sha256: &str) -> bool {
        constant_time_eq(self.secret_sha256.as_bytes(), secret_sha256.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_denials_name_the_needed_role() {
        let writer = Principal {
            name: "ci".into(),
            role: Role::Writer,
        };
        assert!(writer.require(Role::Reader, "reading").is_ok());
        assert!(writer.require(Role::Writer, "writing").is_ok());
        let err = writer
            .require(Role::Approver, "moving alias champion")
            .expect_err("denied");
        assert!(matches!(err, Error::PermissionDenied(_)));
        assert_eq!(
            err.to_string(),
            "moving alias champion needs the approver role; token \"ci\" has the writer role"
        );
    }

    #[test]
    fn minted_tokens_are_unique_and_only_their_hash_matches() {
        let a = mint_token();
        let b = mint_token();
        assert_ne!(a.secret.expose_secret(), b.secret.expose_secret());
        assert!(a.secret.expose_secret().starts_with(TOKEN_PREFIX));
        assert_eq!(a.secret_sha256, hash_secret(a.secret.expose_secret()));
        let bootstrap = BootstrapToken::new(&a.secret);
        assert!(bootstrap.matches(&a.secret_sha256));
        assert!(!bootstrap.matches(&b.secret_sha256));
        assert_eq!(format!("{bootstrap:?}"), "BootstrapToken(<redacted>)");
    }

    #[test]
    fn bearer_metadata_is_required_and_well_formed() {
        let mut md = tonic::metadata::MetadataMap::new();
        let err = bearer(&md).expect_err("missing").to_string();
        assert!(err.contains("missing"), "{err}");
        md.insert("authorization", "Basic abc".parse().expect("ascii"));
        let err = bearer(&md).expect_err("basic").to_string();
        assert!(err.contains("Bearer"), "{err}");
        md.insert("authorization", "Bearer mlops_x".parse().expect("ascii"));
        assert_eq!(bearer(&md).expect("ok").expose_secret(), "mlops_x");
    }
}
