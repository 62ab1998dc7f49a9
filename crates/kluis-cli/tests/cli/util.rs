use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An isolated user: its own KLUIS_HOME and a passphrase file.
pub struct User {
    pub dir: tempfile::TempDir,
}

impl User {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pass"), "a long and careful passphrase\n").expect("pass");
        User { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kluis"));
        // Tests leave nothing in the OS keyring unless they test it.
        c.env("KLUIS_HOME", self.path("home"))
            .env("KLUIS_NO_KEYRING", "1")
            .env_remove("KLUIS_PASSPHRASE")
            .env_remove("KLUIS_PASSPHRASE_FILE")
            .arg("--passphrase-file")
            .arg(self.path("pass"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    /// Create the default identity; returns the recipient string.
    pub fn keygen(&self) -> String {
        let out = run_ok(self.cmd().arg("keygen"));
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned()
    }
}

fn describe(cmd: &Command, out: &Output, dir: Option<&Path>) -> String {
    let listing = dir
        .and_then(|d| std::fs::read_dir(d).ok())
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    format!(
        "command: {cmd:?}\nstatus: {}\ndirectory: {listing}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn kluis");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "kluis panicked\n{}",
        describe(cmd, &out, cmd.get_current_dir())
    );
    out
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "expected success\n{}",
        describe(cmd, &out, cmd.get_current_dir())
    );
    out
}

/// Expect exit code 1 and a single-line error containing `needle`.
pub fn run_fail(cmd: &mut Command, needle: &str) -> Output {
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let ok = out.status.code() == Some(1)
        && stderr.contains(needle)
        && stderr.trim().lines().count() == 1;
    assert!(
        ok,
        "expected exit 1 with one line containing {needle:?}\n{}",
        describe(cmd, &out, cmd.get_current_dir())
    );
    out
}
