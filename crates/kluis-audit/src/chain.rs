//! Building the chain: the next row from the previous head, and signed
//! checkpoints. RECOVERY.md §6.

use crate::entry::{
    Action, Actor, AuditEntry, AuditRow, ChainHash, DetailKey, Details, Value, chain_hash,
};
use crate::error::AuditError;

/// The end of the chain: what the next row builds on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Head {
    /// The last row's sequence number (0 for an empty log).
    pub seq: u64,
    /// The last row's hash ([`ChainHash::GENESIS`] for an empty log).
    pub hash: ChainHash,
    /// The last row's time (`i64::MIN` for an empty log).
    pub time: i64,
}

impl Head {
    /// The head of an empty log.
    pub const GENESIS: Head = Head {
        seq: 0,
        hash: ChainHash::GENESIS,
        time: i64::MIN,
    };

    /// The head after `row`.
    pub fn of(row: &AuditRow) -> Self {
        Head {
            seq: row.seq,
            hash: row.hash,
            time: row.entry.time,
        }
    }
}

/// Builds the row that follows `head`. Pure: the broker calls it inside the
/// transaction that reads the last row and inserts this one, so two writers
/// can never build on the same head. The entry's time is raised to the
/// head's time if the clock went backwards.
pub fn next_row(head: &Head, mut entry: AuditEntry) -> Result<AuditRow, AuditError> {
    if entry.action == Action::Checkpoint {
        return Err(AuditError::Invalid {
            field: "action",
            reason: "checkpoints are appended with a SignedCheckpoint",
        });
    }
    build(head, {
        entry.time = entry.time.max(head.time);
        entry
    })
}

fn build(head: &Head, entry: AuditEntry) -> Result<AuditRow, AuditError> {
    entry.validate()?;
    let seq = head.seq.checked_add(1).ok_or(AuditError::Invalid {
        field: "seq",
        reason: "the log is full",
    })?;
    let hash = chain_hash(&head.hash, seq, &entry);
    Ok(AuditRow {
        seq,
        entry,
        prev_hash: head.hash,
        hash,
    })
}

/// Whatever holds the organisation signing key. Implemented for
/// `ed25519_dalek::SigningKey`; the broker can implement it for its own
/// key wrapper, or an offline admin tool can sign [`checkpoint_message`].
pub trait CheckpointSigner {
    /// An Ed25519 signature over `message`.
    fn sign_checkpoint(&self, message: &[u8]) -> [u8; 64];
}

impl CheckpointSigner for ed25519_dalek::SigningKey {
    fn sign_checkpoint(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.sign(message).to_bytes()
    }
}

const CHECKPOINT_DOMAIN: &[u8] = b"kluis audit checkpoint v1\n";

/// The bytes the organisation key signs for a checkpoint:
/// `"kluis audit checkpoint v1\n" || u64 BE covers_seq || covers_hash (32) || i64 BE signed_at`.
pub fn checkpoint_message(covers_seq: u64, covers_hash: &ChainHash, signed_at: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 48);
    out.extend_from_slice(CHECKPOINT_DOMAIN);
    out.extend_from_slice(&covers_seq.to_be_bytes());
    out.extend_from_slice(&covers_hash.0);
    out.extend_from_slice(&signed_at.to_be_bytes());
    out
}

/// An organisation signature over one head of the log.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SignedCheckpoint {
    /// The row covered.
    pub covers_seq: u64,
    /// That row's hash.
    pub covers_hash: ChainHash,
    /// When it was signed (Unix seconds).
    pub signed_at: i64,
    /// Ed25519 signature over [`checkpoint_message`].
    pub signature: [u8; 64],
}

impl SignedCheckpoint {
    /// Signs `head` (which must not be the empty log's).
    pub fn sign(
        head: &Head,
        signed_at: i64,
        signer: &impl CheckpointSigner,
    ) -> Result<Self, AuditError> {
        if head.seq == 0 {
            return Err(AuditError::Invalid {
                field: "checkpoint",
                reason: "the log is empty",
            });
        }
        let signature =
            signer.sign_checkpoint(&checkpoint_message(head.seq, &head.hash, signed_at));
        Ok(Self {
            covers_seq: head.seq,
            covers_hash: head.hash,
            signed_at,
            signature,
        })
    }

    /// Whether `org_public_key` signed this checkpoint.
    pub fn is_signed_by(&self, org_public_key: &[u8; 32]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(org_public_key) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.verify_strict(
            &checkpoint_message(self.covers_seq, &self.covers_hash, self.signed_at),
            &sig,
        )
        .is_ok()
    }

    fn details(&self) -> Result<Details, AuditError> {
        let covers = i64::try_from(self.covers_seq).map_err(|_| AuditError::Invalid {
            field: "checkpoint",
            reason: "sequence too large",
        })?;
        let mut d = Details::new();
        d.insert(DetailKey::CoversSeq, Value::Int(covers))?;
        d.insert(DetailKey::CoversHash, Value::Hash(self.covers_hash.0))?;
        d.insert(DetailKey::SignedAt, Value::Int(self.signed_at))?;
        d.insert(DetailKey::Signature, Value::Signature(self.signature))?;
        Ok(d)
    }

