//! Which sync engine the app talks to.
//!
//! The app runs the engine in-process (the `kluis-agent` library, the same
//! one `kluis agent` runs) and serves the agent's IPC socket, so `kluis
//! status` works against the tray. If a `kluis agent` already answers on that
//! socket, the app becomes its client instead. Either way every control goes
//! through one function, [`Engine::call`], with the agent's own
//! [`Request`]/[`Response`] protocol: the shell adds no second API.
//!
//! Two engines never run on the same folders: `Agent::start` takes an
//! exclusive lock on `.kluis-lock` in every plaintext folder and one per
//! mirror ([`kluis_agent::PairLock`]), so a second engine fails with
//! `AgentError::Locked` instead of syncing alongside the first.

use std::sync::Mutex;
use std::time::Duration;

use kluis_agent::ipc::{self, Client};
use kluis_agent::{Agent, AgentError, AgentHome, AgentOptions, Request, Response};

/// Where the engine runs.
#[derive(Debug)]
enum Mode {
    /// Our own agent (and we serve its socket).
    InProcess(Agent),
    /// Someone else's agent, reached over its socket.
    Remote,
    /// No engine: another process holds the folders but does not answer
    /// (the error says which folder).
    Unavailable(String),
}

/// The engine, shared by commands and the tray loop.
#[derive(Debug)]
pub struct Engine {
    home: AgentHome,
    opts: AgentOptions,
    mode: Mutex<Mode>,
}

/// Agent options from the environment: `KLUIS_QUIET_MS` sets how long a
/// changed file must stay unchanged before it is encrypted (default 500 ms).
pub fn options_from_env() -> AgentOptions {
    let mut opts = AgentOptions::default();
    if let Some(ms) = std::env::var("KLUIS_QUIET_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        opts.quiet = Duration::from_millis(ms.min(60_000));
    }
    opts
}

fn start_mode(home: &AgentHome, opts: &AgentOptions) -> Mode {
    let socket = home.socket_path();
    if Client::connect(&socket).is_ok() {
        return Mode::Remote;
    }
    match Agent::start(home.clone(), opts.clone(), None) {
        Ok(agent) => {
            // Unlocked earlier in this login session: the identity is in the
            // OS keyring (kluis_agent::keycache), so no password is asked.
            if let Some(id) = kluis_agent::keycache::KeyCache::for_home(home).load() {
                agent.handle().unlock_with(id);
            }
            // With a broker account on this device, folder members follow
            // the directory (as under `kluis agent`).
            if let Ok((client, account)) = kluis_client::account::device_client(home)
                && let Ok(directory) = kluis_agent::BrokerDirectory::new(client, account.email)
            {
                agent.handle().set_directory(std::sync::Arc::new(directory));
            }
            // Without the socket `kluis status` cannot see us; the app works.
            let _ = ipc::serve(agent.handle(), &socket);
            Mode::InProcess(agent)
        }
        Err(e) => Mode::Unavailable(e.to_string()),
    }
}

impl Engine {
    /// Start (or attach to) the engine for `home`.
    pub fn start(home: AgentHome, opts: AgentOptions) -> Engine {
        let mode = start_mode(&home, &opts);
        Engine {
            home,
            opts,
            mode: Mutex::new(mode),
        }
    }

    /// Where our files live.
    pub fn home(&self) -> &AgentHome {
        &self.home
    }

    /// The in-process agent (for work that needs the unlocked keys in this
    /// process, like sharing); `None` when we are a client of `kluis agent`.
    pub fn agent(&self) -> Option<kluis_agent::AgentHandle> {
        match &*self.lock() {
            Mode::InProcess(agent) => Some(agent.handle()),
            _ => None,
        }
    }

    /// Whether the engine runs in this process.
    pub fn in_process(&self) -> bool {
        matches!(*self.lock(), Mode::InProcess(_))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mode> {
        self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Send one request to the engine; an error answer becomes `Err`.
    pub fn call(&self, req: &Request) -> Result<Response, AgentError> {
        let resp = match &*self.lock() {
            Mode::InProcess(agent) => ipc::handle(&agent.handle(), req.clone()),
            Mode::Remote => Client::connect(&self.home.socket_path())?.request(req)?,
            Mode::Unavailable(why) => {
                return Err(AgentError::Remote {
                    code: "already_running".into(),
                    message: why.clone(),
                });
            }
        };
        match resp {
            Response::Error { code, message } => Err(AgentError::Remote { code, message }),
            r => Ok(r),
        }
    }

    /// Pick up a changed folder configuration: an in-process engine is
    /// stopped and started again (locked: the identity is not kept across
    /// restarts, unless the OS keyring holds it); a remote agent must be restarted by its owner.
    pub fn reload(&self) -> Result<(), AgentError> {
        let mut mode = self.lock();
        if matches!(*mode, Mode::Remote) {
            return Err(AgentError::Remote {
                code: "restart_agent".into(),
                message: "the folders changed; restart `kluis agent` to use them".into(),
            });
        }
        if let Mode::InProcess(agent) =
            std::mem::replace(&mut *mode, Mode::Unavailable("restarting".into()))
        {
            agent.handle().shutdown();
            agent.wait();
            // The old listener removes its socket once it has seen the
            // shutdown; until then a new start would take it for another
            // agent's.
            let socket = self.home.socket_path();
            let end = std::time::Instant::now() + Duration::from_secs(5);
            while socket.exists() && std::time::Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        *mode = start_mode(&self.home, &self.opts);
        if let Mode::Unavailable(why) = &*mode {
            return Err(AgentError::Remote {
                code: "already_running".into(),
                message: why.clone(),
            });
        }
        Ok(())
    }

    /// Stop an in-process engine (on quit).
    pub fn shutdown(&self) {
        if let Mode::InProcess(agent) =
            std::mem::replace(&mut *self.lock(), Mode::Unavailable("stopped".into()))
        {
            agent.handle().shutdown();
            agent.wait();
        }
    }
}
