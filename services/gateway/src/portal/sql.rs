//! The SQL console's engine: one read-only DataFusion query over the lake's
//! tables, each opened at the version current when the query starts.
//!
//! Only a single query statement (`SELECT`, `WITH`, `VALUES`, set
//! operations) is accepted; anything else is refused before planning, and
//! the plan is checked again with DDL, DML and statements disallowed. Every
//! query runs in a fresh session with its own memory pool (no spilling to
//! disk), under a time limit, and stops reading once it has one row more
//! than the row limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::StreamExt;
use mlops_lake::deltalake::datafusion::catalog::MemorySchemaProvider;
use mlops_lake::deltalake::datafusion::common::TableReference;
use mlops_lake::deltalake::datafusion::error::DataFusionError;
use mlops_lake::deltalake::datafusion::execution::context::{
    SQLOptions, SessionConfig, SessionContext,
};
use mlops_lake::deltalake::datafusion::execution::disk_manager::{
    DiskManagerBuilder, DiskManagerMode,
};
use mlops_lake::deltalake::datafusion::execution::runtime_env::RuntimeEnvBuilder;
use mlops_lake::deltalake::datafusion::sql::parser::Statement;
use mlops_lake::deltalake::datafusion::sql::sqlparser::ast;
use mlops_lake::{
    LakeLocation, OpenTables, TableSpec, kpi_daily, quarantine, silver, subscriber_features,
};

/// What a query may read: the gold tables, or gold and silver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Gold,
    GoldAndSilver,
}

/// A table the console offers, under its lake name (`gold.kpi_daily`).
#[derive(Clone, Debug)]
pub struct ConsoleTable {
    pub schema: &'static str,
    pub name: &'static str,
    pub spec: TableSpec,
}

impl ConsoleTable {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// The tables `scope` may read, gold first.
pub fn tables(scope: Scope) -> Vec<ConsoleTable> {
    let table = |spec: TableSpec| {
        let (schema, name) = spec.name.split_once('/').unwrap_or(("gold", spec.name));
        ConsoleTable { schema, name, spec }
    };
    let mut tables = vec![
        table(kpi_daily::spec()),
        table(subscriber_features::daily_spec()),
        table(subscriber_features::latest_spec()),
    ];
    if scope == Scope::GoldAndSilver {
        tables.push(table(silver::spec()));
        tables.push(table(quarantine::spec()));
    }
    tables
}

/// Per-query limits (`GATEWAY_SQL_*`).
#[derive(Clone, Copy, Debug)]
pub struct SqlLimits {
    /// Rows returned; a longer result is cut and says so.
    pub max_rows: usize,
    pub timeout: Duration,
    pub memory_bytes: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        Self {
            max_rows: 1_000,
            timeout: Duration::from_secs(10),
            memory_bytes: 256 << 20,
        }
    }
}

/// The longest SQL text accepted.
pub const MAX_SQL_BYTES: usize = 16 << 10;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("the query is empty")]
    Empty,
    #[error("the query is {0} bytes long; at most {MAX_SQL_BYTES} are accepted")]
    TooLong(usize),
    #[error(
        "only queries are accepted (SELECT, WITH, VALUES): {0} is refused; the console cannot change the lake"
    )]
    NotAQuery(String),
    #[error("{0} is not available to your role: it reads {1}")]
    OutOfScope(String, &'static str),
    #[error("the query did not finish within {0:?} and was stopped")]
    Timeout(Duration),
    #[error("the query needed more than its {} MiB memory limit and was stopped", .0 >> 20)]
    Memory(usize),
    #[error("{0}")]
    Invalid(String),
    #[error("reading the lake failed: {0}")]
    Lake(String),
}

impl SqlError {
    /// Whether the query itself is at fault (400) rather than the lake (503).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, SqlError::Lake(_))
    }
}

/// A query's result, formatted for display.
#[derive(Clone, Debug, Default)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// More rows existed than the limit.
    pub truncated: bool,
    pub elapsed: Duration,
    /// The tables read and the version of each.
    pub versions: Vec<(String, u64)>,
}

impl QueryResult {
    /// RFC 4180 CSV with a header row; NULL is an empty field.
    pub fn to_csv(&self) -> String {
        fn field(out: &mut String, value: &str) {
            if value.contains([',', '"', '\n', '\r']) {
                out.push('"');
                out.push_str(&value.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(value);
            }
        }
        let mut out = String::new();
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(&mut out, c);
        }
        out.push_str("\r\n");
        for row in &self.rows {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                field(&mut out, v.as_deref().unwrap_or(""));
            }
            out.push_str("\r\n");
        }
        out
    }
}

#[derive(Clone, Debug)]
pub struct SqlEngine {
    tables: OpenTables,
    pub limits: SqlLimits,
}

impl SqlEngine {
    pub fn new(lake: LakeLocation, limits: SqlLimits) -> Self {
        Self {
            tables: OpenTables::new(lake),
            limits,
        }
    }

