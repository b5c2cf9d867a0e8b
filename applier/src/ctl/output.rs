//! Text output: aligned tables, optional values, and the progress bar of long work.

use std::io::IsTerminal as _;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};

/// Renders rows under a header as left-aligned columns separated by two spaces, without
/// trailing white space. Widths count characters, not bytes.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            let pad = widths.get(i).copied().unwrap_or(0);
            text.extend(std::iter::repeat_n(
                ' ',
                pad.saturating_sub(cell.chars().count()),
            ));
        }
        format!("{}\n", text.trim_end())
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// `value` as text, or `-` when absent.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A time as `2026-11-29 12:43:32Z`, or `-`.
pub fn time(value: Option<DateTime<Utc>>) -> String {
    or_dash(value.map(|t| t.format("%Y-%m-%d %H:%M:%SZ")))
}

/// A progress bar on stderr over `len` steps; hidden for JSON output and when stderr is not a
/// terminal, so it never mixes with what scripts read.
pub fn progress(len: u64, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_by_characters() {
        let text = table(
            &["tenant", "lsn"],
            &[
                vec!["Cust1".into(), "10".into()],
                vec!["Kundeåø".into(), "-1".into()],
            ],
        );
        assert_eq!(text, "tenant   lsn\nCust1    10\nKundeåø  -1\n");
    }

    #[test]
    fn renders_absent_values_as_a_dash() {
        assert_eq!(or_dash(None::<i64>), "-");
        assert_eq!(or_dash(Some(3)), "3");
        assert_eq!(time(None), "-");
        assert_eq!(
            time(DateTime::from_timestamp(1_700_000_000, 0)),
            "2023-11-14 22:13:20Z"
        );
    }
}
