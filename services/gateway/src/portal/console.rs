//! The SQL console at `/sql` (analyst and above): read-only queries over
//! gold, and silver for data scientists, with results as a table or as CSV
//! and each user's history. `POST /sql/api` is the same for scripts and the
//! page's JavaScript: the session cookie plus the `X-CSRF-Token` header.

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::PortalState;
use super::accounts::Role;
use super::history::HistoryEntry;
use super::pages;
use super::session::{CurrentUser, Denied};
use super::sql::{QueryResult, Scope, SqlError, tables};

/// History entries the page lists.
const HISTORY_ROWS: i64 = 20;

const EXAMPLE: &str = "SELECT region, sum(calls) AS calls, avg(dropped_call_rate) AS dropped_call_rate\nFROM gold.kpi_daily\nGROUP BY region\nORDER BY region";

fn scope(role: Role) -> Scope {
    if role >= Role::DataScientist {
        Scope::GoldAndSilver
    } else {
        Scope::Gold
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    /// A history entry of the user's to load into the editor.
    history: Option<i64>,
}

#[derive(Deserialize)]
pub struct RunForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sql: String,
    /// `csv` downloads the result; anything else shows it.
    #[serde(default)]
    format: String,
}

#[derive(Deserialize)]
pub struct ApiRequest {
    sql: String,
}

/// `GET /sql`: the editor, the tables and the user's history.
pub async fn page(
    user: CurrentUser,
    State(state): State<PortalState>,
    Query(query): Query<PageQuery>,
) -> Response {
    if let Err(denied) = user.require(Role::Analyst) {
        return user.refuse(denied);
    }
    let sql = match query.history {
        Some(id) => match state.accounts.history_entry(&user.user.username, id).await {
            Ok(Some(entry)) => entry.sql,
            Ok(None) => EXAMPLE.to_owned(),
            Err(error) => {
                tracing::error!(%error, "reading the SQL history failed");
                return pages::unavailable();
            }
        },
        None => EXAMPLE.to_owned(),
    };
    render(&state, &user, StatusCode::OK, &sql, None).await
}

/// `POST /sql`: runs the query; shows it, or downloads it as CSV.
pub async fn run(
    user: CurrentUser,
    State(state): State<PortalState>,
    Form(form): Form<RunForm>,
) -> Response {
    if let Err(denied) = user.may_submit(Role::Analyst, &form.csrf) {
        return user.refuse(denied);
    }
    let outcome = execute(&state, &user, &form.sql).await;
    match outcome {
        Ok(result) if form.format == "csv" => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"query.csv\"",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            result.to_csv(),
        )
            .into_response(),
        Ok(result) => render(&state, &user, StatusCode::OK, &form.sql, Some(Ok(&result))).await,
        Err(error) => {
            let status = status_of(&error);
            render(&state, &user, status, &form.sql, Some(Err(&error))).await
        }
    }
}

/// A logged-in user for the JSON API: no session is a 401, not a redirect.
pub struct ApiUser(CurrentUser);

impl FromRequestParts<PortalState> for ApiUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, Response> {
        match CurrentUser::from_request_parts(parts, state).await {
            Ok(user) => Ok(ApiUser(user)),
            Err(rejection) if rejection.status().is_redirection() => Err(api_error(
                StatusCode::UNAUTHORIZED,
                "log in to the portal first: this API uses the portal's session cookie",
            )),
            Err(rejection) => Err(rejection),
        }
    }
}

