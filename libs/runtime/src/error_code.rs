//! The platform's closed set of error codes, mapped once to gRPC and HTTP.
//!
//! Service errors name a code; transports translate it here, so a
//! `NotFound` is `NOT_FOUND` over gRPC and 404 over HTTP everywhere.

use axum::http::StatusCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or a value is out of range.
    InvalidArgument,
    NotFound,
    AlreadyExists,
    /// The target is in a state that forbids the operation.
    FailedPrecondition,
    /// No credentials, or credentials that are not valid.
    Unauthenticated,
    /// Valid credentials without the needed role.
    PermissionDenied,
    /// A dependency (database, store, broker) cannot be reached.
    Unavailable,
    /// A bug or an unexpected failure; details are logged, not returned.
    Internal,
}

impl ErrorCode {
    pub fn grpc(self) -> tonic::Code {
        match self {
            Self::InvalidArgument => tonic::Code::InvalidArgument,
            Self::NotFound => tonic::Code::NotFound,
            Self::AlreadyExists => tonic::Code::AlreadyExists,
            Self::FailedPrecondition => tonic::Code::FailedPrecondition,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::PermissionDenied => tonic::Code::PermissionDenied,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::Internal => tonic::Code::Internal,
        }
    }

    pub fn http(self) -> StatusCode {
        match self {
            Self::InvalidArgument => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::AlreadyExists => StatusCode::CONFLICT,
            Self::FailedPrecondition => StatusCode::CONFLICT,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable lowercase name, used as a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::FailedPrecondition => "failed_precondition",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_a_matching_grpc_and_http_status() {
        let cases = [
            (
                ErrorCode::InvalidArgument,
                tonic::Code::InvalidArgument,
                400,
            ),
            (ErrorCode::NotFound, tonic::Code::NotFound, 404),
            (ErrorCode::AlreadyExists, tonic::Code::AlreadyExists, 409),
            (
                ErrorCode::FailedPrecondition,
                tonic::Code::FailedPrecondition,
                409,
            ),
            (
                ErrorCode::Unauthenticated,
                tonic::Code::Unauthenticated,
                401,
            ),
            (
                ErrorCode::PermissionDenied,
                tonic::Code::PermissionDenied,
                403,
            ),
            (ErrorCode::Unavailable, tonic::Code::Unavailable, 503),
            (ErrorCode::Internal, tonic::Code::Internal, 500),
        ];
        for (code, grpc, http) in cases {
            assert_eq!(code.grpc(), grpc, "{code:?}");
            assert_eq!(code.http().as_u16(), http, "{code:?}");
        }
    }
}