    fn session(&self) -> Result<SessionContext, SqlError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.limits.memory_bytes, 1.0)
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()
            .map_err(|e| SqlError::Lake(e.to_string()))?;
        let config = SessionConfig::new()
            .set_str("datafusion.execution.time_zone", "UTC")
            .with_information_schema(false);
        Ok(SessionContext::new_with_config_rt(config, runtime))
    }

    /// Runs `sql` over the tables `scope` allows.
    pub async fn run(&self, sql: &str, scope: Scope) -> Result<QueryResult, SqlError> {
        let started = Instant::now();
        let sql = sql.trim();
        if sql.is_empty() {
            return Err(SqlError::Empty);
        }
        if sql.len() > MAX_SQL_BYTES {
            return Err(SqlError::TooLong(sql.len()));
        }
        let ctx = self.session()?;
        let dialect = ctx.state().config().options().sql_parser.dialect;
        let statement = ctx
            .state()
            .sql_to_statement(sql, &dialect)
            .map_err(|e| SqlError::Invalid(friendly(&e)))?;
        if !is_query(&statement) {
            return Err(SqlError::NotAQuery(statement_kind(sql)));
        }
        let references = ctx
            .state()
            .resolve_table_references(&statement)
            .map_err(|e| SqlError::Invalid(friendly(&e)))?;
        let limits = self.limits;
        let work = async {
            let versions = self.register(&ctx, &references, scope).await?;
            let options = SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false);
            let frame = ctx
                .sql_with_options(sql, options)
                .await
                .map_err(|e| classify(e, limits))?;
            let columns = frame
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let mut stream = frame
                .execute_stream()
                .await
                .map_err(|e| classify(e, limits))?;
            let mut rows = Vec::new();
            let mut truncated = false;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| classify(e, limits))?;
                if append_rows(&mut rows, &batch, limits.max_rows)? {
                    truncated = true;
                    break;
                }
            }
            Ok(QueryResult {
                columns,
                rows,
                truncated,
                elapsed: Duration::ZERO,
                versions,
            })
        };
        let mut result = tokio::time::timeout(limits.timeout, work)
            .await
            .map_err(|_| SqlError::Timeout(limits.timeout))??;
        result.elapsed = started.elapsed();
        Ok(result)
    }

    /// Opens and registers the console tables the query names; a name
    /// outside `scope` is refused, an unknown one left to the planner.
    async fn register(
        &self,
        ctx: &SessionContext,
        references: &[TableReference],
        scope: Scope,
    ) -> Result<Vec<(String, u64)>, SqlError> {
        let catalog = ctx
            .catalog("datafusion")
            .ok_or_else(|| SqlError::Lake("the session has no default catalog".into()))?;
        let allowed = tables(scope);
        let all = tables(Scope::GoldAndSilver);
        for schema in ["gold", "silver"] {
            if allowed.iter().any(|t| t.schema == schema) {
                catalog
                    .register_schema(schema, Arc::new(MemorySchemaProvider::new()))
                    .map_err(|e| SqlError::Lake(e.to_string()))?;
            }
        }
        let mut versions = Vec::new();
        for reference in references {
            let (Some(schema), name) = (reference.schema(), reference.table()) else {
                continue;
            };
            let matches = |t: &&ConsoleTable| t.schema == schema && t.name == name;
            let Some(table) = allowed.iter().find(matches) else {
                if all.iter().any(|t| t.schema == schema && t.name == name) {
                    return Err(SqlError::OutOfScope(
                        format!("{schema}.{name}"),
                        "silver, which needs the data-scientist role",
                    ));
                }
                continue;
            };
            if versions.iter().any(|(n, _)| *n == table.qualified()) {
                continue;
            }
            let Some(delta) = self
                .tables
                .latest(&table.spec)
                .await
                .map_err(|e| SqlError::Lake(e.to_string()))?
            else {
                return Err(SqlError::Invalid(format!(
                    "{} has no data yet: the pipeline has not written it",
                    table.qualified()
                )));
            };
            let version = delta.version().unwrap_or_default();
            mlops_lake::query::register(ctx, &table.qualified(), &delta, None)
                .await
                .map_err(|e| SqlError::Lake(e.to_string()))?;
            versions.push((table.qualified(), version));
        }
        Ok(versions)
    }
}

fn is_query(statement: &Statement) -> bool {
    matches!(statement, Statement::Statement(s) if matches!(**s, ast::Statement::Query(_)))
}

/// The statement's leading keywords (`DROP TABLE`), for the refusal.
fn statement_kind(sql: &str) -> String {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(2)
        .take_while(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
        .map(str::to_ascii_uppercase)
        .collect();
    if words.is_empty() {
        "this statement".to_owned()
    } else {
        words.join(" ")
    }
}

/// Appends `batch`'s rows as display strings; true once `max_rows` is
/// exceeded (the extra rows are not kept).
fn append_rows(
    rows: &mut Vec<Vec<Option<String>>>,
    batch: &RecordBatch,
    max_rows: usize,
) -> Result<bool, SqlError> {
    let options = FormatOptions::default().with_null("");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SqlError::Invalid(e.to_string()))?;
    for i in 0..batch.num_rows() {
        if rows.len() == max_rows {
            return Ok(true);
        }
        rows.push(
            batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(c, f)| (!c.is_null(i)).then(|| f.value(i).to_string()))
                .collect(),
        );
    }
    Ok(false)
}

