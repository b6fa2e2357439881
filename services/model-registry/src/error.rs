//! The registry's error type and its one mapping to gRPC status.

use mlops_runtime::ErrorCode;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is invalid; the message names the field and the rule.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("artifact store: {0}")]
    Store(#[from] object_store::Error),
    #[error("{context}: {source}")]
    Json {
        context: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        Self::FailedPrecondition(message.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::AlreadyExists(_) => ErrorCode::AlreadyExists,
            Self::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::PermissionDenied(_) => ErrorCode::PermissionDenied,
            Self::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) | Self::Store(_) => {
                ErrorCode::Unavailable
            }
            Self::Database(_) | Self::Migration(_) | Self::Json { .. } | Self::Internal(_) => {
                ErrorCode::Internal
            }
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        let code = error.code();
        // Internals are logged with their cause and never returned to clients.
        let message = match code {
            ErrorCode::Internal => {
                tracing::error!(error = %error, "internal error");
                "internal error; see the registry's log".to_string()
            }
            ErrorCode::Unavailable => {
                tracing::warn!(error = %error, "dependency unavailable");
                "a dependency of the registry is unavailable; retry later".to_string()
            }
            _ => error.to_string(),
        };
        tonic::Status::new(code.grpc(), message)
    }
}

/// Whether a database error is a unique-constraint violation.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether a database error is a foreign-key violation.
pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}
