//! The audit log as the broker will use it: build rows from the head,
//! checkpoint them with the org key, export, and catch every kind of
//! tampering by name.

use kluis_audit::{
    Action, Actor, AuditChain, AuditEntry, AuditError, AuditRow, DetailKey, Details, Head,
    SignedCheckpoint, Tamper, chain_hash, export_csv, export_jsonl, import_csv, import_jsonl,
    next_row, verify,
};

const T0: i64 = 1_700_000_000;

fn org_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
}

fn org_pub() -> [u8; 32] {
    org_key().verifying_key().to_bytes()
}

fn admin() -> Actor {
    Actor::admin("it-beheer@gemeente.example").expect("valid")
}

fn user(u: &str) -> Actor {
    Actor::user(u).expect("valid")
}

/// A day in the life of the broker: 12 rows with two checkpoints.
fn sample_log() -> Vec<AuditRow> {
    let mut chain = AuditChain::new();
    let mut rows = Vec::new();
    let mut add = |chain: &mut AuditChain, e: AuditEntry| rows.push(chain.append(e).expect("row"));
    let d = Details::new;
    add(
        &mut chain,
        AuditEntry::new(T0, admin(), Action::RecoveryInitialised).details(
            d().int(DetailKey::Threshold, 3)
                .and_then(|d| d.int(DetailKey::Shares, 5))
                .expect("d"),
        ),
    );
    add(
        &mut chain,
        AuditEntry::new(
            T0 + 10,
            user("alice@gemeente.example"),
            Action::UserRegistered,
        ),
    );
    add(
        &mut chain,
        AuditEntry::new(T0 + 11, admin(), Action::KeyCertified)
            .target("alice@gemeente.example")
            .details(
                d().text(
                    DetailKey::Fingerprint,
                    "4F2A 9C1B 77D0 1E3A 0B9C 22F1 5D6E 8A90",
                )
                .expect("d"),
            ),
    );
    add(
        &mut chain,
        AuditEntry::new(
            T0 + 12,
            user("alice@gemeente.example"),
            Action::RecoveryEscrowStored,
        ),
    );
    let cp1 = chain.checkpoint(T0 + 20, &org_key()).expect("checkpoint");
    rows.push(cp1);
    let mut add = |chain: &mut AuditChain, e: AuditEntry| rows.push(chain.append(e).expect("row"));
    add(
        &mut chain,
        AuditEntry::new(T0 + 30, Actor::System, Action::LoginFailuresExceeded)
            .target("alice@gemeente.example")
            .details(
                d().int(DetailKey::Count, 10)
                    .and_then(|d| d.text(DetailKey::Ip, "192.0.2.7"))
                    .expect("d"),
            ),
    );
    add(
        &mut chain,
        AuditEntry::new(
            T0 + 40,
            user("alice@gemeente.example"),
            Action::RecoveryRequested,
        )
        .details(d().text(DetailKey::RequestId, "rr-0001").expect("d")),
    );
    for (n, who) in [
        "anna@gemeente.example",
        "bram@gemeente.example",
        "cor@gemeente.example",
    ]
    .iter()
    .enumerate()
    {
        add(
            &mut chain,
            AuditEntry::new(
                T0 + 50 + n as i64,
                Actor::admin(who).expect("valid"),
                Action::RecoveryApproved,
            )
            .target("alice@gemeente.example")
            .details(
                d().text(DetailKey::RequestId, "rr-0001")
                    .and_then(|d| d.int(DetailKey::Count, n as i64 + 1))
                    .expect("d"),
            ),
        );
    }
    add(
        &mut chain,
        AuditEntry::new(T0 + 60, admin(), Action::PolicyChanged).details(
            d().text(DetailKey::Policy, "recovery_enrolment")
                .and_then(|d| d.text(DetailKey::Old, "optional"))
                .and_then(|d| d.text(DetailKey::New, "mandatory"))
                .expect("d"),
        ),
    );
    add(
        &mut chain,
        AuditEntry::new(T0 + 70, admin(), Action::UserDisabled).target("bob@gemeente.example"),
    );
    let cp2 = chain.checkpoint(T0 + 80, &org_key()).expect("checkpoint");
    rows.push(cp2);
    rows
}

/// Recomputes every hash from `from` (1-based) on, as an attacker with
/// database access but without the org key would after editing a row.
fn rechain(rows: &mut [AuditRow], from: usize) {
    for i in from - 1..rows.len() {
        if i > 0 {
            rows[i].prev_hash = rows[i - 1].hash;
        }
        rows[i].hash = chain_hash(&rows[i].prev_hash, rows[i].seq, &rows[i].entry);
    }
}

