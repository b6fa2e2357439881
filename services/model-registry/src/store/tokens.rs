//! API tokens, stored as sha256 of their secret.

use mlops_proto::registry::v1 as pb;
use secrecy::SecretString;
use serde_json::json;
use sqlx::Row;

use super::{Store, now_micros, timestamp};
use crate::auth::{self, Principal, Role};
use crate::error::{Error, Result, is_unique_violation};
use crate::validate;

impl Store {
    /// Mints a token; the secret is returned once and never stored.
    pub async fn create_token(
        &self,
        principal: &Principal,
        name: &str,
        role: Role,
    ) -> Result<(pb::ApiToken, SecretString)> {
        validate::name("name", name)?;
        let token = auth::mint_token();
        let now = now_micros();
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO api_tokens (token_id, name, role, secret_sha256, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.token_id)
        .bind(name)
        .bind(role.as_str())
        .bind(&token.secret_sha256)
        .bind(&principal.name)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::Internal("token collision; retry".into()));
            }
            Err(e) => return Err(e.into()),
        }
        let after = json!({"token_id": token.token_id, "name": name, "role": role.as_str()});
        self.audit(
            &mut tx,
            principal,
            "token.create",
            "",
            &format!("token/{}", token.token_id),
            None,
            Some(after),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok((self.get_token(&token.token_id).await?, token.secret))
    }

    pub async fn list_tokens(&self) -> Result<Vec<pb::ApiToken>> {
        let rows = sqlx::query(
            "SELECT token_id, name, role, created_by, created_at, revoked_at FROM api_tokens ORDER BY created_at, token_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn get_token(&self, token_id: &str) -> Result<pb::ApiToken> {
        let row = sqlx::query(
            "SELECT token_id, name, role, created_by, created_at, revoked_at FROM api_tokens WHERE token_id = $1",
        )
        .bind(token_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found(format!("token {token_id:?} not found")))?;
        token_from_row(&row)
    }

    pub async fn revoke_token(
        &self,
        principal: &Principal,
        token_id: &str,
    ) -> Result<pb::ApiToken> {
        let before = self.get_token(token_id).await?;
        if before.revoked_at.is_none() {
            let now = now_micros();
            let mut tx = self.begin().await?;
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE token_id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(token_id)
            .execute(&mut *tx)
            .await?;
            self.audit(
                &mut tx,
                principal,
                "token.revoke",
                "",
                &format!("token/{token_id}"),
                None,
                None,
                now,
            )
            .await?;
            tx.commit().await?;
        }
        self.get_token(token_id).await
    }

    /// The principal of a live token, by the sha256 of its secret.
    pub async fn principal_for(&self, secret_sha256: &str) -> Result<Option<Principal>> {
        let row = sqlx::query(
            "SELECT name, role FROM api_tokens WHERE secret_sha256 = $1 AND revoked_at IS NULL",
        )
        .bind(secret_sha256)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("role")?;
        Ok(Some(Principal {
            name: row.try_get("name")?,
            role: Role::parse(&role)
                .ok_or_else(|| Error::Internal(format!("stored role {role:?} is unknown")))?,
        }))
    }
}

fn token_from_row(row: &sqlx::any::AnyRow) -> Result<pb::ApiToken> {
    let role: String = row.try_get("role")?;
    Ok(pb::ApiToken {
        token_id: row.try_get("token_id")?,
        name: row.try_get("name")?,
        role: Role::parse(&role)
            .map(Role::to_proto)
            .unwrap_or(pb::Role::Unspecified) as i32,
        created_by: row.try_get("created_by")?,
        created_at: Some(timestamp(row.try_get("created_at")?)),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(timestamp),
    })
}
