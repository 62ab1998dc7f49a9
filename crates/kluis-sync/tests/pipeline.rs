//! The first sync of a large folder that exists before the engine starts
//! (issue 17, point 2): the pipeline of new-file batches (encryption,
//! syncfs, renames, index) has bounded queues between its threads, and must
//! never wait on itself.

mod util;

use std::sync::{Arc, mpsc};
use std::time::Duration;

use util::*;

/// Many more chunks of 1,024 files than the pipeline lets wait to be
/// recorded (six), with fsync on so that the syncfs(2) path runs.
const FILES: usize = 24_000;

#[test]
fn a_first_sync_of_a_large_existing_tree_runs_to_idle() {
    let t = tempfile::tempdir().unwrap();
    let id = Arc::new(kluis_format::Identity::generate(&mut rng()));
    let mut a = Device::new_durable(t.path(), "laptop", id);
    // 240 directories of 100 small files, there before the first sync.
    for i in 0..FILES {
        a.write(
            &format!("dir{:03}/f{i}.txt", i / 100),
            format!("{i}").as_bytes(),
        );
    }
    let (done_tx, done) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        a.sync();
        let encrypted = a.activity("encrypted").len();
        let again = a.sync().activity.len();
        let _ = done_tx.send((encrypted, again));
    });
    // A deadline, not a timing assertion: a pipeline that waits on itself
    // never ends; a slow machine ends well within it.
    let (encrypted, again) = done
        .recv_timeout(Duration::from_secs(900))
        .expect("the first sync stopped making progress (a pipeline waiting on itself)");
    worker.join().unwrap();
    assert_eq!(encrypted, FILES);
    assert_eq!(again, 0, "nothing left to do after the first sync");
}
