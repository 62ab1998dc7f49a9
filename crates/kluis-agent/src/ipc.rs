//! The local control endpoint: one JSON object per line each way.
//!
//! On Unix the endpoint is a socket in the runtime directory, which is
//! created owner-only (0700); the socket itself is set to 0600.
//!
//! On Windows it is a named pipe. Pipe names are global to the machine and
//! anyone may create one, so a fixed name could be taken first by another
//! user, who would then receive `unlock` passphrases. The agent therefore
//! picks a random name (128 bits) at each start, creates the pipe as its
//! first instance (which fails if the name exists), refuses remote clients,
//! and writes the name into the endpoint file in its runtime directory,
//! inside the user's profile. Clients read the name from that file, so only
//! someone who can read the user's files can find the pipe.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::AgentError;
pub use crate::status::{
    Action, ActivityEntry, Alert, ConflictEntry, DirectoryStatus, ItemProblem, PairState,
    PairStatus, ProblemKind, SharedWithYou, Skip, SkipKind, Status,
};

/// What the endpoint serves: the running agent ([`crate::AgentHandle`]
/// implements it). A trait, so that this module does not depend on the
/// agent (the agent depends on it) and a test can serve a fake.
pub trait Service: Clone + Send + 'static {
    /// Agent and pair status.
    fn status(&self) -> Status;
    /// Pause one pair (by id) or all.
    fn pause(&self, pair: Option<&str>) -> Result<(), AgentError>;
    /// Resume one pair (by id) or all.
    fn resume(
        &self,
        pair: Option<&str>,
        allow_deletions: bool,
        restore: bool,
    ) -> Result<(), AgentError>;
    /// Forget the identity.
    fn lock(&self);
    /// Open the identity with this passphrase.
    fn unlock(&self, passphrase: &zeroize::Zeroizing<String>) -> Result<(), AgentError>;
    /// Recent activity, newest last.
    fn activity(&self, limit: usize) -> Vec<ActivityEntry>;
    /// Conflict copies in all pairs.
    fn conflicts(&self) -> Vec<ConflictEntry>;
    /// Reconcile now.
    fn sync_now(&self);
    /// Ask the organisation directory now.
    fn refresh_directory(&self) -> Result<(), AgentError>;
    /// Stop the agent.
    fn shutdown(&self);
    /// Unwrap the file key of a header with the unlocked identity.
    fn unwrap_file_key(&self, header: &[u8]) -> Result<kluis_format::FileKey, AgentError>;
    /// Whether the agent has stopped (the endpoint stops too).
    fn is_stopped(&self) -> bool;
    /// Where the endpoint listens, so that shutdown can wake it.
    fn set_socket(&self, path: PathBuf);
}

/// A request to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Agent and pair status.
    Status,
    /// Pause one pair, or all.
    Pause {
        /// Pair id; all when absent.
        pair: Option<String>,
    },
    /// Resume one pair, or all.
    Resume {
        /// Pair id; all when absent.
        pair: Option<String>,
        /// Let through exactly the deletions the mass-deletion guard
        /// reported last.
        #[serde(default)]
        allow_deletions: bool,
        /// Put back what the guard held back, from the other side,
        /// instead of deleting it.
        #[serde(default)]
        restore: bool,
    },
    /// Forget the identity; nothing is encrypted or decrypted until unlock.
    Lock,
    /// Open the identity with this passphrase.
    Unlock {
        /// The passphrase (sent over the owner-only socket only).
        passphrase: String,
    },
    /// Recent activity, newest last.
    Activity {
        /// At most this many entries.
        limit: usize,
    },
    /// Conflict copies in all pairs.
    Conflicts,
    /// Reconcile now.
    Sync,
    /// Ask the organisation directory now (departed members, rotated group
    /// keys, your group keys) instead of waiting for the periodic refresh.
    RefreshDirectory,
    /// Unwrap a file key with the unlocked identity (see
    /// [`Service::unwrap_file_key`]).
    UnwrapFileKey {
        /// The complete header of a Kluis file, base64 (standard, padded).
        header: String,
    },
    /// Stop the agent.
    Shutdown,
}

/// The agent's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    /// Done.
    Ok,
    /// Status.
    Status(Status),
    /// Activity log.
    Activity {
        /// Entries.
        entries: Vec<ActivityEntry>,
    },
    /// Conflicts.
    Conflicts {
        /// Entries.
        entries: Vec<ConflictEntry>,
    },
    /// The file key of a header, base64 (standard, padded).
    FileKey {
        /// 32 bytes, base64.
        key: SecretText,
    },
    /// Failure, with a stable code for the UI.
    Error {
        /// e.g. `wrong_passphrase`, `unknown_pair`, `bad_request`.
        code: String,
        /// A sentence for people.
        message: String,
    },
}

