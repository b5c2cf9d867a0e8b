//! Printing: Markdown tables of the measurements, and the ratios against their DESIGN.md targets
//! in the same shape as the applier benchmark's (`| part | ratio | measured | target | |`), so
//! `bench/run` can put both into one table.

use std::fmt::Write as _;

/// A Markdown table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<&'static str>,
    /// `true` for right-aligned (numeric) columns.
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Column names; a name starting with `#` is numeric (the `#` is not shown).
    pub fn new(columns: &[&'static str]) -> Table {
        Table {
            header: columns.iter().map(|c| c.trim_start_matches('#')).collect(),
            numeric: columns.iter().map(|c| c.starts_with('#')).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| {} |", self.header.join(" | "));
        let rule: Vec<&str> = self
            .numeric
            .iter()
            .map(|n| if *n { "--:" } else { "---" })
            .collect();
        let _ = writeln!(out, "|{}|", rule.join("|"));
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }
}

/// One ratio and its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    pub part: &'static str,
    pub name: String,
    pub measured: String,
    pub target: String,
    /// `None` for a figure shown to explain the others.
    pub met: Option<bool>,
}

impl Ratio {
    /// A fraction that must reach `min` (both shown as percentages).
    pub fn at_least(part: &'static str, name: impl Into<String>, value: f64, min: f64) -> Ratio {
        Ratio {
            part,
            name: name.into(),
            measured: percent(value),
            target: format!("≥ {}", percent(min)),
            met: Some(value >= min),
        }
    }

    /// A fraction that must stay at or below `max` (both shown as percentages).
    pub fn at_most(part: &'static str, name: impl Into<String>, value: f64, max: f64) -> Ratio {
        Ratio {
            part,
            name: name.into(),
            measured: percent(value),
            target: format!("≤ {}", percent(max)),
            met: Some(value <= max),
        }
    }

    /// Milliseconds that must stay at or below `max`.
    pub fn at_most_ms(part: &'static str, name: impl Into<String>, ms: f64, max: f64) -> Ratio {
        Ratio {
            part,
            name: name.into(),
            measured: format!("{ms:.1} ms"),
            target: format!("≤ {max:.0} ms"),
            met: Some(ms <= max),
        }
    }

    /// A figure without a target.
    pub fn info(part: &'static str, name: impl Into<String>, measured: String) -> Ratio {
        Ratio {
            part,
            name: name.into(),
            measured,
            target: "–".to_owned(),
            met: None,
        }
    }

    fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        }
    }
}

/// The ratios as a Markdown table.
pub fn render_ratios(ratios: &[Ratio]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| part | ratio | measured | target | |");
    let _ = writeln!(out, "|---|---|--:|--:|---|");
    for r in ratios {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.part,
            r.name,
            r.measured,
            r.target,
            r.verdict()
        );
    }
    out
}

/// `0.934` → `93.4%`.
pub fn percent(value: f64) -> String {
    format!("{:.1}%", value * 100.0)
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_ratios_render_as_markdown() {
        let mut table = Table::new(&["step", "#rows"]);
        table.push(vec!["load".into(), thousands(1_000_000)]);
        assert_eq!(
            table.render(),
            "| step | rows |\n|---|--:|\n| load | 1,000,000 |\n"
        );
        let ratios = [
            Ratio::at_least("receiver", "ours / raw, c=1", 0.75, 0.8),
            Ratio::at_most_ms("receiver", "added p99, c=1", 4.24, 10.0),
            Ratio::info("memory", "receiver peak RSS", "42.0 MiB".into()),
        ];
        let text = render_ratios(&ratios);
        assert!(text.contains("| receiver | ours / raw, c=1 | 75.0% | ≥ 80.0% | MISSED |"));
        assert!(text.contains("| receiver | added p99, c=1 | 4.2 ms | ≤ 10 ms | met |"));
        assert!(text.contains("| memory | receiver peak RSS | 42.0 MiB | – |  |"));
    }
}
