//! A download that would not fit on the plaintext's disk is refused before
//! a byte of it is written (issue 17, point 7), on a real small file
//! system: a tmpfs of 8 MiB mounted for the test (root only; CI runs as
//! root, elsewhere the test says it is skipped).

mod util;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use kluis_format::Identity;
use kluis_sync::exec::space::{FreeSpace, System};
use kluis_sync::{Engine, EngineConfig, ItemErrorKind};
use rand_core::Rng;
use util::*;

/// A tmpfs mounted on a temp directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here (needs root, as in CI); the free-space check is not tested on a real disk"
            );
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {size}");
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng().fill_bytes(&mut v);
    v
}

#[test]
fn a_download_that_would_not_fit_is_refused_before_a_byte_is_written() {
    let Some(disk) = Tmpfs::mount("8m") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let id = Arc::new(Identity::generate(&mut rng()));
    let mut a = Device::new(root.path(), "a", id.clone());
    // Device b's plaintext folder is on the small disk; its mirror and
    // index are not.
    let plain: PathBuf = disk.path().join("Kluis");
    fs::create_dir(&plain).unwrap();
    let mirror = root.path().join("b-mirror");
    fs::create_dir(&mirror).unwrap();
    let mut cfg = EngineConfig::new(
        plain.clone(),
        mirror.clone(),
        root.path().join("b-index.db"),
        "b".into(),
    );
    cfg.quiet = Duration::from_millis(200);
    let mut b = Engine::open(cfg).unwrap();
    // Quiet periods over (the files were written long "before").
    let clock = TestClock {
        offset_ns: 3_600_000_000_000,
    };
    let mut b_sync = || b.reconcile(&id, &clock, &mut rng()).unwrap();

    let big = random(20 << 20);
    let small = random(1 << 20);
    a.write("big.bin", &big);
    a.write("small.bin", &small);
    a.sync();
    let mut cloud = Replicator::new(&a.mirror, &mirror);
    cloud.run();

    let before = System.free(&plain).unwrap().unwrap();
    let rep = b_sync();
    let refused: Vec<_> = rep
        .errors
        .iter()
        .filter(|e| e.kind == ItemErrorKind::NoSpace)
        .collect();
    assert_eq!(refused.len(), 1, "{:?}", rep.errors);
    assert_eq!(refused[0].path, "big.bin");
    let text = &refused[0].detail;
    assert!(
        text.starts_with(&format!(
            "not enough space on {}: need ",
            disk.path().display()
        )) && text.contains("(20.0 MiB for the file, 819 KiB kept free for your own files)"),
        "{text}"
    );
    // The small file fits and arrives; of the big one, not a byte: no
    // temp file, and the disk's free space went down by the small file only.
    assert_eq!(fs::read(plain.join("small.bin")).unwrap(), small);
    let on_disk: Vec<_> = tree_all(&plain).into_keys().collect();
    assert_eq!(on_disk, ["small.bin"], "nothing else on the small disk");
    let after = System.free(&plain).unwrap().unwrap();
    assert!(
        before.available - after.available <= 1 << 20,
        "{before:?} -> {after:?}"
    );
    // Asked again, it is refused again, still without writing.
    let rep = b_sync();
    assert!(rep.errors.iter().all(|e| e.kind == ItemErrorKind::NoSpace));
    assert_eq!(System.free(&plain).unwrap().unwrap(), after);

    // Once there is room, it arrives.
    disk.resize("64m");
    let rep = b_sync();
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(fs::read(plain.join("big.bin")).unwrap(), big);
}
