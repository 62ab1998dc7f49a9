//! Secret newtypes: zeroized on drop, no `Debug` of their contents.

use zeroize::Zeroizing;

/// A password or passphrase.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The user's secret identity, as opaque bytes the caller produced.
pub struct SecretIdentity(Zeroizing<Vec<u8>>);

impl SecretIdentity {
    /// Wraps identity bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }
    /// The secret bytes. Handle with care.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretIdentity(<{} bytes redacted>)", self.0.len())
    }
}

/// The OPAQUE export key (64 bytes), known only to the client.
pub struct ExportKey(pub(crate) Zeroizing<[u8; 64]>);

impl ExportKey {
    /// Wraps export-key bytes (tests and callers with their own OPAQUE run).
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(Zeroizing::new(bytes))
    }
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 64] = bytes.try_into().ok()?;
        Some(Self::from_bytes(arr))
    }
}

impl std::fmt::Debug for ExportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportKey(<redacted>)")
    }
}