/// A secret that travels as a JSON string: wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub zeroize::Zeroizing<String>);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(..)")
    }
}

/// Answer one request against a running agent.
pub fn handle(agent: &impl Service, req: Request) -> Response {
    let res = match req {
        Request::Status => return Response::Status(agent.status()),
        Request::Pause { pair } => agent.pause(pair.as_deref()),
        Request::Resume {
            pair,
            allow_deletions,
            restore,
        } => agent.resume(pair.as_deref(), allow_deletions, restore),
        Request::Lock => {
            agent.lock();
            Ok(())
        }
        Request::Unlock { passphrase } => agent.unlock(&zeroize::Zeroizing::new(passphrase)),
        Request::Activity { limit } => {
            return Response::Activity {
                entries: agent.activity(limit),
            };
        }
        Request::Conflicts => {
            return Response::Conflicts {
                entries: agent.conflicts(),
            };
        }
        Request::Sync => {
            agent.sync_now();
            Ok(())
        }
        Request::RefreshDirectory => agent.refresh_directory(),
        Request::Shutdown => {
            agent.shutdown();
            Ok(())
        }
        Request::UnwrapFileKey { header } => {
            use base64::Engine as _;
            let bytes = match base64::engine::general_purpose::STANDARD.decode(header.as_bytes()) {
                Ok(b) => b,
                Err(e) => {
                    return error_response(&AgentError::Protocol(format!(
                        "header is not base64: {e}"
                    )));
                }
            };
            return match agent.unwrap_file_key(&bytes) {
                Ok(key) => Response::FileKey {
                    key: SecretText(zeroize::Zeroizing::new(
                        base64::engine::general_purpose::STANDARD.encode(key.dangerous_bytes()),
                    )),
                },
                Err(e) => error_response(&e),
            };
        }
    };
    match res {
        Ok(()) => Response::Ok,
        Err(e) => error_response(&e),
    }
}

fn error_response(e: &AgentError) -> Response {
    let code = match e {
        AgentError::Identity(kluis_format::Error::WrongPassword) => "wrong_passphrase",
        AgentError::IdentityLocked => "locked",
        AgentError::Identity(kluis_format::Error::NoMatchingRecipient) => "no_matching_recipient",
        AgentError::Identity(_) => "identity",
        AgentError::Pair(_) => "unknown_pair",
        AgentError::Protocol(_) => "bad_request",
        AgentError::Directory(_) => "directory",
        _ => "failed",
    };
    Response::Error {
        code: code.to_owned(),
        message: e.to_string(),
    }
}

/// Serve requests on the Unix socket until the agent stops. Returns the
/// listener thread.
#[cfg(unix)]
pub fn serve(
    agent: impl Service,
    socket: &Path,
) -> Result<std::thread::JoinHandle<()>, AgentError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    use std::os::unix::net::UnixListener;

    if let Some(dir) = socket.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(AgentError::io("create", dir))?;
    }
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        return Err(AgentError::Protocol(format!(
            "an agent already listens on {}",
            socket.display()
        )));
    }
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).map_err(AgentError::io("bind", socket))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(AgentError::io("chmod", socket))?;
    agent.set_socket(socket.to_path_buf());
    let socket = socket.to_path_buf();
    std::thread::Builder::new()
        .name("kluis-ipc".into())
        .spawn(move || {
            // Blocking accept: no wake-ups while idle; shutdown pokes the
            // socket to end the loop.
            for stream in listener.incoming() {
                if agent.is_stopped() {
                    break;
                }
                if let Ok(stream) = stream {
                    let agent = agent.clone();
                    std::thread::spawn(move || serve_conn(&agent, stream));
                }
            }
            let _ = std::fs::remove_file(&socket);
        })
        .map_err(AgentError::io("spawn", "ipc"))
}

