//! The running agent as the IPC endpoint serves it.

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::AgentHandle;
use crate::error::AgentError;
use crate::ipc::Service;
use crate::status::{ActivityEntry, ConflictEntry, Status};

impl Service for AgentHandle {
    fn status(&self) -> Status {
        AgentHandle::status(self)
    }

    fn pause(&self, pair: Option<&str>) -> Result<(), AgentError> {
        AgentHandle::pause(self, pair)
    }

    fn resume(
        &self,
        pair: Option<&str>,
        allow_deletions: bool,
        restore: bool,
    ) -> Result<(), AgentError> {
        AgentHandle::resume(self, pair, allow_deletions, restore)
    }

    fn lock(&self) {
        AgentHandle::lock(self);
    }

    fn unlock(&self, passphrase: &Zeroizing<String>) -> Result<(), AgentError> {
        AgentHandle::unlock(self, passphrase)
    }

    fn activity(&self, limit: usize) -> Vec<ActivityEntry> {
        AgentHandle::activity(self, limit)
    }

    fn conflicts(&self) -> Vec<ConflictEntry> {
        AgentHandle::conflicts(self)
    }

    fn sync_now(&self) {
        AgentHandle::sync_now(self);
    }

    fn refresh_directory(&self) -> Result<(), AgentError> {
        AgentHandle::refresh_directory(self)
    }

    fn shutdown(&self) {
        AgentHandle::shutdown(self);
    }

    fn unwrap_file_key(&self, header: &[u8]) -> Result<kluis_format::FileKey, AgentError> {
        AgentHandle::unwrap_file_key(self, header)
    }

    fn is_stopped(&self) -> bool {
        AgentHandle::is_stopped(self)
    }

    fn set_socket(&self, path: PathBuf) {
        AgentHandle::set_socket(self, path);
    }
}
