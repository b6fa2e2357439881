//! Portal accounts, server-side sessions and the audit trail, in Postgres
//! or SQLite through sqlx's Any driver (one set of portable queries, as in
//! the registry). Passwords are Argon2id hashes; a session is known by the
//! sha256 of its cookie value only.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

/// Shortest password an account may have.
pub const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the portal database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the portal database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Invalid(String),
    #[error("hashing a password: {0}")]
    Hash(String),
}

pub type Result<T, E = AccountError> = std::result::Result<T, E>;

/// What a portal user may do; each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Analyst,
    DataScientist,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Viewer,
        Role::Analyst,
        Role::DataScientist,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::DataScientist => "data-scientist",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AccountError;

    fn from_str(s: &str) -> Result<Self> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                AccountError::Invalid(format!(
                    "unknown role {s:?}: expected viewer, analyst, data-scientist or admin"
                ))
            })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub role: Role,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

/// The user a live session belongs to, with the session's CSRF token.
#[derive(Clone, Debug)]
pub struct SessionUser {
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub address: String,
    pub detail: String,
}

/// Who did something, from where, for the audit trail.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    pub username: &'a str,
    pub address: &'a str,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// 32 random bytes, hex: session ids and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn session_hash(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

/// Usernames: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn check_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!(
            "username {name:?} is not valid: use 1 to 64 lowercase letters, digits, '.', '_' \
             or '-', starting with a letter or digit"
        )))
    }
}

pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes): CPU-heavy, so
/// callers run it on a blocking thread.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash no password matches, verified against for unknown usernames so
/// a login takes as long whether or not the account exists.
static DECOY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_token()).unwrap_or_default());

pub fn decoy_verify(password: &str) {
    let _ = verify_password(password, &DECOY_HASH);
}

#[derive(Clone, Debug)]
pub struct AccountStore {
    pub(super) pool: AnyPool,
}