/// `POST /sql/api` with `{"sql": "..."}`: `{"columns", "rows", "truncated",
/// "elapsed_ms", "versions"}` or `{"error"}`.
pub async fn api(
    ApiUser(user): ApiUser,
    State(state): State<PortalState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let csrf = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match user.may_submit(Role::Analyst, csrf) {
        Ok(()) => {}
        Err(Denied::Role(needs)) => {
            return api_error(
                StatusCode::FORBIDDEN,
                &format!(
                    "the SQL console needs the {needs} role; {} has the {} role",
                    user.user.username, user.user.role
                ),
            );
        }
        Err(Denied::Csrf) => {
            return api_error(
                StatusCode::FORBIDDEN,
                "the X-CSRF-Token header must carry the session's CSRF token",
            );
        }
    }
    let request: ApiRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                &format!("the body must be {{\"sql\": \"...\"}}: {error}"),
            );
        }
    };
    match execute(&state, &user, &request.sql).await {
        Ok(result) => {
            let versions: serde_json::Map<_, _> = result
                .versions
                .iter()
                .map(|(t, v)| (t.clone(), json!(v)))
                .collect();
            axum::Json(json!({
                "columns": result.columns,
                "rows": result.rows,
                "truncated": result.truncated,
                "elapsed_ms": result.elapsed.as_millis() as u64,
                "versions": versions,
            }))
            .into_response()
        }
        Err(error) => api_error(status_of(&error), &error.to_string()),
    }
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn status_of(error: &SqlError) -> StatusCode {
    if error.is_client_error() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Runs `sql` as `user` and records it in their history.
async fn execute(
    state: &PortalState,
    user: &CurrentUser,
    sql: &str,
) -> Result<QueryResult, SqlError> {
    let started = std::time::Instant::now();
    let outcome = state.sql.run(sql, scope(user.user.role)).await;
    let elapsed_ms = started.elapsed().as_millis() as i64;
    let message = outcome.as_ref().err().map(ToString::to_string);
    let recorded = match &outcome {
        Ok(result) => Ok(result.rows.len()),
        Err(_) => Err(message.as_deref().unwrap_or_default()),
    };
    let text: String = sql.trim().chars().take(super::sql::MAX_SQL_BYTES).collect();
    if let Err(error) = state
        .accounts
        .record_query(&user.user.username, &text, recorded, elapsed_ms)
        .await
    {
        tracing::warn!(%error, "recording a query in the SQL history failed");
    }
    match &outcome {
        Ok(result) => tracing::info!(
            user = %user.user.username,
            rows = result.rows.len(),
            elapsed_ms,
            "SQL console query"
        ),
        Err(error) => {
            tracing::info!(user = %user.user.username, %error, "SQL console query refused or failed")
        }
    }
    outcome
}

async fn render(
    state: &PortalState,
    user: &CurrentUser,
    status: StatusCode,
    sql: &str,
    outcome: Option<Result<&QueryResult, &SqlError>>,
) -> Response {
    let history = match state
        .accounts
        .query_history(&user.user.username, HISTORY_ROWS)
        .await
    {
        Ok(history) => history,
        Err(error) => {
            tracing::error!(%error, "reading the SQL history failed");
            return pages::unavailable();
        }
    };
    let limits = state.sql.limits;
    let main = html! {
        form.card.wide #sql-form method="post" action="/sql" {
            input type="hidden" name="csrf" value=(user.user.csrf_token);
            label for="sql" { "Query (read-only; Ctrl+Enter runs it)" }
            textarea #sql name="sql" rows="8" spellcheck="false" autocapitalize="off" required { (sql) }
            p.hint {
                "At most " (limits.max_rows) " rows, " (limits.timeout.as_secs()) " s and "
                (limits.memory_bytes >> 20) " MiB per query."
            }
            div.buttons {
                button type="submit" name="format" value="table" { "Run" }
                button type="submit" name="format" value="csv" { "Download CSV" }
            }
        }
        @match outcome {
            Some(Ok(result)) => { (result_table(result)) }
            Some(Err(error)) => { p.error role="alert" { (error) } }
            None => {}
        }
        (table_list(user.user.role))
        (history_list(&history))
    };
    let mut response = pages::page_with_scripts(user, "SQL console", main, &["/static/portal.js"]);
    *response.status_mut() = status;
    response
}

fn result_table(result: &QueryResult) -> Markup {
    let versions: Vec<String> = result
        .versions
        .iter()
        .map(|(t, v)| format!("{t} version {v}"))
        .collect();
    html! {
        section aria-labelledby="result" {
            h2 #result { "Result" }
            p #result-summary {
                (result.rows.len()) " rows in " (result.elapsed.as_millis()) " ms"
                @if !versions.is_empty() { " · " (versions.join(", ")) }
            }
            @if result.truncated {
                p.status.amber role="status" {
                    "Only the first " (result.rows.len()) " rows are shown: the result has more. "
                    "Narrow the query or add a LIMIT."
                }
            }
            div.scroll { table #result-table {
                thead { tr { @for c in &result.columns { th scope="col" { (c) } } } }
                tbody {
                    @for row in &result.rows {
                        tr { @for v in row {
                            @match v {
                                Some(v) => { td { (v) } }
                                None => { td.null { "NULL" } }
                            }
                        } }
                    }
                }
            } }
        }
    }
}

fn table_list(role: Role) -> Markup {
    html! {
        section aria-labelledby="tables" {
            h2 #tables { "Tables" }
            @for table in tables(scope(role)) {
                details {
                    summary { code { (table.qualified()) } }
                    p.hint { (table.spec.columns.iter().map(|c| c.name().to_owned()).collect::<Vec<_>>().join(", ")) }
                }
            }
            @if scope(role) == Scope::Gold {
                p.hint { "Silver tables need the data-scientist role." }
            }
        }
    }
}

fn history_list(history: &[HistoryEntry]) -> Markup {
    html! {
        section aria-labelledby="history" {
            h2 #history { "Your recent queries" }
            @if history.is_empty() {
                p { "None yet." }
            } @else {
                div.scroll { table #history-table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Query" } th scope="col" { "Outcome" } th scope="col" { "" } } }
                    tbody {
                        @for h in history {
                            tr {
                                td { (pages::timestamp(h.at)) }
                                td { code { (h.sql.chars().take(160).collect::<String>()) } }
                                td {
                                    @match h.row_count {
                                        Some(rows) => { (rows) " rows, " (h.elapsed_ms) " ms" }
                                        None => { span.status.red { (h.error) } }
                                    }
                                }
                                td { a href={ "/sql?history=" (h.id) } { "Edit" } }
                            }
                        }
                    }
                } }
            }
        }
    }
}
