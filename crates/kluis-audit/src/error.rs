//! Typed errors. Tampering findings name the row (`seq`) and what is wrong.

/// A way in which a log fails verification. Every variant names a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Tamper {
    /// The row's contents no longer match its stored hash.
    #[error("row {seq} was edited: its contents do not match its hash")]
    Edited {
        /// The row.
        seq: u64,
    },
    /// The row was edited and its hash recomputed, but the next row still
    /// commits to the original hash.
    #[error("row {seq} was edited and re-hashed: row {next} still commits to the original")]
    Rehashed {
        /// The edited row.
        seq: u64,
        /// The row whose `prev_hash` exposes it.
        next: u64,
    },
    /// A row is missing.
    #[error("row {seq} is missing (deleted)")]
    Deleted {
        /// The missing row.
        seq: u64,
    },
    /// A row appears out of order.
    #[error("row {seq} is out of order (found at position {position})")]
    Reordered {
        /// The displaced row.
        seq: u64,
        /// Where it was found (0-based position in the input).
        position: usize,
    },
    /// A row appears twice.
    #[error("row {seq} appears more than once")]
    Duplicated {
        /// The repeated row.
        seq: u64,
    },
    /// A row is dated before its predecessor.
    #[error("row {seq} is dated before the row it follows")]
    TimeWentBackwards {
        /// The row.
        seq: u64,
    },
    /// A checkpoint row is not signed by the organisation key.
    #[error("checkpoint row {seq} is not signed by the organisation key (forged)")]
    ForgedCheckpoint {
        /// The checkpoint row.
        seq: u64,
    },
    /// A checkpoint row lacks its fields or covers a later row.
    #[error("checkpoint row {seq} is malformed: {reason}")]
    MalformedCheckpoint {
        /// The checkpoint row.
        seq: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A genuine checkpoint signed a different hash for the row it covers:
    /// the rows since the previous good checkpoint were rewritten and the
    /// chain recomputed.
    #[error(
        "rows {since}..={covers_seq} were rewritten: checkpoint row {checkpoint_seq} signed a different history"
    )]
    HistoryRewritten {
        /// The checkpoint row.
        checkpoint_seq: u64,
        /// The row it covers.
        covers_seq: u64,
        /// The first row after the previous good checkpoint.
        since: u64,
    },
}

impl Tamper {
    /// The row named.
    pub fn seq(&self) -> u64 {
        match self {
            Tamper::Edited { seq }
            | Tamper::Rehashed { seq, .. }
            | Tamper::Deleted { seq }
            | Tamper::Reordered { seq, .. }
            | Tamper::Duplicated { seq }
            | Tamper::TimeWentBackwards { seq }
            | Tamper::ForgedCheckpoint { seq }
            | Tamper::MalformedCheckpoint { seq, .. } => *seq,
            Tamper::HistoryRewritten { checkpoint_seq, .. } => *checkpoint_seq,
        }
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A field breaks its rule.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// The rule.
        reason: &'static str,
    },
    /// A detail value has the wrong type for its key.
    #[error("detail `{key}` has the wrong value type")]
    WrongValueType {
        /// The key code.
        key: &'static str,
    },
    /// A detail value looks like key material; secrets never enter the log.
    #[error("detail `{key}` looks like key material; secrets are never logged")]
    SecretLike {
        /// The key code.
        key: &'static str,
    },
    /// The log fails verification.
    #[error("audit log verification failed: {0}")]
    Tampered(#[from] Tamper),
    /// A line of a JSONL export, or a record of a CSV export, is unusable.
    #[error("export line {line}: {reason}")]
    Import {
        /// 1-based line (JSONL) or record (CSV, header excluded) number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// JSON encoding failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// CSV encoding failed.
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    /// The reader or writer failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
