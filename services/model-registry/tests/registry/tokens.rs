//! API tokens and roles: authentication, role checks, hashing, revocation.

use mlops_registry_client::proto as pb;
use tonic::Code;

use crate::support::{Db, Options, TestRegistry};

pub(crate) async fn tokens_and_roles_are_enforced(db: Db) {
    let registry = TestRegistry::start(Options::new(db)).await;
    let reader = registry.token("viewer", pb::Role::Reader).await;

    let mut anonymous = registry.client("mlops_not_a_real_token").await;
    let err = anonymous
        .raw()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("unknown token");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.message(), "unknown or revoked token");

    let mut reader_client = registry.client(&reader).await;
    let me = reader_client
        .raw()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("whoami")
        .into_inner();
    assert_eq!(
        (me.principal.as_str(), me.role),
        ("viewer", pb::Role::Reader as i32)
    );
    let err = reader_client
        .raw()
        .create_registered_model(pb::CreateRegisteredModelRequest {
            name: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("reader cannot write");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "CreateRegisteredModel needs the writer role; token \"viewer\" has the reader role"
    );
    let err = reader_client
        .raw()
        .list_api_tokens(pb::ListApiTokensRequest {})
        .await
        .expect_err("reader is not admin");
    assert!(
        err.message().contains("needs the admin role"),
        "{}",
        err.message()
    );

    // Without metadata at all.
    let channel = tonic::transport::Endpoint::from_shared(registry.url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut bare = pb::model_registry_client::ModelRegistryClient::new(channel);
    let err = bare
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message()
            .contains("missing `authorization: Bearer <token>`"),
        "{}",
        err.message()
    );

    // Tokens are stored hashed and can be revoked.
    let mut admin = registry.admin_client().await;
    let tokens = admin
        .raw()
        .list_api_tokens(pb::ListApiTokensRequest {})
        .await
        .expect("list")
        .into_inner()
        .tokens;
    assert_eq!(tokens.len(), 1);
    let stored: String = sqlx::query_scalar("SELECT secret_sha256 FROM api_tokens")
        .fetch_one(&registry_pool(&registry).await)
        .await
        .expect("stored hash");
    assert_ne!(stored, reader);
    assert_eq!(stored.len(), 64);
    admin
        .raw()
        .revoke_api_token(pb::RevokeApiTokenRequest {
            token_id: tokens[0].token_id.clone(),
        })
        .await
        .expect("revoke");
    let err = reader_client
        .raw()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("revoked");
    assert_eq!(err.code(), Code::Unauthenticated);
    registry.stop().await;
}

async fn registry_pool(registry: &TestRegistry) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&registry.db.url)
        .await
        .expect("pool")
}
