//! Rendering command results: aligned tables for people, JSON for programs.
//!
//! Commands build small output structs (not internal types) and hand them here with the
//! table's headers and rows, so every command renders the same way.

use std::io::Write;

use serde::Serialize;

/// `--output table|json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns.
    Table,
    /// JSON.
    Json,
}

/// Writes `value` as pretty JSON, or `rows` as a table under `headers`.
pub fn render<T: Serialize>(
    out: &mut dyn Write,
    format: OutputFormat,
    value: &T,
    headers: &[&str],
    rows: Vec<Vec<String>>,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, value)?;
            writeln!(out)
        }
        OutputFormat::Table => table(out, headers, &rows),
    }
}

/// Writes an aligned table.
pub fn table(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line =
        |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> std::io::Result<()> {
            let mut text = String::new();
            for (i, cell) in cells.enumerate() {
                let width = widths.get(i).copied().unwrap_or(0);
                text.push_str(&format!("{cell:<width$}  "));
            }
            writeln!(out, "{}", text.trim_end())
        };
    line(out, &mut headers.iter().copied())?;
    for row in rows {
        line(out, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["NAME", "N"],
            &[
                vec!["echo".into(), "12".into()],
                vec!["state-x".into(), "3".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME     N\necho     12\nstate-x  3\n"
        );
    }
}
