//! Benchmark for bench/share-vs-reencrypt.sh: share a folder of N files
//! with one more person (header-only rewrite, `kluis_client::share`: written
//! in place into the header's padding, journaled) against re-encrypting the
//! same files from scratch to the same recipients (temp file, fsync,
//! rename, fsync the directory). Everything is flushed to disk before each
//! timed part. Prints both times, the time per file and the ratio.
//!
//! Usage: share_bench DIR N SIZE
#![allow(clippy::unwrap_used, reason = "benchmark driver")]

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use kluis_client::share::{self, Keys, Me, Member};
use kluis_format::{EncryptOptions, Identity, Metadata};
use kluis_sync::FolderMeta;
use kluis_sync::folder_meta::FOLDER_META_FILE;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[1]);
    let n: usize = args[2].parse().unwrap();
    let size: usize = args[3].parse().unwrap();
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let alice = Identity::generate(&mut rng);
    let bob = Identity::generate(&mut rng);
    let carol = Identity::generate(&mut rng);
    let mirror = dir.join("mirror");
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(&mirror).unwrap();

    // A mirror of n files in 100 directories, shared with Alice and Bob.
    let mut meta = FolderMeta::generate(alice.recipient(), &mut rng);
    meta.members = vec![
        Member::user("alice@example.org", alice.recipient().clone()),
        Member::user("bob@example.org", bob.recipient().clone()),
    ];
    fs::write(mirror.join(FOLDER_META_FILE), meta.seal(&mut rng).unwrap()).unwrap();
    let names = meta.name_cipher();
    let recipients = meta.recipients();
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let mut paths = Vec::with_capacity(n);
    for i in 0..n {
        let p = mirror.join(
            names
                .encrypt_path(&format!("d{:02}/file{i:05}.txt", i % 100), true)
                .unwrap(),
        );
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut out = Vec::with_capacity(size + 4096);
        let m = Metadata {
            name: Some(format!("file{i:05}.txt")),
            size: Some(size as u64),
            ..Metadata::default()
        };
        kluis_format::encrypt(
            &data[..],
            &mut out,
            &recipients,
            &m,
            EncryptOptions::default(),
            &mut rng,
        )
        .unwrap();
        fs::write(&p, out).unwrap();
        paths.push((p, m));
    }
    let mb = (n * size) as f64 / (1 << 20) as f64;
    flush_disks();
    eprintln!("{n} files of {size} bytes ({mb:.1} MiB) ready");

    // (a) Share with Carol: one stanza more per header, payload copied.
    let me = Me {
        email: "alice@example.org".into(),
        title: "bench".into(),
    };
    let t = Instant::now();
    let r = share::share_folder(
        &mirror,
        Keys::own(&alice),
        &me,
        &[Member::user("carol@example.org", carol.recipient().clone())],
        None,
        &mut |_| {},
        &mut rng,
    )
    .unwrap();
    let share_s = t.elapsed().as_secs_f64();
    assert_eq!(r.files_updated, n);
    flush_disks();

    // (b) Re-encrypt the same plaintexts from scratch to all three.
    let all = vec![
        alice.recipient().clone(),
        bob.recipient().clone(),
        carol.recipient().clone(),
    ];
    let t = Instant::now();
    for (p, m) in &paths {
        let tmp = p.with_extension("reenc-tmp");
        let mut f = std::io::BufWriter::new(fs::File::create(&tmp).unwrap());
        kluis_format::encrypt(
            &data[..],
            &mut f,
            &all,
            m,
            EncryptOptions::default(),
            &mut rng,
        )
        .unwrap();
        let f = f.into_inner().unwrap();
        f.sync_all().unwrap();
        fs::rename(&tmp, p).unwrap();
        kluis_sync::exec::fsync_dir(p.parent().unwrap()).unwrap();
    }
    let reenc_s = t.elapsed().as_secs_f64();
    let _ = std::io::stdout().flush();
    println!(
        "files={n} size={size} share_header_only_s={share_s:.2} reencrypt_s={reenc_s:.2} ratio={:.2} share_ms_per_file={:.3} reencrypt_ms_per_file={:.3}",
        reenc_s / share_s,
        share_s * 1000.0 / n as f64,
        reenc_s * 1000.0 / n as f64,
    );
}

/// Start each timed part with nothing dirty in the page cache, so that one
/// part's fsyncs do not pay for the previous part's writes.
fn flush_disks() {
    let _ = std::process::Command::new("sync").status();
}
