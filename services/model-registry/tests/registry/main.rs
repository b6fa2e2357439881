//! The registry's API against real databases (Postgres and SQLite, the same
//! scenarios on both) and a local artifact store.
//!
//! One test binary (each integration test file links its own): the
//! scenarios live in modules by area and run here as `postgres::<name>` and
//! `sqlite::<name>`.

#[path = "../support/mod.rs"]
mod support;

mod aliases;
mod artifacts;
mod audit;
mod helpers;
mod mlflow;
mod models;
mod runs;
mod search;
mod tokens;
mod versions;

use aliases::aliases_move_atomically_keep_history_and_need_approvers_when_protected;
use artifacts::artifacts_round_trip_and_failures_leave_the_reason;
use audit::every_mutation_is_audited_and_announced_once_committed;
use mlflow::{
    mlflow_errors_are_json_with_mlflow_codes,
    the_mlflow_client_manages_models_through_the_same_rules,
};
use models::models_are_created_validated_updated_and_archived;
use runs::runs_link_versions_to_their_dataset_and_cannot_be_deleted_when_used;
use search::search_filters_orders_pages_and_always_carries_aliases_and_tags;
use tokens::tokens_and_roles_are_enforced;
use versions::concurrent_creates_get_distinct_consecutive_numbers;

on_both_databases!(
    models_are_created_validated_updated_and_archived,
    concurrent_creates_get_distinct_consecutive_numbers,
    artifacts_round_trip_and_failures_leave_the_reason,
    aliases_move_atomically_keep_history_and_need_approvers_when_protected,
    search_filters_orders_pages_and_always_carries_aliases_and_tags,
    tokens_and_roles_are_enforced,
    runs_link_versions_to_their_dataset_and_cannot_be_deleted_when_used,
    every_mutation_is_audited_and_announced_once_committed,
    the_mlflow_client_manages_models_through_the_same_rules,
    mlflow_errors_are_json_with_mlflow_codes,
);
