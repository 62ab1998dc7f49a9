//! Typed errors. Every way a file, identity or recipient string can be bad has
//! its own variant, so callers (the CLI, the sync engine) can say precisely what
//! went wrong. All authentication failures of payload chunks collapse into
//! [`Error::Payload`]; nothing tells an attacker *which* check failed beyond
//! what the C2SP streaming rules already reveal (the chunk index).

use std::io;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in a Kluis file a parse error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The fixed preamble: magic, version, suite, file id.
    Preamble,
    /// A recipient stanza (its index).
    Stanza(usize),
    /// The encrypted metadata block.
    Metadata,
    /// The header MAC.
    Mac,
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Section::Preamble => write!(f, "preamble"),
            Section::Stanza(i) => write!(f, "recipient stanza {i}"),
            Section::Metadata => write!(f, "metadata block"),
            Section::Mac => write!(f, "header MAC"),
        }
    }
}

/// Why a payload (the chunked ciphertext after the header) was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    /// Fewer than the 56 bytes of salt and commitment.
    TruncatedHeader,
    /// The commitment does not match the key and context: wrong key, wrong
    /// file, or a header moved onto another file's payload.
    Commitment,
    /// The chunk at this index did not authenticate (modified, reordered or
    /// duplicated).
    Chunk(u64),
    /// The ciphertext ends where a full chunk or the mandatory short final
    /// chunk is missing.
    Truncated,
    /// Bytes follow the final (short) chunk.
    TrailingData,
    /// The message exceeds the 2^38 chunk limit of the scheme.
    TooLong,
    /// The input key is not 32 bytes.
    InvalidKeySize,
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadError::TruncatedHeader => {
                write!(f, "payload too short to hold its salt and key commitment")
            }
            PayloadError::Commitment => write!(
                f,
                "payload key commitment mismatch (wrong key or payload of another file)"
            ),
            PayloadError::Chunk(i) => write!(f, "chunk {i} failed to authenticate"),
            PayloadError::Truncated => write!(f, "payload is truncated"),
            PayloadError::TrailingData => write!(f, "unexpected data after the final chunk"),
            PayloadError::TooLong => write!(f, "payload exceeds the maximum message size"),
            PayloadError::InvalidKeySize => write!(f, "payload key must be 32 bytes"),
        }
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data does not start with the Kluis magic bytes.
    #[error("not a Kluis file (bad magic bytes)")]
    NotKluis,
    /// A Kluis file of a version this build does not know.
    #[error("unsupported Kluis format version {0}; a newer Kluis may read it")]
    UnsupportedVersion(u8),
    /// A known version with an unknown cipher suite.
    #[error("unsupported cipher suite {0:#04x}")]
    UnsupportedSuite(u8),
    /// The header is malformed (non-canonical, out of bounds, truncated).
    #[error("malformed header ({section}): {reason}")]
    Malformed {
        /// Which part of the header.
        section: Section,
        /// What rule was broken.
        reason: &'static str,
    },
    /// No stanza in the header is addressed to the identity we hold.
    #[error("no matching recipient: this file was not encrypted to your key")]
    NoMatchingRecipient,
    /// A stanza addressed to us failed to unwrap, or the header MAC is wrong.
    #[error("the header failed to authenticate (tampered or corrupted file)")]
    HeaderAuth,
    /// The encrypted metadata failed to authenticate or decode.
    #[error("the encrypted metadata is invalid")]
    Metadata,
    /// The payload failed.
    #[error("{0}")]
    Payload(PayloadError),
    /// The plaintext length differs from the size recorded in the metadata.
    #[error("decrypted size {actual} differs from the recorded size {recorded}")]
    SizeMismatch {
        /// From the metadata.
        recorded: u64,
        /// Actually decrypted.
        actual: u64,
    },
    /// A header operation would exceed a limit (stanza count, sizes).
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
    /// Recipient list is empty.
    #[error("at least one recipient is required")]
    NoRecipients,
    /// A recipient string could not be parsed.
    #[error("invalid recipient: {0}")]
    InvalidRecipient(&'static str),
    /// An identity file could not be parsed.
    #[error("invalid identity file: {0}")]
    InvalidIdentity(&'static str),
    /// The password does not open the identity file.
    #[error("wrong password")]
    WrongPassword,
    /// The identity file's key-derivation parameters are below the minimum.
    #[error("identity file uses weak key-derivation parameters ({0}); refusing it")]
    WeakKdf(&'static str),
    /// The identity file's key-derivation parameters are above the maximum
    /// (FORMAT.md §3): refused before any work, so a planted file cannot
    /// make Kluis allocate gigabytes or run for hours.
    #[error("identity file asks for too costly key-derivation parameters ({0}); refusing it")]
    CostlyKdf(&'static str),
    /// Invalid metadata supplied by the caller.
    #[error("invalid metadata: {0}")]
    InvalidMetadata(&'static str),
    /// The caller broke a rule of the chunk API (a chunk index past the end
    /// of the payload, a buffer too small, a chunk after the final one).
    #[error("chunk API misuse: {0}")]
    Usage(&'static str),
    /// An I/O error from the reader or writer we were given.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl From<PayloadError> for Error {
    fn from(e: PayloadError) -> Self {
        Error::Payload(e)
    }
}

impl Error {
    pub(crate) fn malformed(section: Section, reason: &'static str) -> Self {
        Error::Malformed { section, reason }
    }

    /// Convert into an `io::Error`, keeping this error as its source, for the
    /// `Read`/`Write` adapters.
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            Error::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }

    /// Recover a Kluis error from an `io::Error` produced by [`Error::into_io`].
    pub fn from_io(e: io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            match e.into_inner().map(|b| b.downcast::<Error>()) {
                Some(Ok(inner)) => return *inner,
                Some(Err(other)) => {
                    return Error::Io(io::Error::new(io::ErrorKind::InvalidData, other));
                }
                None => return unreachable_io(),
            }
        }
        Error::Io(e)
    }
}

// `into_inner` only returns None when `get_ref` returned None, which we checked.
fn unreachable_io() -> Error {
    Error::Io(io::Error::other("inconsistent io::Error"))
}
