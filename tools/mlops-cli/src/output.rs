//! Where results go: pretty JSON with `--json`, otherwise a table.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;

use comfy_table::Table;
use serde_json::Value;

pub(crate) struct Output<'a> {
    pub(crate) json: bool,
    pub(crate) sink: RefCell<&'a mut dyn Write>,
}

impl Output<'_> {
    pub(crate) fn print(&self, value: &Value, table: impl FnOnce() -> Table) -> anyhow::Result<()> {
        let mut out = self.sink.borrow_mut();
        if self.json {
            writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
        } else {
            writeln!(out, "{}", table())?;
        }
        Ok(())
    }
}

pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    t.set_header(header.to_vec());
    t
}

pub(crate) fn pairs<V: std::fmt::Display>(map: &HashMap<String, V>) -> String {
    let mut items: Vec<_> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    items.sort();
    items.join(", ")
}

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn detail(value: &Value) -> Table {
    let mut t = table(&["field", "value"]);
    if let Value::Object(map) = value {
        for (k, v) in map {
            t.add_row(vec![k.clone(), text(v)]);
        }
    }
    t
}
