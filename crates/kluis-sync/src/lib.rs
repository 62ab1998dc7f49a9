//! The Kluis sync engine: a two-way encrypted mirror of a plaintext folder
//! inside a sync folder. Scan → index → plan → apply:
//!
//! - [`scan`] stats both trees (never reading plaintext);
//! - [`index`] keeps the last synced state in SQLite (WAL);
//! - [`plan`] is pure: (local scan, mirror scan, index, clock) → sorted
//!   [`plan::Operation`]s, including how they are applied (new files in one
//!   batch, a change of the folder's members first);
//! - [`exec`] applies them, one module per kind of operation, and every
//!   write through one never-clobber path ([`exec::write`]): temp file,
//!   fsync, re-check of the target, rename, fsync the directory;
//! - [`engine::Engine`] is only the loop for one folder pair: scan, plan,
//!   apply, until nothing is left to do.
//!
//! Names are encrypted per component ([`names`]) with a per-folder secret
//! kept in the encrypted folder-metadata file ([`folder_meta`]). The names
//! of conflict copies and of the trash are written, recognised and parsed
//! back in [`copy_names`] only.
//!
//! It owns one folder pair's state and files. It depends on `kluis-format`
//! for every byte layout, and must not depend on the agent, the broker, the
//! network or a UI: which pairs exist, when to run and who to share with are
//! decided above it.
#![forbid(unsafe_code)]

pub mod copy_names;
mod crypt;
mod damage;
pub mod engine;
pub mod error;
pub mod exec;
pub mod folder_meta;
pub mod index;
pub mod inplace;
pub mod keys;
pub mod names;
pub mod plan;
pub mod scan;

pub use engine::{Clock, Engine, EngineConfig, Report, SystemClock};
pub use error::{ItemError, ItemErrorKind, NameError, SyncError};
pub use folder_meta::{DirectoryView, FolderMeta, Member, MemberChange, MemberKind};
pub use plan::{Guard, Operation, Plan};