fn tamper(rows: &[AuditRow]) -> Tamper {
    match verify(rows, &org_pub()) {
        Err(AuditError::Tampered(t)) => t,
        other => panic!("expected tampering to be detected, got {other:?}"),
    }
}

#[test]
fn clean_log_verifies() {
    let rows = sample_log();
    let report = verify(&rows, &org_pub()).expect("clean");
    assert_eq!(report.rows, 13);
    assert_eq!(report.checkpoints, 2);
    assert_eq!(report.last_checkpointed_seq, Some(12));
    assert_eq!(report.unsigned_tail, 1);
    assert_eq!(report.head, Head::of(&rows[12]));
}

#[test]
fn edited_row_is_named() {
    let mut rows = sample_log();
    rows[2].entry.target = "mallory@gemeente.example".into();
    let t = tamper(&rows);
    assert_eq!(t, Tamper::Edited { seq: 3 });
    assert_eq!(
        t.to_string(),
        "row 3 was edited: its contents do not match its hash"
    );
}

#[test]
fn edited_and_rehashed_row_is_named() {
    let mut rows = sample_log();
    rows[6].entry.time += 1;
    rows[6].hash = chain_hash(&rows[6].prev_hash, 7, &rows[6].entry);
    assert_eq!(tamper(&rows), Tamper::Rehashed { seq: 7, next: 8 });
}

#[test]
fn deleted_row_is_named() {
    let mut rows = sample_log();
    rows.remove(7);
    assert_eq!(tamper(&rows), Tamper::Deleted { seq: 8 });
    let mut rows = sample_log();
    rows.remove(0);
    assert_eq!(tamper(&rows), Tamper::Deleted { seq: 1 });
}

#[test]
fn deleted_and_renumbered_rows_are_caught() {
    // Deleting row 8 and renumbering the rest breaks row 8's (formerly 9's)
    // hash, since seq is part of what is hashed.
    let mut rows = sample_log();
    rows.remove(7);
    for r in rows.iter_mut().skip(7) {
        r.seq -= 1;
    }
    assert_eq!(tamper(&rows), Tamper::Edited { seq: 8 });
}

#[test]
fn reordered_rows_are_named() {
    let mut rows = sample_log();
    rows.swap(5, 6);
    assert_eq!(
        tamper(&rows),
        Tamper::Reordered {
            seq: 6,
            position: 6
        }
    );
    let mut rows = sample_log();
    let moved = rows.remove(1);
    rows.push(moved);
    assert_eq!(
        tamper(&rows),
        Tamper::Reordered {
            seq: 2,
            position: 12
        }
    );
}

#[test]
fn duplicated_row_is_named() {
    let mut rows = sample_log();
    let copy = rows[3].clone();
    rows.insert(4, copy);
    assert_eq!(tamper(&rows), Tamper::Duplicated { seq: 4 });
}

#[test]
fn backdated_row_is_named() {
    let mut rows = sample_log();
    rows[9].entry.time = T0;
    rechain(&mut rows, 10);
    assert_eq!(tamper(&rows), Tamper::TimeWentBackwards { seq: 10 });
}

#[test]
fn forged_checkpoint_is_named() {
    let mut rows = sample_log();
    // An attacker appends a checkpoint signed with their own key.
    let mallory = ed25519_dalek::SigningKey::from_bytes(&[66u8; 32]);
    let mut chain = AuditChain::resume(Head::of(&rows[12]));
    rows.push(chain.checkpoint(T0 + 90, &mallory).expect("row"));
    assert_eq!(tamper(&rows), Tamper::ForgedCheckpoint { seq: 14 });
    // Or alters the time inside a genuine one and re-hashes the tail.
    let mut rows = sample_log();
    let mut cp = SignedCheckpoint::from_details(&rows[4].entry.details).expect("checkpoint");
    cp.signed_at += 1;
    let mut chain = AuditChain::resume(Head::of(&rows[3]));
    rows[4] = chain
        .append_checkpoint(rows[4].entry.time, Actor::System, &cp)
        .expect("row");
    rechain(&mut rows, 6);
    assert_eq!(tamper(&rows), Tamper::ForgedCheckpoint { seq: 5 });
}

#[test]
fn rewritten_history_is_caught_by_the_next_checkpoint() {
    // Edit row 7 and recompute every later hash: the chain is consistent
    // again, but checkpoint row 13 signed the old hash of row 12.
    let mut rows = sample_log();
    rows[6].entry.target = "someone-else".into();
    rechain(&mut rows, 7);
    let t = tamper(&rows);
    assert_eq!(
        t,
        Tamper::HistoryRewritten {
            checkpoint_seq: 13,
            covers_seq: 12,
            since: 5
        }
    );
    assert_eq!(
        t.to_string(),
        "rows 5..=12 were rewritten: checkpoint row 13 signed a different history"
    );
}

