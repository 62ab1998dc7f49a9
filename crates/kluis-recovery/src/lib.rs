//! Organisation key recovery for Kluis. Runs on user and admin machines,
//! never on the broker.
//!
//! * [`init`] makes the organisation recovery key and splits its 64 secret
//!   bytes into N Shamir shares over GF(256), K of which rebuild it. Each
//!   share is a file sealed with its holder's password (Argon2id +
//!   AES-256-GCM) that also carries a commitment to every share, so a share
//!   altered even by its own holder is detected and named ([`combine`]).
//! * [`seal_for_recovery`] is what a user's client uploads as its escrow
//!   copy: the identity, sealed to the recovery public key.
//! * A user who lost their password makes a [`RequestKey`]; K administrators
//!   sign approvals ([`kluis_approvals`]); on an admin machine the shares
//!   are combined and [`reseal_for_request`] re-seals the escrow to the
//!   request key; the client runs [`open_recovered`].
//!
//! No function here reads files, clocks or the network: bytes, times and
//! randomness are passed in. `docs/RECOVERY.md` is the normative description.
//! It depends on `kluis-approvals` only, and must not depend on the broker,
//! the sync engine or any storage.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod escrow;
mod setup;
mod share;

pub use error::{RecoveryError, Result, TamperedPart};
pub use escrow::{
    ApprovalPolicy, Recovered, RecoveryCase, RecoveryEscrow, RecoveryPackage, RequestKey,
    fingerprint_of, open_escrow, open_recovered, reseal_for_request, seal_for_recovery,
};
pub use kluis_approvals;
pub use setup::{RecoveryKey, RecoverySetup, ShareHolder, combine, init, init_with_params};
pub use share::{MAX_HOLDER_LEN, MAX_SHARES, OpenedShare, SHARE_LEN, ShareFile, ShareInfo};

/// Opens share files with their passwords and combines them: the one call
/// an admin tool needs once every holder has typed their password.
/// `shares[i]` is `(file bytes, password)`. The first file that does not
/// parse or open is named in the error.
pub fn combine_files(shares: &[(&[u8], &[u8])]) -> Result<RecoveryKey> {
    let opened = shares
        .iter()
        .map(|(file, password)| ShareFile::parse(file)?.open(password))
        .collect::<Result<Vec<_>>>()?;
    combine(&opened)
}
