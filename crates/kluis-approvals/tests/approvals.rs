//! The threshold rule as the broker and the admin machine see it.

use kluis_approvals::{
    AdminPublicKey, AdminSigningKey, Approval, ApprovalError, KeyFingerprint, RecoveryRequest,
    verify_approvals,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Org {
    keys: Vec<AdminSigningKey>,
    admins: Vec<AdminPublicKey>,
}

fn org(n: usize) -> Org {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let keys: Vec<_> = (0..n)
        .map(|_| AdminSigningKey::generate(&mut rng))
        .collect();
    let admins = keys.iter().map(AdminSigningKey::public_key).collect();
    Org { keys, admins }
}

fn request() -> RecoveryRequest {
    RecoveryRequest {
        request_id: "rr_01HZX".into(),
        user: "alice@gemeente.example".into(),
        request_key_fingerprint: KeyFingerprint([0xab; 32]),
        requested_at: 1_700_000_000,
    }
}

fn approve(org: &Org, who: usize, at: i64) -> Approval {
    Approval::sign(&request(), 1_700_000_000 + at, &org.keys[who]).expect("valid request")
}

#[test]
fn k_distinct_approvals_pass() {
    let org = org(5);
    let approvals = [
        approve(&org, 0, 10),
        approve(&org, 3, 20),
        approve(&org, 4, 5),
    ];
    let ok = verify_approvals(3, &request(), &approvals, &org.admins).expect("3 of 5");
    assert_eq!(ok.approvers.len(), 3);
    assert_eq!(ok.completed_at, 1_700_000_020);
    assert_eq!(ok.approvers[1].0, org.admins[3]);
}

#[test]
fn k_minus_one_approvals_do_nothing() {
    let org = org(5);
    let approvals = [approve(&org, 0, 10), approve(&org, 1, 20)];
    assert_eq!(
        verify_approvals(3, &request(), &approvals, &org.admins),
        Err(ApprovalError::NotEnoughApprovals { have: 2, need: 3 })
    );
}

#[test]
fn double_approval_is_detected_and_named() {
    let org = org(5);
    let approvals = [
        approve(&org, 0, 10),
        approve(&org, 2, 20),
        approve(&org, 0, 30),
    ];
    let err =
        verify_approvals(3, &request(), &approvals, &org.admins).expect_err("double approval");
    assert_eq!(
        err,
        ApprovalError::DoubleApproval {
            admin: org.admins[0],
            first: 0,
            second: 2
        }
    );
    assert!(err.to_string().contains(&org.admins[0].to_string()));
}

#[test]
fn approval_by_a_non_admin_is_refused() {
    let org = org(3);
    let outsider = AdminSigningKey::generate(&mut ChaCha20Rng::seed_from_u64(7));
    let forged = Approval::sign(&request(), 1_700_000_001, &outsider).expect("valid");
    let approvals = [approve(&org, 0, 1), forged];
    assert_eq!(
        verify_approvals(2, &request(), &approvals, &org.admins),
        Err(ApprovalError::UnknownAdmin {
            index: 1,
            admin: outsider.public_key()
        })
    );
}

#[test]
fn forged_signature_is_named() {
    let org = org(3);
    let mut a = approve(&org, 1, 1);
    a.signature.0[10] ^= 1;
    let approvals = [approve(&org, 0, 1), a];
    assert_eq!(
        verify_approvals(2, &request(), &approvals, &org.admins),
        Err(ApprovalError::BadSignature {
            index: 1,
            admin: org.admins[1]
        })
    );
}

#[test]
fn re_attributing_a_signature_to_another_admin_fails() {
    let org = org(3);
    let mut a = approve(&org, 1, 1);
    a.statement.admin = org.admins[2];
    assert!(matches!(
        verify_approvals(1, &request(), &[a], &org.admins),
        Err(ApprovalError::BadSignature { index: 0, .. })
    ));
}

#[test]
fn approval_for_another_request_key_is_refused() {
    let org = org(3);
    let mut other = request();
    other.request_key_fingerprint = KeyFingerprint([0xcd; 32]);
    let misdirected = Approval::sign(&other, 1_700_000_005, &org.keys[1]).expect("valid");
    let approvals = [approve(&org, 0, 1), misdirected];
    assert_eq!(
        verify_approvals(2, &request(), &approvals, &org.admins),
        Err(ApprovalError::WrongRequest {
            index: 1,
            admin: org.admins[1],
            field: "request key fingerprint"
        })
    );
    let mut other_user = request();
    other_user.user = "mallory@gemeente.example".into();
    let a = Approval::sign(&other_user, 1_700_000_005, &org.keys[1]).expect("valid");
    assert!(matches!(
        verify_approvals(1, &request(), &[a], &org.admins),
        Err(ApprovalError::WrongRequest { field: "user", .. })
    ));
}

#[test]
fn approval_predating_the_request_is_refused() {
    let org = org(2);
    let early = Approval::sign(&request(), 1_600_000_000, &org.keys[0]).expect("valid");
    assert!(matches!(
        verify_approvals(1, &request(), &[early], &org.admins),
        Err(ApprovalError::ApprovedBeforeRequest { index: 0, .. })
    ));
}

// ---------------------------------------------------------------------------
// Frozen vector: one approval as this version signs it. If it stops
// verifying, the statement encoding (RECOVERY.md §4) changed incompatibly.

fn vector_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/approval-v1.json")
}

fn vector_approval() -> Approval {
    let key = AdminSigningKey::from_seed(&[0x11; 32]);
    Approval::sign(&request(), 1_700_000_123, &key).expect("valid")
}

#[test]
#[ignore = "writes tests/vectors; run by hand after an intended format change"]
fn regenerate_vectors() {
    let a = vector_approval();
    let doc = serde_json::json!({
        "request": request(),
        "approval": a,
        "message_hex": hex_encode(&a.statement.message()),
    });
    std::fs::create_dir_all(vector_path().parent().expect("dir")).expect("mkdir");
    let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
    std::fs::write(vector_path(), text).expect("write");
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn frozen_vector_still_verifies() {
    let text = std::fs::read_to_string(vector_path())
        .unwrap_or_else(|e| panic!("{}: {e}", vector_path().display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let request: RecoveryRequest = serde_json::from_value(doc["request"].clone()).expect("request");
    let approval: Approval = serde_json::from_value(doc["approval"].clone()).expect("approval");
    assert_eq!(
        hex_encode(&approval.statement.message()),
        doc["message_hex"]
    );
    let admins = [AdminSigningKey::from_seed(&[0x11; 32]).public_key()];
    verify_approvals(1, &request, std::slice::from_ref(&approval), &admins).expect("verifies");
    // Ed25519 is deterministic: today's signer reproduces it byte for byte.
    assert_eq!(approval, vector_approval());
}