#[test]
fn jsonl_round_trip() {
    let rows = sample_log();
    let mut out = Vec::new();
    export_jsonl(&rows, &mut out).expect("export");
    let text = String::from_utf8(out.clone()).expect("utf-8");
    assert_eq!(text.lines().count(), 13);
    assert!(
        text.lines()
            .nth(1)
            .expect("line")
            .contains(r#""action":"user.registered""#)
    );
    assert!(text.contains(r#""time_utc":"2023-11-14T22:13:20Z""#));
    let back = import_jsonl(&out[..]).expect("import");
    assert_eq!(back, rows);
    verify(&back, &org_pub()).expect("verifies");
}

#[test]
fn csv_round_trip() {
    let rows = sample_log();
    let mut out = Vec::new();
    export_csv(&rows, &mut out).expect("export");
    let text = String::from_utf8(out.clone()).expect("utf-8");
    assert!(text.starts_with("seq,time,time_utc,actor,action,target,details,prev_hash,hash\n"));
    assert_eq!(text.lines().count(), 14);
    let back = import_csv(&out[..]).expect("import");
    assert_eq!(back, rows);
    verify(&back, &org_pub()).expect("verifies");
}

#[test]
fn an_edited_export_is_named() {
    let rows = sample_log();
    let mut out = Vec::new();
    export_jsonl(&rows, &mut out).expect("export");
    let text = String::from_utf8(out)
        .expect("utf-8")
        .replace("bob@gemeente.example", "rob@gemeente.example");
    let back = import_jsonl(text.as_bytes()).expect("still parses");
    assert_eq!(tamper(&back), Tamper::Edited { seq: 12 });
}

#[test]
fn next_row_builds_on_a_stored_head() {
    let rows = sample_log();
    let head = Head::of(rows.last().expect("rows"));
    let row = next_row(
        &head,
        AuditEntry::new(T0 + 100, admin(), Action::UserEnabled).target("bob@gemeente.example"),
    )
    .expect("row");
    assert_eq!(row.seq, 14);
    let mut all = rows;
    all.push(row);
    let report = verify(&all, &org_pub()).expect("verifies");
    assert_eq!(report.unsigned_tail, 2);
}

#[test]
fn secrets_and_free_form_keys_are_refused() {
    assert!(matches!(
        Details::new().text(DetailKey::Reason, "AGE-SECRET-KEY-1QQQQ"),
        Err(AuditError::SecretLike { key: "reason" })
    ));
    assert!(DetailKey::from_code("password").is_err());
    let mut chain = AuditChain::new();
    let forged_details = Details::new().int(DetailKey::Count, 1).expect("d");
    assert!(
        chain
            .append(AuditEntry::new(T0, admin(), Action::Checkpoint).details(forged_details))
            .is_err()
    );
}

// ---------------------------------------------------------------------------
// Frozen vector: the sample log as this version exported it. If the stored
// hashes stop verifying, the canonical encoding or the chain rule
// (RECOVERY.md §6.1) changed incompatibly.

fn vector_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/audit-v1.jsonl")
}

#[test]
#[ignore = "writes tests/vectors; run by hand after an intended format change"]
fn regenerate_vectors() {
    let mut out = Vec::new();
    export_jsonl(&sample_log(), &mut out).expect("export");
    std::fs::create_dir_all(vector_path().parent().expect("dir")).expect("mkdir");
    std::fs::write(vector_path(), out).expect("write");
}

#[test]
fn frozen_vector_still_verifies() {
    let bytes =
        std::fs::read(vector_path()).unwrap_or_else(|e| panic!("{}: {e}", vector_path().display()));
    let rows = import_jsonl(&bytes[..]).expect("imports");
    let report = verify(&rows, &org_pub()).expect("verifies");
    assert_eq!(report.rows, 13);
    assert_eq!(
        rows,
        sample_log(),
        "today's encoder reproduces the frozen hashes"
    );
}

#[test]
fn importer_never_panics_on_mutated_lines() {
    let mut out = Vec::new();
    export_jsonl(&sample_log()[..5], &mut out).expect("export");
    for at in 0..out.len() {
        let mut m = out.clone();
        m[at] = m[at].wrapping_add(1);
        if let Ok(rows) = import_jsonl(&m[..]) {
            let _ = verify(&rows, &org_pub());
        }
    }
}
