//! One device of the user: an agent home with its plaintext folder and its
//! sync folder, the agent running as a child process (SIGKILL-able).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;

use kluis_agent::ipc::{ActivityEntry, Client, PairStatus};
use kluis_agent::{AgentHome, Config, PairState, Request, Response};

use crate::common::{GuardOpts, spawn_child_with};

pub struct Device {
    pub name: &'static str,
    pub home: AgentHome,
    pub plain: PathBuf,
    pub mirror: PathBuf,
    child: Option<Child>,
    pub starts: u32,
    pub kills: u32,
    /// The real mass-deletion guard (`fast_opts()`'s never trips).
    pub guard: Option<GuardOpts>,
}

impl Device {
    /// A device of the user whose identity's secret bytes are `secret`.
    pub fn new(root: &Path, name: &'static str, secret: &[u8]) -> Device {
        let base = root.join(name);
        let home = AgentHome::in_dir(&base.join("home"));
        let plain = base.join("Kluis");
        let mirror = base.join("Dropbox/Kluis");
        fs::create_dir_all(&plain).expect("plaintext folder");
        fs::create_dir_all(&mirror).expect("sync folder");
        let mut cfg = Config::load(&home).expect("config");
        cfg.device = Some(name.to_owned());
        cfg.add_pair(&plain, &mirror).expect("pair");
        cfg.save(&home).expect("save config");
        fs::create_dir_all(&home.data).expect("data dir");
        fs::write(home.data.join("id.secret"), secret).expect("identity");
        Device {
            name,
            home,
            plain,
            mirror,
            child: None,
            starts: 0,
            kills: 0,
            guard: None,
        }
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} already runs", self.name);
        self.child = Some(spawn_child_with(&self.home, self.guard));
        self.starts += 1;
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.kills += 1;
        }
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    fn call(&self, req: &Request) -> Option<Response> {
        self.child.as_ref()?;
        Client::connect(&self.home.socket_path())
            .ok()?
            .call(req)
            .ok()
    }

    pub fn status(&self) -> Option<PairStatus> {
        match self.call(&Request::Status)? {
            Response::Status(mut st) => Some(st.pairs.remove(0)),
            _ => None,
        }
    }

    /// Running, idle, nothing deferred, no errors.
    pub fn idle(&self) -> bool {
        self.status().is_some_and(|p| {
            p.state == PairState::Idle
                && p.deferred == 0
                && p.errors.is_empty()
                && p.last_sync.is_some()
        })
    }

    /// Ask the running agent for `req`; whether it answered `Ok`.
    pub fn request(&self, req: &Request) -> bool {
        matches!(self.call(req), Some(Response::Ok))
    }

    pub fn activity(&self) -> Vec<ActivityEntry> {
        match self.call(&Request::Activity { limit: 1000 }) {
            Some(Response::Activity { entries }) => entries,
            _ => vec![],
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.kill();
    }
}
