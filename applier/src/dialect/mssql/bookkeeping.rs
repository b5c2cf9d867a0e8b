//! The SQL text of the state tables on SQL Server (layout and rules: `crate::state`). Pure, checked
//! by the golden tests. Every value is a parameter (`@P1`…); only quoted names are formatted in.
//!
//! `<contextId>_mirroring` keeps SuperOffice's own client's shape — `tablename`, `lsn`,
//! `schemahash` — so operators' usual statements work unchanged
//! (`UPDATE [Cust1_mirroring] SET LSN = -1 WHERE tablename = 'contact'`; SQL Server's default
//! collations compare names case-insensitively). Times are UTC (`SYSUTCDATETIME()`, `datetime2`).

use super::render::{MssqlRender, SCHEMA};
use crate::dialect::{Render, Tenant};
use crate::error::ApplyError;
use crate::state::{state_table, suffix};

/// Columns read back into a `TableState`, in this order.
pub const STATE_COLUMNS: &str =
    "[tablename], [lsn], [schemahash], [epoch], [schemajson], [quarantine], [loading]";

/// Quoted, three-part names of one tenant's state tables, and their statements.
#[derive(Debug, Clone)]
pub struct StateSql {
    pub state: String,
    pub applied: String,
    pub parked: String,
    pub failed: String,
    pub cycles: String,
    /// Unquoted names, in [`suffix::ALL`] order, as `sys.tables` lists them.
    pub plain: Vec<String>,
    /// `[db].[sys]`
    sys: String,
}

impl StateSql {
    pub fn new(tenant: &Tenant) -> Result<StateSql, ApplyError> {
        let r = MssqlRender;
        let q = |s: &str| r.table(tenant, &state_table(&tenant.context_id, s));
        Ok(StateSql {
            state: q(suffix::STATE)?,
            applied: q(suffix::APPLIED)?,
            parked: q(suffix::PARKED)?,
            failed: q(suffix::FAILED)?,
            cycles: q(suffix::CYCLES)?,
            plain: suffix::ALL
                .iter()
                .map(|s| state_table(&tenant.context_id, s))
                .collect(),
            sys: format!("{}.[sys]", r.quote(&tenant.storage)?),
        })
    }

    /// `CREATE TABLE` for each state table, in [`suffix::ALL`] order (pair with [`Self::plain`]).
    pub fn create_tables(&self) -> Vec<String> {
        let now = "DEFAULT (SYSUTCDATETIME())";
        vec![
            format!(
                "CREATE TABLE {} ([tablename] nvarchar(128) NOT NULL PRIMARY KEY, \
                 [lsn] bigint NOT NULL DEFAULT (-1), [schemahash] nvarchar(128) NULL, \
                 [epoch] bigint NOT NULL DEFAULT (0), [schemajson] nvarchar(max) NULL, \
                 [quarantine] nvarchar(max) NULL, [quarantined_at] datetime2 NULL, \
                 [loading] bit NOT NULL DEFAULT (0), [updated_at] datetime2 NOT NULL {now}, \
                 [last_cycle_at] datetime2 NULL)",
                self.state
            ),
            format!(
                "CREATE TABLE {} ([message_id] uniqueidentifier NOT NULL PRIMARY KEY, \
                 [kind] nvarchar(32) NOT NULL, [applied_at] datetime2 NOT NULL {now})",
                self.applied
            ),
            format!(
                "CREATE TABLE {} ([seq] bigint IDENTITY(1,1) NOT NULL PRIMARY KEY, \
                 [tablename] nvarchar(128) NOT NULL, [epoch] bigint NOT NULL, \
                 [message_id] uniqueidentifier NOT NULL, [batch] varbinary(max) NOT NULL, \
                 [parked_at] datetime2 NOT NULL {now})",
                self.parked
            ),
            format!(
                "CREATE TABLE {} ([message_id] uniqueidentifier NOT NULL PRIMARY KEY, \
                 [tablename] nvarchar(128) NOT NULL, [epoch] bigint NOT NULL, \
                 [reason] nvarchar(max) NOT NULL, [failed_at] datetime2 NOT NULL {now})",
                self.failed
            ),
            format!(
                "CREATE TABLE {} ([cycle] bigint IDENTITY(1,1) NOT NULL PRIMARY KEY, \
                 [message_id] uniqueidentifier NOT NULL, [completed_at] datetime2 NOT NULL {now}, \
                 [summary] nvarchar(max) NOT NULL)",
                self.cycles
            ),
        ]
    }

    fn dbo_tables(&self) -> String {
        format!(
            "SELECT t.[name] FROM {sys}.[tables] AS t INNER JOIN {sys}.[schemas] AS s \
             ON s.[schema_id] = t.[schema_id] WHERE s.[name] = N'{SCHEMA}'",
            sys = self.sys
        )
    }