/// A DataFusion error as the console reports it.
fn classify(error: DataFusionError, limits: SqlLimits) -> SqlError {
    let root = error.find_root();
    if matches!(root, DataFusionError::ResourcesExhausted(_)) {
        return SqlError::Memory(limits.memory_bytes);
    }
    match root {
        DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) => {
            SqlError::Lake(root.to_string())
        }
        _ => SqlError::Invalid(friendly(&error)),
    }
}

/// DataFusion's message without its internal prefixes.
fn friendly(error: &DataFusionError) -> String {
    let text = error.find_root().to_string();
    for prefix in [
        "Error during planning: ",
        "SQL error: ",
        "Schema error: ",
        "This feature is not implemented: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> SqlEngine {
        SqlEngine::new(
            LakeLocation::parse("memory:///").expect("lake"),
            SqlLimits {
                max_rows: 3,
                ..SqlLimits::default()
            },
        )
    }

    #[tokio::test]
    async fn statements_that_are_not_queries_are_refused() {
        for (sql, kind) in [
            ("DROP TABLE gold.kpi_daily", "DROP TABLE"),
            ("drop table gold.kpi_daily;", "DROP TABLE"),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
            ("INSERT INTO gold.kpi_daily VALUES (1)", "INSERT INTO"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("COPY (SELECT 1) TO '/tmp/x.csv' STORED AS CSV", "COPY"),
        ] {
            let error = engine()
                .run(sql, Scope::GoldAndSilver)
                .await
                .expect_err("refused");
            assert!(
                matches!(&error, SqlError::NotAQuery(k) if k == kind),
                "{sql}: {error}"
            );
            assert!(error.to_string().contains("only queries are accepted"));
        }
    }

    #[tokio::test]
    async fn several_statements_and_empty_text_are_refused() {
        let error = engine()
            .run("SELECT 1; DROP TABLE gold.kpi_daily", Scope::Gold)
            .await
            .expect_err("refused");
        assert!(
            error.to_string().contains("single SQL statement"),
            "{error}"
        );
        assert!(matches!(
            engine().run("  ", Scope::Gold).await,
            Err(SqlError::Empty)
        ));
    }

    #[tokio::test]
    async fn rows_beyond_the_limit_are_cut_and_reported() {
        let result = engine()
            .run(
                "SELECT * FROM (VALUES (1, 'a'), (2, NULL), (3, 'c'), (4, 'd')) AS t(n, s)",
                Scope::Gold,
            )
            .await
            .expect("query");
        assert_eq!(result.columns, ["n", "s"]);
        assert_eq!(result.rows.len(), 3);
        assert!(result.truncated);
        assert_eq!(result.rows[1], [Some("2".to_owned()), None]);
        assert_eq!(result.to_csv(), "n,s\r\n1,a\r\n2,\r\n3,c\r\n");
    }

    #[tokio::test]
    async fn silver_is_out_of_scope_for_gold_readers() {
        let error = engine()
            .run("SELECT count(*) FROM silver.telecom_events", Scope::Gold)
            .await
            .expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("silver.telecom_events is not available to your role"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn the_memory_limit_stops_a_greedy_query() {
        let engine = SqlEngine::new(
            LakeLocation::parse("memory:///").expect("lake"),
            SqlLimits {
                memory_bytes: 1 << 20,
                ..SqlLimits::default()
            },
        );
        let error = engine
            .run(
                "SELECT v, count(*) FROM (SELECT value % 1000000 AS v FROM generate_series(1, 3000000)) GROUP BY v ORDER BY v",
                Scope::Gold,
            )
            .await
            .expect_err("refused");
        assert!(matches!(error, SqlError::Memory(_)), "{error}");
        assert!(error.to_string().contains("1 MiB memory limit"));
    }

    #[tokio::test]
    async fn the_time_limit_stops_a_slow_query() {
        let engine = SqlEngine::new(
            LakeLocation::parse("memory:///").expect("lake"),
            SqlLimits {
                timeout: Duration::from_millis(200),
                ..SqlLimits::default()
            },
        );
        let error = engine
            .run(
                "SELECT count(*) FROM generate_series(1, 100000) a CROSS JOIN generate_series(1, 100000) b",
                Scope::Gold,
            )
            .await
            .expect_err("refused");
        assert!(matches!(error, SqlError::Timeout(_)), "{error}");
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let result = QueryResult {
            columns: vec!["a,b".into()],
            rows: vec![vec![Some("say \"hi\"".into())]],
            ..QueryResult::default()
        };
        assert_eq!(result.to_csv(), "\"a,b\"\r\n\"say \"\"hi\"\"\"\r\n");
    }
}
