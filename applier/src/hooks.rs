//! Operator SQL hooks: optional scripts run after a mirror table is (re)created and after each
//! completed cycle (to add indexes, grant access, refresh a reporting view …).
//!
//! Files under `database.hooks_dir`: `after_table_created.sql` (`{table}` is replaced by the
//! table's quoted, schema- or database-qualified name) and `after_cycle.sql`. A per-tenant folder
//! `<hooks_dir>/<contextId>/` overrides the global file of the same name. Scripts are read on
//! every use, so operators change them without a restart. Each runs in its own transaction after
//! the message committed, with the tenant's storage as the default schema; a failing hook is
//! logged and never fails the message.

use std::io::ErrorKind;
use std::path::PathBuf;

use crate::dialect::{Backend, Tenant};

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    AfterTableCreated,
    AfterCycle,
}

impl Hook {
    pub fn file_name(self) -> &'static str {
        match self {
            Hook::AfterTableCreated => "after_table_created.sql",
            Hook::AfterCycle => "after_cycle.sql",
        }
    }
}

/// The hooks folder (or none).
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    dir: Option<PathBuf>,
}

impl Hooks {
    pub fn new(dir: Option<PathBuf>) -> Hooks {
        Hooks { dir }
    }

    /// The script for a tenant: its own folder first, then the global one. The context id is a
    /// checked identifier, so it cannot climb out of the folder.
    pub async fn script(&self, context_id: &str, hook: Hook) -> Option<String> {
        let dir = self.dir.as_ref()?;
        for path in [
            dir.join(context_id).join(hook.file_name()),
            dir.join(hook.file_name()),
        ] {
            match tokio::fs::read_to_string(&path).await {
                Ok(sql) => return Some(sql),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(%error, path = %path.display(), "Cannot read hook.");
                    return None;
                }
            }
        }
        None
    }

    /// Runs `after_table_created.sql` once per table.
    pub async fn after_table_created(
        &self,
        backend: &dyn Backend,
        tenant: &Tenant,
        tables: &[String],
    ) {
        if tables.is_empty() {
            return;
        }
        let Some(script) = self
            .script(&tenant.context_id, Hook::AfterTableCreated)
            .await
        else {
            return;
        };
        for table in tables {
            let name = match backend.render().table(tenant, table) {
                Ok(name) => name,
                Err(error) => {
                    tracing::warn!(%error, tenant = %tenant.context_id, table = %table, "Hook skipped.");
                    continue;
                }
            };
            let sql = script.replace("{table}", &name);
            run(backend, tenant, Hook::AfterTableCreated, &sql).await;
        }
    }

    /// Runs `after_cycle.sql`.
    pub async fn after_cycle(&self, backend: &dyn Backend, tenant: &Tenant) {
        if let Some(sql) = self.script(&tenant.context_id, Hook::AfterCycle).await {
            run(backend, tenant, Hook::AfterCycle, &sql).await;
        }
    }
}

async fn run(backend: &dyn Backend, tenant: &Tenant, hook: Hook, sql: &str) {
    match backend.run_script(tenant, sql).await {
        Ok(()) => {
            tracing::debug!(tenant = %tenant.context_id, hook = hook.file_name(), "Hook ran.")
        }
        Err(error) => tracing::warn!(
            %error,
            tenant = %tenant.context_id,
            hook = hook.file_name(),
            "Hook failed; the message is applied regardless."
        ),
    }
}
