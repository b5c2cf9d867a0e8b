//! One benchmark run: every table, every measurement, repeated; results cross-checked.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use mirror_common::schema::TableSchema;

use super::BenchError;
use super::lab::{Fingerprint, Lab};
use super::measure::{Measurement, Outcome};
use super::report::{TableResult, thousands};
use super::workload::{Sizes, Workload};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Each table with its sizes.
    pub tables: Vec<(TableSchema, Sizes)>,
    /// Runs of each measurement; the report shows the median.
    pub repeat: usize,
    /// Longest one measurement (setup included) may take.
    pub step_timeout: Duration,
}

/// Runs `plan`. Measurements with the same [`Outcome`] must leave identical tables (same rows,
/// same values) in every repetition; otherwise the run fails rather than report a comparison of
/// different work. Progress goes to stderr.
pub async fn run(lab: &Lab, plan: &Plan) -> Result<Vec<TableResult>, BenchError> {
    let mut results = Vec::with_capacity(plan.tables.len());
    for (schema, sizes) in &plan.tables {
        eprintln!(
            "{}: generating {} rows and change sets of {} rows",
            schema.name,
            thousands(sizes.rows as u64),
            thousands(sizes.changes as u64)
        );
        let workload = Workload::generate(schema.clone(), *sizes)?;
        let mut result = TableResult::new(&schema.name, schema.columns.len());
        let mut seen: HashMap<Outcome, Fingerprint> = HashMap::new();
        for rep in 1..=plan.repeat.max(1) {
            for m in Measurement::ALL {
                let (sample, fingerprint) = m.run(lab, &workload, plan.step_timeout).await?;
                let expected = m.expected_rows(&workload);
                if fingerprint.rows != expected as i64 {
                    return Err(BenchError::Mismatch(format!(
                        "{}: {} left {} rows, expected {expected}",
                        schema.name,
                        m.label(),
                        fingerprint.rows
                    )));
                }
                match seen.entry(m.outcome()) {
                    Entry::Vacant(v) => {
                        v.insert(fingerprint);
                    }
                    Entry::Occupied(o) if *o.get() != fingerprint => {
                        return Err(BenchError::Mismatch(format!(
                            "{}: {} (run {rep}) left different rows than an earlier measurement \
                             of the same changes: {fingerprint:?} vs {:?}",
                            schema.name,
                            m.label(),
                            o.get()
                        )));
                    }
                    Entry::Occupied(_) => {}
                }
                eprintln!(
                    "{} run {rep}/{}: {:<30} {:>9} rows in {:>7.3} s = {:>9} rows/s",
                    schema.name,
                    plan.repeat,
                    m.label(),
                    thousands(sample.rows as u64),
                    sample.secs,
                    thousands(sample.rows_per_sec().round() as u64)
                );
                result.add(m, sample);
            }
        }
        results.push(result);
    }
    Ok(results)
}