    /// Reads a checkpoint back from a row's details; `None` if a field is
    /// missing or out of range.
    pub fn from_details(details: &Details) -> Option<Self> {
        let covers_seq = match details.get(DetailKey::CoversSeq)? {
            Value::Int(i) => u64::try_from(*i).ok()?,
            _ => return None,
        };
        let covers_hash = match details.get(DetailKey::CoversHash)? {
            Value::Hash(h) => ChainHash(*h),
            _ => return None,
        };
        let signed_at = match details.get(DetailKey::SignedAt)? {
            Value::Int(i) => *i,
            _ => return None,
        };
        let signature = match details.get(DetailKey::Signature)? {
            Value::Signature(s) => *s,
            _ => return None,
        };
        Some(Self {
            covers_seq,
            covers_hash,
            signed_at,
            signature,
        })
    }
}

/// Builds the row recording `checkpoint` after `head`. The checkpoint may
/// cover an earlier row than the head (it was signed offline while the log
/// grew); it may not cover a later one, and if it covers the head itself its
/// hash must match.
pub fn checkpoint_row(
    head: &Head,
    time: i64,
    actor: Actor,
    checkpoint: &SignedCheckpoint,
) -> Result<AuditRow, AuditError> {
    if checkpoint.covers_seq == 0 || checkpoint.covers_seq > head.seq {
        return Err(AuditError::Invalid {
            field: "checkpoint",
            reason: "covers a row not yet written",
        });
    }
    if checkpoint.covers_seq == head.seq && checkpoint.covers_hash != head.hash {
        return Err(AuditError::Invalid {
            field: "checkpoint",
            reason: "signs a different head",
        });
    }
    let entry = AuditEntry {
        time: time.max(head.time),
        actor,
        action: Action::Checkpoint,
        target: String::new(),
        details: checkpoint.details()?,
    };
    build(head, entry)
}

/// An in-memory cursor over the chain for callers that keep the head
/// themselves (tests, tools, a single-writer broker).
#[derive(Clone, Debug)]
pub struct AuditChain {
    head: Head,
}

impl Default for AuditChain {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditChain {
    /// A chain for an empty log.
    pub fn new() -> Self {
        Self {
            head: Head::GENESIS,
        }
    }

    /// Continues after a stored head (from the last stored row: [`Head::of`]).
    pub fn resume(head: Head) -> Self {
        Self { head }
    }

    /// The current head.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Builds the next row and advances the head. Persist the row before
    /// building another; if persisting fails, [`AuditChain::resume`] from
    /// storage.
    pub fn append(&mut self, entry: AuditEntry) -> Result<AuditRow, AuditError> {
        let row = next_row(&self.head, entry)?;
        self.head = Head::of(&row);
        Ok(row)
    }

    /// Signs the current head with `signer` and appends the checkpoint row.
    pub fn checkpoint(
        &mut self,
        time: i64,
        signer: &impl CheckpointSigner,
    ) -> Result<AuditRow, AuditError> {
        let signed = SignedCheckpoint::sign(&self.head, time.max(self.head.time), signer)?;
        self.append_checkpoint(time, Actor::System, &signed)
    }

    /// Appends a checkpoint signed elsewhere (an offline org key).
    pub fn append_checkpoint(
        &mut self,
        time: i64,
        actor: Actor,
        checkpoint: &SignedCheckpoint,
    ) -> Result<AuditRow, AuditError> {
        let row = checkpoint_row(&self.head, time, actor, checkpoint)?;
        self.head = Head::of(&row);
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[3u8; 32])
    }

    #[test]
    fn rows_chain_and_time_never_goes_back() {
        let mut chain = AuditChain::new();
        let a = chain
            .append(AuditEntry::new(100, Actor::System, Action::PolicyChanged))
            .expect("row");
        let b = chain
            .append(AuditEntry::new(90, Actor::System, Action::PolicyChanged))
            .expect("row");
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(a.prev_hash, ChainHash::GENESIS);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(b.entry.time, 100);
        assert_eq!(chain.head(), Head::of(&b));
    }

    #[test]
    fn checkpoints_only_through_the_checkpoint_path() {
        let mut chain = AuditChain::new();
        assert!(
            chain
                .append(AuditEntry::new(1, Actor::System, Action::Checkpoint))
                .is_err()
        );
        assert!(chain.checkpoint(1, &key()).is_err(), "empty log");
        chain
            .append(AuditEntry::new(1, Actor::System, Action::UserRegistered))
            .expect("row");
        let row = chain.checkpoint(2, &key()).expect("checkpoint");
        let cp = SignedCheckpoint::from_details(&row.entry.details).expect("fields");
        assert_eq!(cp.covers_seq, 1);
        assert!(cp.is_signed_by(&key().verifying_key().to_bytes()));
        assert!(!cp.is_signed_by(&[9u8; 32]));
    }

    #[test]
    fn offline_checkpoint_may_lag_but_not_lead() {
        let mut chain = AuditChain::new();
        chain
            .append(AuditEntry::new(1, Actor::System, Action::UserRegistered))
            .expect("row");
        let signed = SignedCheckpoint::sign(&chain.head(), 5, &key()).expect("sign");
        chain
            .append(AuditEntry::new(2, Actor::System, Action::UserEnabled))
            .expect("row");
        chain
            .append_checkpoint(6, Actor::Admin("root@x".into()), &signed)
            .expect("lagging is fine");
        let mut ahead = signed;
        ahead.covers_seq = 10;
        assert!(chain.append_checkpoint(7, Actor::System, &ahead).is_err());
    }
}