impl AccountStore {
    /// Connects to `postgres://…` or `sqlite://…` (the file and its
    /// directory are created when missing) and applies the migrations.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        if !sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(AccountError::Invalid(
                "DATABASE_URL must start with postgres:// or sqlite:".into(),
            ));
        }
        if sqlite {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or_default();
            if let Some(dir) = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty() && path != ":memory:")
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    AccountError::Invalid(format!("creating {}: {e}", dir.display()))
                })?;
            }
        }
        let options = AnyConnectOptions::from_str(url)?;
        // SQLite has one writer: one connection serialises writes instead of
        // failing them with SQLITE_BUSY.
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 1 } else { 5 })
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        let migrator = if sqlite {
            &SQLITE_MIGRATIONS
        } else {
            &POSTGRES_MIGRATIONS
        };
        migrator.run(&pool).await?;
        Ok(Self { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn user(&self, username: &str) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT username, role, created_at, disabled_at FROM portal_users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| user_of(&r)).transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(
            "SELECT username, role, created_at, disabled_at FROM portal_users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_of).collect()
    }

    /// Creates an account; `Invalid` when the name is taken.
    pub async fn create_user(
        &self,
        actor: Actor<'_>,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<()> {
        check_username(username)?;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO portal_users (username, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(AccountError::Invalid(format!(
                "the username {username:?} is taken"
            )));
        }
        audit_on(
            &mut tx,
            actor,
            "user_created",
            username,
            &format!("role {role}"),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes a role; returns the previous one, `None` for no such user.
    pub async fn set_role(
        &self,
        actor: Actor<'_>,
        username: &str,
        role: Role,
    ) -> Result<Option<Role>> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query("SELECT role FROM portal_users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let before: Role = row.try_get::<String, _>(0)?.parse()?;
        sqlx::query("UPDATE portal_users SET role = $1 WHERE username = $2")
            .bind(role.as_str())
            .bind(username)
            .execute(&mut *tx)
            .await?;
        audit_on(
            &mut tx,
            actor,
            "role_changed",
            username,
            &format!("{before} -> {role}"),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(before))
    }

    /// Disables (ending its sessions) or re-enables an account; false for
    /// no such user.
    pub async fn set_disabled(
        &self,
        actor: Actor<'_>,
        username: &str,
        disabled: bool,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query("UPDATE portal_users SET disabled_at = $1 WHERE username = $2")
            .bind(disabled.then(now_ms))
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        if disabled {
            sqlx::query("DELETE FROM portal_sessions WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?;
        }
        let action = if disabled {
            "user_disabled"
        } else {
            "user_enabled"
        };
        audit_on(&mut tx, actor, action, username, "").await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces a password and ends the account's other sessions.
    pub async fn set_password(
        &self,
        actor: Actor<'_>,
        username: &str,
        password_hash: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query("UPDATE portal_users SET password_hash = $1 WHERE username = $2")
            .bind(password_hash)
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM portal_sessions WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        audit_on(&mut tx, actor, "password_changed", username, "").await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The stored hash of an account that may log in.
    pub async fn login_hash(&self, username: &str) -> Result<Option<(String, Role)>> {
        let row = sqlx::query(
            "SELECT password_hash, role FROM portal_users \
             WHERE username = $1 AND disabled_at IS NULL",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get::<String, _>(1)?.parse()?)))
            .transpose()
    }

    /// Opens a session for `username` and audits the login; returns the
    /// cookie value.
    pub async fn open_session(&self, actor: Actor<'_>, ttl: Duration) -> Result<String> {
        let id = random_token();
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO portal_sessions (id_hash, username, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session_hash(&id))
        .bind(actor.username)
        .bind(random_token())
        .bind(now)
        .bind(now + ttl.as_millis() as i64)
        .execute(&mut *tx)
        .await?;
        // Expired sessions are swept as new ones open.
        sqlx::query("DELETE FROM portal_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        audit_on(&mut tx, actor, "login", actor.username, "").await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The enabled user behind a live session.
    pub async fn session(&self, id: &str) -> Result<Option<SessionUser>> {
        let row = sqlx::query(
            "SELECT u.username, u.role, s.csrf_token FROM portal_sessions s \
             JOIN portal_users u ON u.username = s.username \
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
        )
        .bind(session_hash(id))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionUser {
                username: r.try_get(0)?,
                role: r.try_get::<String, _>(1)?.parse()?,
                csrf_token: r.try_get(2)?,
            })
        })
        .transpose()
    }

    pub async fn close_session(&self, actor: Actor<'_>, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1")
            .bind(session_hash(id))
            .execute(&mut *tx)
            .await?;
        audit_on(&mut tx, actor, "logout", actor.username, "").await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn audit(
        &self,
        actor: Actor<'_>,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        audit_on(&mut conn, actor, action, target, detail).await
    }

    /// Failed logins since `since` (ms) for the account and from the address.
    pub async fn recent_failures(
        &self,
        username: &str,
        address: &str,
        since: i64,
    ) -> Result<(i64, i64)> {
        let count = |column: &'static str, value: String| {
            let pool = self.pool.clone();
            async move {
                let sql = format!(
                    "SELECT COUNT(*) FROM portal_audit \
                     WHERE action = 'login_failed' AND {column} = $1 AND at > $2"
                );
                let row = sqlx::query(&sql)
                    .bind(value)
                    .bind(since)
                    .fetch_one(&pool)
                    .await?;
                Ok::<i64, AccountError>(row.try_get(0)?)
            }
        };
        Ok((
            count("target", username.to_owned()).await?,
            count("address", address.to_owned()).await?,
        ))
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_trail(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, actor, action, target, address, detail FROM portal_audit \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: r.try_get(0)?,
                    actor: r.try_get(1)?,
                    action: r.try_get(2)?,
                    target: r.try_get(3)?,
                    address: r.try_get(4)?,
                    detail: r.try_get(5)?,
                })
            })
            .collect()
    }
}

fn user_of(row: &sqlx::any::AnyRow) -> Result<User> {
    Ok(User {
        username: row.try_get(0)?,
        role: row.try_get::<String, _>(1)?.parse()?,
        created_at: row.try_get(2)?,
        disabled_at: row.try_get(3)?,
    })
}

/// Appends an audit entry on `conn`, inside the caller's transaction when
/// it is one.
async fn audit_on(
    conn: &mut sqlx::AnyConnection,
    actor: Actor<'_>,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO portal_audit (at, actor, action, target, address, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now_ms())
    .bind(actor.username)
    .bind(action)
    .bind(target)
    .bind(actor.address)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse_back() {
        assert!(Role::Viewer < Role::Analyst && Role::Analyst < Role::DataScientist);
        assert!(Role::DataScientist < Role::Admin);
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().expect("parses"), role);
        }
        let error = "root".parse::<Role>().expect_err("unknown").to_string();
        assert!(error.contains("unknown role \"root\""), "{error}");
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterz", &hash));
        assert!(!verify_password("anything", "not a hash"));
        assert!(check_password("short").is_err());
    }

    #[test]
    fn usernames_are_checked() {
        for good in ["admin", "ana.lyst", "ds_1", "7eleven"] {
            check_username(good).expect(good);
        }
        for bad in ["", "Admin", "-x", "a b", &"x".repeat(65)] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
    }
}