    /// Which of the state tables exist: `@P1`…`@P5` are [`Self::plain`].
    pub fn existing_tables(&self) -> String {
        let params = (1..=self.plain.len())
            .map(|i| format!("@P{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("{} AND t.[name] IN ({params})", self.dbo_tables())
    }

    /// Every table of the tenant's database (the caller leaves out the state tables).
    pub fn mirror_tables(&self) -> String {
        self.dbo_tables()
    }

    pub fn states(&self) -> String {
        format!("SELECT {STATE_COLUMNS} FROM {}", self.state)
    }

    /// One state row (`@P1` = table), locked until the end of the transaction; the range lock
    /// of `HOLDLOCK` also covers a row that does not exist yet.
    pub fn state_locked(&self) -> String {
        format!(
            "SELECT {STATE_COLUMNS} FROM {} WITH (UPDLOCK, HOLDLOCK) WHERE [tablename] = @P1",
            self.state
        )
    }

    /// Upsert of a state row: `@P1` table, `@P2` lsn, `@P3` schemahash, `@P4` epoch,
    /// `@P5` schemajson, `@P6` quarantine, `@P7` loading. The quarantine time is kept while the
    /// quarantine lasts and cleared with it.
    pub fn save_state(&self) -> [String; 2] {
        let t = &self.state;
        [
            format!(
                "UPDATE {t} SET [lsn] = @P2, [schemahash] = @P3, [epoch] = @P4, \
                 [schemajson] = @P5, [quarantine] = @P6, [quarantined_at] = CASE WHEN @P6 IS NULL \
                 THEN NULL ELSE COALESCE([quarantined_at], SYSUTCDATETIME()) END, \
                 [loading] = @P7, [updated_at] = SYSUTCDATETIME() WHERE [tablename] = @P1"
            ),
            format!(
                "INSERT INTO {t} ([tablename], [lsn], [schemahash], [epoch], [schemajson], \
                 [quarantine], [quarantined_at], [loading], [updated_at]) \
                 SELECT @P1, @P2, @P3, @P4, @P5, @P6, CASE WHEN @P6 IS NULL THEN NULL \
                 ELSE SYSUTCDATETIME() END, @P7, SYSUTCDATETIME() WHERE NOT EXISTS \
                 (SELECT 1 FROM {t} WITH (UPDLOCK, HOLDLOCK) WHERE [tablename] = @P1)"
            ),
        ]
    }

    /// The LSN (`@P2`) and loading phase (`@P3`) of existing state row `@P1`.
    pub fn save_progress(&self) -> String {
        format!(
            "UPDATE {} SET [lsn] = @P2, [loading] = @P3, [updated_at] = SYSUTCDATETIME() \
             WHERE [tablename] = @P1",
            self.state
        )
    }

    pub fn delete_state(&self) -> String {
        format!("DELETE FROM {} WHERE [tablename] = @P1", self.state)
    }

    /// One row: the failure record of message `@P1` (NULLs when it has none) and whether it was
    /// applied.
    pub fn history(&self) -> String {
        format!(
            "SELECT f.[tablename], f.[epoch], f.[reason], CAST(CASE WHEN EXISTS \
             (SELECT 1 FROM {applied} WHERE [message_id] = @P1) THEN 1 ELSE 0 END AS bit) \
             FROM (SELECT 1 AS [one]) AS o LEFT JOIN {failed} AS f ON f.[message_id] = @P1",
            applied = self.applied,
            failed = self.failed
        )
    }

    /// Records message `@P1` of kind `@P2` (once).
    pub fn record_applied(&self) -> String {
        let t = &self.applied;
        format!(
            "INSERT INTO {t} ([message_id], [kind]) SELECT @P1, @P2 WHERE NOT EXISTS \
             (SELECT 1 FROM {t} WITH (UPDLOCK, HOLDLOCK) WHERE [message_id] = @P1)"
        )
    }

    /// Forgets applied ids and failure records older than `@P1` seconds.
    pub fn prune(&self) -> [String; 2] {
        [(&self.applied, "applied_at"), (&self.failed, "failed_at")].map(|(t, column)| {
            format!("DELETE FROM {t} WHERE [{column}] < DATEADD(second, -@P1, SYSUTCDATETIME())")
        })
    }

    /// `@P1` table, `@P2` epoch, `@P3` message id, `@P4` the batch (MessagePack).
    pub fn park(&self) -> String {
        format!(
            "INSERT INTO {} ([tablename], [epoch], [message_id], [batch]) VALUES (@P1, @P2, @P3, @P4)",
            self.parked
        )
    }

    pub fn parked(&self) -> String {
        format!(
            "SELECT [batch] FROM {} WHERE [tablename] = @P1 ORDER BY [seq]",
            self.parked
        )
    }

    pub fn discard_parked(&self) -> String {
        format!("DELETE FROM {} WHERE [tablename] = @P1", self.parked)
    }

    /// Upsert of a failure: `@P1` message id, `@P2` table, `@P3` epoch, `@P4` reason.
    pub fn record_failure(&self) -> [String; 2] {
        let t = &self.failed;
        [
            format!(
                "UPDATE {t} SET [tablename] = @P2, [epoch] = @P3, [reason] = @P4, \
                 [failed_at] = SYSUTCDATETIME() WHERE [message_id] = @P1"
            ),
            format!(
                "INSERT INTO {t} ([message_id], [tablename], [epoch], [reason]) \
                 SELECT @P1, @P2, @P3, @P4 WHERE NOT EXISTS \
                 (SELECT 1 FROM {t} WITH (UPDLOCK, HOLDLOCK) WHERE [message_id] = @P1)"
            ),
        ]
    }

    /// `@P1` message id, `@P2` the summary as JSON.
    pub fn record_cycle(&self) -> String {
        format!(
            "INSERT INTO {} ([message_id], [summary]) VALUES (@P1, @P2)",
            self.cycles
        )
    }

    pub fn end_loading(&self) -> String {
        format!(
            "UPDATE {} SET [loading] = 0 WHERE [loading] = 1",
            self.state
        )
    }

    /// Sets the last-cycle time of the tables named in `@P1`, a JSON array of strings.
    pub fn touch_tables(&self) -> String {
        format!(
            "UPDATE {} SET [last_cycle_at] = SYSUTCDATETIME() \
             WHERE [tablename] IN (SELECT [value] FROM OPENJSON(@P1))",
            self.state
        )
    }
}
