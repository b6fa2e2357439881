//! Conventions for Prometheus metrics shared by the services.

/// Label set of a metric family: `("reason", "undecodable")` and the like.
pub type Labels = Vec<(String, String)>;

/// A one-label set, e.g. `label("partition", 3)`.
pub fn label(key: &str, value: impl ToString) -> Labels {
    vec![(key.to_string(), value.to_string())]
}