/// Serve requests on a named pipe until the agent stops; `endpoint` is the
/// file that tells clients the pipe's name (see the module docs). Returns
/// the listener thread.
#[cfg(windows)]
pub fn serve(
    agent: impl Service,
    endpoint: &Path,
) -> Result<std::thread::JoinHandle<()>, AgentError> {
    use tokio::net::windows::named_pipe::ServerOptions;

    if let Some(dir) = endpoint.parent() {
        std::fs::create_dir_all(dir).map_err(AgentError::io("create", dir))?;
    }
    if pipe::open(endpoint).is_ok() {
        return Err(AgentError::Protocol(format!(
            "an agent already listens on {}",
            endpoint.display()
        )));
    }
    let name = pipe::random_name();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(AgentError::io("start", "ipc"))?;
    let options = {
        let mut o = ServerOptions::new();
        o.reject_remote_clients(true);
        o
    };
    let first = {
        let _guard = rt.enter();
        options
            .clone()
            .first_pipe_instance(true)
            .create(&name)
            .map_err(AgentError::io("create pipe", &name))?
    };
    pipe::write_endpoint(endpoint, &name)?;
    agent.set_socket(endpoint.to_path_buf());
    let endpoint = endpoint.to_path_buf();
    std::thread::Builder::new()
        .name("kluis-ipc".into())
        .spawn(move || {
            rt.block_on(async {
                // Exactly one instance waits for a client at any time, so
                // the connection that shutdown makes reaches it.
                let mut server = first;
                while !agent.is_stopped() {
                    if server.connect().await.is_err() {
                        break;
                    }
                    let Ok(next) = options.create(&name) else {
                        break;
                    };
                    let conn = std::mem::replace(&mut server, next);
                    if agent.is_stopped() {
                        break;
                    }
                    tokio::spawn(serve_pipe_conn(agent.clone(), conn));
                }
            });
            // Only remove the file if it still names this agent's pipe.
            if std::fs::read_to_string(&endpoint).is_ok_and(|n| n.trim() == name) {
                let _ = std::fs::remove_file(&endpoint);
            }
        })
        .map_err(AgentError::io("spawn", "ipc"))
}

/// Neither a Unix socket nor a named pipe: no endpoint.
#[cfg(not(any(unix, windows)))]
pub fn serve(
    _agent: impl Service,
    _socket: &Path,
) -> Result<std::thread::JoinHandle<()>, AgentError> {
    Err(AgentError::Unsupported("the agent control endpoint"))
}

/// The answer line to one request line (with its newline), or `None` for a
/// blank line.
fn answer(agent: &impl Service, line: &str) -> Option<String> {
    if line.trim().is_empty() {
        return None;
    }
    let resp = match serde_json::from_str::<Request>(line) {
        Ok(req) => handle(agent, req),
        Err(e) => error_response(&AgentError::Protocol(e.to_string())),
    };
    // Serialising these plain enums cannot fail; if it ever did, the
    // client still gets an answer instead of waiting forever.
    let mut text = serde_json::to_string(&resp).unwrap_or_else(|_| {
        r#"{"response":"error","code":"internal","message":"unserialisable answer"}"#.to_owned()
    });
    text.push('\n');
    Some(text)
}

#[cfg(unix)]
fn serve_conn(agent: &impl Service, stream: std::os::unix::net::UnixStream) {
    let Ok(mut w) = stream.try_clone() else {
        return;
    };
    let r = BufReader::new(stream);
    for line in r.lines() {
        let Ok(line) = line else { return };
        if let Some(text) = answer(agent, &line)
            && w.write_all(text.as_bytes()).is_err()
        {
            return;
        }
    }
}

