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
