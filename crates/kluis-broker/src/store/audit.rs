//! The audit log: a hash chain of rows, appended under the log's write
//! lock (see `kluis_audit` for the chain's rules).

use async_trait::async_trait;
use kluis_audit::{AuditEntry, AuditError, AuditRecord, AuditRow, Head};

use super::{Store, StoreError};

/// Builds the next audit row from the current head (see
/// [`AuditStore::append_audit_with`]).
pub type AuditBuilder<'a> = dyn Fn(&Head) -> Result<AuditRow, AuditError> + Send + Sync + 'a;

/// Appending to and reading the audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one audit row built by `build` from the current head, in a
    /// transaction that holds the log's write lock, so two writers can never
    /// build on the same head.
    async fn append_audit_with(&self, build: &AuditBuilder<'_>) -> Result<AuditRow, StoreError>;

    /// Every audit row in insertion order (not re-sorted: verification must
    /// see reordering).
    async fn audit_rows(&self) -> Result<Vec<AuditRow>, StoreError>;
}

/// Appends `entry` as the next audit row.
pub async fn append_audit(store: &dyn Store, entry: AuditEntry) -> Result<AuditRow, StoreError> {
    store
        .append_audit_with(&move |head: &Head| kluis_audit::next_row(head, entry.clone()))
        .await
}

/// Raw columns of an `audit_log` row.
pub(crate) struct RawAudit {
    pub seq: i64,
    pub time: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl RawAudit {
    /// Decodes a stored row. Field syntax is checked, the hash is not: that
    /// is `kluis_audit::verify`'s job, so tampering is named there.
    pub(crate) fn decode(self) -> Result<AuditRow, StoreError> {
        let corrupt = || StoreError::Corrupt { table: "audit_log" };
        let details = serde_json::from_str(&self.details).map_err(|_| corrupt())?;
        let record = AuditRecord {
            seq: u64::try_from(self.seq).map_err(|_| corrupt())?,
            time: self.time,
            time_utc: String::new(),
            actor: self.actor,
            action: self.action,
            target: self.target,
            details,
            prev_hash: self.prev_hash,
            hash: self.hash,
        };
        AuditRow::try_from(record).map_err(|_| corrupt())
    }

    /// The columns of a row to insert.
    pub(crate) fn encode(row: &AuditRow) -> Result<Self, StoreError> {
        let record = AuditRecord::from(row);
        Ok(Self {
            seq: i64::try_from(record.seq)
                .map_err(|_| StoreError::Corrupt { table: "audit_log" })?,
            time: record.time,
            actor: record.actor,
            action: record.action,
            target: record.target,
            details: serde_json::Value::Object(record.details).to_string(),
            prev_hash: record.prev_hash,
            hash: record.hash,
        })
    }
}