/// One client of the pipe. Requests can block (an unlock runs Argon2id),
/// so each is answered on the blocking pool, not on the listener's thread.
#[cfg(windows)]
async fn serve_pipe_conn(
    agent: impl Service,
    conn: tokio::net::windows::named_pipe::NamedPipeServer,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (r, mut w) = tokio::io::split(conn);
    let mut lines = tokio::io::BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let agent = agent.clone();
        let Ok(Some(text)) = tokio::task::spawn_blocking(move || answer(&agent, &line)).await
        else {
            continue;
        };
        if w.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The Windows endpoint file and pipe names.
#[cfg(windows)]
pub(crate) mod pipe {
    use std::path::Path;

    use crate::error::AgentError;

    const PREFIX: &str = r"\\.\pipe\kluis-agent-";

    /// A fresh pipe name with 128 random bits.
    pub(super) fn random_name() -> String {
        let mut b = [0u8; 16];
        // Without the OS generator nothing else in Kluis works either; a
        // zero name would still be refused if it already existed.
        let _ = getrandom::fill(&mut b);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!("{PREFIX}{hex}")
    }

    /// Write `name` into the endpoint file (temp file and rename).
    pub(super) fn write_endpoint(endpoint: &Path, name: &str) -> Result<(), AgentError> {
        let tmp = endpoint.with_extension("tmp");
        std::fs::write(&tmp, name).map_err(AgentError::io("write", &tmp))?;
        std::fs::rename(&tmp, endpoint).map_err(AgentError::io("rename", endpoint))
    }

    /// Connect to the pipe that the endpoint file names.
    pub(crate) fn open(endpoint: &Path) -> Result<std::fs::File, AgentError> {
        let not_running = || AgentError::NotRunning(endpoint.to_path_buf());
        let name = std::fs::read_to_string(endpoint).map_err(|_| not_running())?;
        let name = name.trim();
        if !name.starts_with(PREFIX) || name.len() != PREFIX.len() + 32 {
            return Err(AgentError::Protocol(format!(
                "{} does not name a Kluis agent pipe",
                endpoint.display()
            )));
        }
        // ERROR_PIPE_BUSY: every instance is taken for a moment; the agent
        // makes the next one at once.
        const PIPE_BUSY: i32 = 231;
        for _ in 0..50 {
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(name)
            {
                Ok(f) => return Ok(f),
                Err(e) if e.raw_os_error() == Some(PIPE_BUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(_) => return Err(not_running()),
            }
        }
        Err(not_running())
    }
}

#[cfg(unix)]
type Stream = std::os::unix::net::UnixStream;
#[cfg(windows)]
type Stream = std::fs::File;

/// A client of the agent's endpoint.
#[derive(Debug)]
pub struct Client {
    #[cfg(any(unix, windows))]
    stream: BufReader<Stream>,
}

impl Client {
    /// Connect to the socket.
    #[cfg(unix)]
    pub fn connect(socket: &Path) -> Result<Client, AgentError> {
        let s = std::os::unix::net::UnixStream::connect(socket)
            .map_err(|_| AgentError::NotRunning(socket.to_path_buf()))?;
        Ok(Client {
            stream: BufReader::new(s),
        })
    }

    /// Connect to the named pipe that the endpoint file names.
    #[cfg(windows)]
    pub fn connect(endpoint: &Path) -> Result<Client, AgentError> {
        Ok(Client {
            stream: BufReader::new(pipe::open(endpoint)?),
        })
    }

    /// No endpoint on this platform.
    #[cfg(not(any(unix, windows)))]
    pub fn connect(_socket: &Path) -> Result<Client, AgentError> {
        Err(AgentError::Unsupported("the agent control endpoint"))
    }

    /// Send one request and read the answer.
    #[cfg(any(unix, windows))]
    pub fn request(&mut self, req: &Request) -> Result<Response, AgentError> {
        let mut text =
            serde_json::to_string(req).map_err(|e| AgentError::Protocol(e.to_string()))?;
        text.push('\n');
        self.stream
            .get_mut()
            .write_all(text.as_bytes())
            .map_err(|e| AgentError::Protocol(e.to_string()))?;
        let mut line = String::new();
        self.stream
            .read_line(&mut line)
            .map_err(|e| AgentError::Protocol(e.to_string()))?;
        if line.is_empty() {
            return Err(AgentError::Protocol(
                "the agent closed the connection".into(),
            ));
        }
        serde_json::from_str(&line).map_err(|e| AgentError::Protocol(e.to_string()))
    }

    /// No endpoint on this platform.
    #[cfg(not(any(unix, windows)))]
    pub fn request(&mut self, _req: &Request) -> Result<Response, AgentError> {
        Err(AgentError::Unsupported("the agent control endpoint"))
    }

    /// Send a request; turn `Response::Error` into an error.
    pub fn call(&mut self, req: &Request) -> Result<Response, AgentError> {
        match self.request(req)? {
            Response::Error { code, message } => Err(AgentError::Remote { code, message }),
            r => Ok(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_tagged_json() {
        let r = Request::Resume {
            pair: None,
            allow_deletions: true,
            restore: false,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"request":"resume","pair":null,"allow_deletions":true,"restore":false}"#
        );
        // Older clients send no `restore`.
        let old: Request =
            serde_json::from_str(r#"{"request":"resume","pair":null,"allow_deletions":true}"#)
                .unwrap();
        assert_eq!(old, r);
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        let e: Request = serde_json::from_str(r#"{"request":"status"}"#).unwrap();
        assert_eq!(e, Request::Status);
    }
}
