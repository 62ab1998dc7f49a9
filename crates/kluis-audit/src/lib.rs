//! The Kluis audit log: append-only and hash-chained, with checkpoints
//! signed by the organisation's Ed25519 key.
//!
//! Each row commits to the previous one:
//! `hash = SHA-256(prev_hash || canonical_encoding(seq, entry))`
//! ([`chain_hash`]). [`verify`] recomputes the chain and names the first
//! edited, deleted, reordered or duplicated row, and checks every
//! checkpoint's signature and the history it signed.
//!
//! The crate is storage-agnostic and does no I/O of its own: the broker
//! reads the last row, calls [`next_row`] (or keeps an [`AuditChain`]), and
//! inserts the result in the same transaction. Exports write to any
//! [`std::io::Write`]. It must not depend on the file format, the sync
//! engine or any storage, so that the broker and an auditor's machine can
//! link it. `docs/RECOVERY.md` §6 is the normative description.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod chain;
mod entry;
mod error;
mod export;
mod verify;

pub use chain::{
    AuditChain, CheckpointSigner, Head, SignedCheckpoint, checkpoint_message, checkpoint_row,
    next_row,
};
pub use entry::{
    Action, Actor, AuditEntry, AuditRow, ChainHash, DetailKey, Details, MAX_DETAILS, MAX_TEXT_LEN,
    Value, ValueKind, canonical_encoding, chain_hash,
};
pub use error::{AuditError, Tamper};
pub use export::{AuditRecord, export_csv, export_jsonl, import_csv, import_jsonl};
pub use verify::{Report, verify};
