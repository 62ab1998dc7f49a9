//! Organisation recovery end to end, as the user's client and the admin
//! machine will drive it: K of N shares, signed approvals, escrow, re-seal
//! to a one-time request key, and decryption of a file the user encrypted
//! before losing their password.

use std::io::Read as _;
use std::sync::OnceLock;

use kluis_format::{
    Decryptor, EncryptOptions, Identity, KdfParams, Metadata, encrypt, open_identity, seal_identity,
};
use kluis_recovery::kluis_approvals::{AdminSigningKey, Approval, ApprovalError, RecoveryRequest};
use kluis_recovery::{
    ApprovalPolicy, RecoveryCase, RecoveryError, RecoverySetup, RequestKey, ShareFile, ShareHolder,
    combine, combine_files, fingerprint_of, init, open_recovered, reseal_for_request,
    seal_for_recovery,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NAMES: [&str; 5] = ["Anna", "Bram", "Cor", "Daan", "Eva"];
const PASSWORDS: [&[u8]; 5] = [b"anna-42", b"bram-42", b"cor-42", b"daan-42", b"eva-42"];
const K: u8 = 3;

/// One 3-of-5 setup shared by every test (each `init` costs five Argon2id
/// runs at 64 MiB).
fn setup() -> &'static RecoverySetup {
    static SETUP: OnceLock<RecoverySetup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let holders: Vec<ShareHolder<'_>> = NAMES
            .iter()
            .zip(PASSWORDS)
            .map(|(name, password)| ShareHolder { name, password })
            .collect();
        init(K, &holders, &mut ChaCha20Rng::seed_from_u64(1)).expect("init 3 of 5")
    })
}

fn file(i: usize) -> &'static [u8] {
    &setup().share_files[i]
}

/// Admin signing keys, one per share holder (independent of the shares).
fn admins() -> Vec<AdminSigningKey> {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    NAMES
        .iter()
        .map(|_| AdminSigningKey::generate(&mut rng))
        .collect()
}

fn policy(keys: &[AdminSigningKey]) -> ApprovalPolicy {
    ApprovalPolicy {
        threshold: usize::from(K),
        admins: keys.iter().map(|k| k.public_key()).collect(),
    }
}

fn request_for(key: &RequestKey) -> RecoveryRequest {
    RecoveryRequest {
        request_id: "rr-0001".into(),
        user: "alice@gemeente.example".into(),
        request_key_fingerprint: key.fingerprint(),
        requested_at: 1_700_000_000,
    }
}

fn approvals(request: &RecoveryRequest, keys: &[AdminSigningKey], who: &[usize]) -> Vec<Approval> {
    who.iter()
        .enumerate()
        .map(|(n, &i)| {
            Approval::sign(
                request,
                request.requested_at + 60 * (n as i64 + 1),
                &keys[i],
            )
            .expect("valid request")
        })
        .collect()
}

#[test]
fn share_files_carry_their_public_header() {
    let info = ShareFile::parse(file(3)).expect("parses").info().clone();
    assert_eq!((info.index, info.threshold, info.shares), (4, 3, 5));
    assert_eq!(info.holder, "Daan");
    assert_eq!(
        &info.recovery_fingerprint,
        setup().recipient.fingerprint().as_bytes()
    );
    assert_eq!(info.kdf, KdfParams::DEFAULT);
}

#[test]
fn any_k_shares_rebuild_the_key() {
    let key = combine_files(&[
        (file(4), PASSWORDS[4]),
        (file(0), PASSWORDS[0]),
        (file(2), PASSWORDS[2]),
    ])
    .expect("3 of 5");
    assert_eq!(key.recipient(), &setup().recipient);
}

#[test]
fn k_minus_one_shares_fail_clearly() {
    let err = combine_files(&[(file(1), PASSWORDS[1]), (file(3), PASSWORDS[3])])
        .expect_err("2 of 3 is not enough");
    assert!(
        matches!(err, RecoveryError::NotEnoughShares { have: 2, need: 3 }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "2 share(s) given; 3 are needed to rebuild the recovery key"
    );
}

#[test]
fn duplicate_shares_are_rejected() {
    let a = ShareFile::parse(file(1))
        .and_then(|f| f.open(PASSWORDS[1]))
        .expect("opens");
    let b = ShareFile::parse(file(1))
        .and_then(|f| f.open(PASSWORDS[1]))
        .expect("opens");
    let c = ShareFile::parse(file(2))
        .and_then(|f| f.open(PASSWORDS[2]))
        .expect("opens");
    let err = combine(&[a, c, b]).expect_err("duplicate");
    assert!(
        matches!(err, RecoveryError::DuplicateShare { index: 2 }),
        "{err}"
    );
}

#[test]
fn wrong_admin_password_names_the_share() {
    let err = combine_files(&[
        (file(0), PASSWORDS[0]),
        (file(1), b"bram-43"),
        (file(2), PASSWORDS[2]),
    ])
    .expect_err("wrong password");
    match &err {
        RecoveryError::ShareUnreadable { index, holder } => {
            assert_eq!((*index, holder.as_str()), (2, "Bram"));
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("share 2 (Bram)"));
}

#[test]
fn tampered_share_file_is_named() {
    // Someone without Cor's password alters the sealed value in Cor's file.
    let mut altered = file(2).to_vec();
    let last = altered.len() - 30;
    altered[last] ^= 0x01;
    let err = combine_files(&[
        (file(0), PASSWORDS[0]),
        (&altered, PASSWORDS[2]),
        (file(4), PASSWORDS[4]),
    ])
    .expect_err("tampered");
    assert!(
        matches!(&err, RecoveryError::ShareUnreadable { index: 3, holder } if holder == "Cor"),
        "{err}"
    );
    // Rewriting the header to pose as another share also fails to open.
    let mut posing = file(2).to_vec();
    posing[22] = 5;
    let err = combine_files(&[
        (file(0), PASSWORDS[0]),
        (&posing, PASSWORDS[2]),
        (file(1), PASSWORDS[1]),
    ])
    .expect_err("tampered header");
    assert!(
        matches!(&err, RecoveryError::ShareUnreadable { index: 5, .. }),
        "{err}"
    );
}

#[test]
fn share_from_another_setup_is_named() {
    let other = init(
        2,
        &[
            ShareHolder {
                name: "Zoe",
                password: b"z",
            },
            ShareHolder {
                name: "Yara",
                password: b"y",
            },
        ],
        &mut ChaCha20Rng::seed_from_u64(99),
    )
    .expect("init");
    let err = combine_files(&[
        (file(0), PASSWORDS[0]),
        (file(1), PASSWORDS[1]),
        (&other.share_files[0], b"z"),
    ])
    .expect_err("mixed");
    assert!(
        matches!(&err, RecoveryError::MixedShareSets { index: 1, holder } if holder == "Zoe"),
        "{err}"
    );
}

#[test]
fn a_changed_share_password_still_combines() {
    let opened = ShareFile::parse(file(3))
        .and_then(|f| f.open(PASSWORDS[3]))
        .expect("opens");
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let resealed = opened
        .reseal("Daan", b"new daan pw", KdfParams::DEFAULT, &mut rng)
        .expect("reseals");
    let key = combine_files(&[
        (&resealed, b"new daan pw"),
        (file(0), PASSWORDS[0]),
        (file(1), PASSWORDS[1]),
    ])
    .expect("combines");
    assert_eq!(key.recipient(), &setup().recipient);
}

/// The story of the issue: Alice encrypts a file, forgets her password,
/// asks for recovery, three of five admins approve and combine their
/// shares, and Alice decrypts her old file with the recovered identity.
#[test]
fn full_recovery_then_decrypt_an_old_file() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let user = "alice@gemeente.example";

    // Enrolment: password-sealed identity and the escrow copy.
    let alice = Identity::generate(&mut rng);
    let _identity_file =
        seal_identity(&alice, b"forgotten", KdfParams::DEFAULT, &mut rng).expect("seal");
    let escrow = seal_for_recovery(&alice, &setup().recipient, user, &mut rng).expect("escrow");
    let mut old_file = Vec::new();
    let secret_text = b"Besluit 2024-117: concept, vertrouwelijk".repeat(1000);
    encrypt(
        &secret_text[..],
        &mut old_file,
        &[alice.recipient().clone()],
        &Metadata::default(),
        EncryptOptions::default(),
        &mut rng,
    )
    .expect("encrypt");
    let user_key = alice.recipient().clone();
    drop(alice);

    // New device: a one-time request key; its fingerprint is read out.
    let request_key = RequestKey::generate(&mut rng);
    let request = request_for(&request_key);
    assert_eq!(
        request.request_key_fingerprint,
        fingerprint_of(request_key.recipient())
    );

    // Three admins approve; the admin machine combines three shares.
    let keys = admins();
    let signed = approvals(&request, &keys, &[1, 3, 4]);
    let recovery = combine_files(&[
        (file(1), PASSWORDS[1]),
        (file(3), PASSWORDS[3]),
        (file(4), PASSWORDS[4]),
    ])
    .expect("combine");
    let (package, verified) = reseal_for_request(
        &recovery,
        &RecoveryCase {
            request: &request,
            request_key: request_key.recipient(),
            approvals: &signed,
            escrow: &escrow,
            user_key: &user_key,
        },
        &policy(&keys),
        &mut rng,
    )
    .expect("reseal");
    assert_eq!(verified.approvers.len(), 3);
    assert_eq!(verified.completed_at, request.requested_at + 180);

    // The user's client opens it and sets a new password.
    let recovered = open_recovered(&package, &request_key, &request).expect("open package");
    assert_eq!(recovered.user, user);
    let shown: Vec<_> = recovered
        .approvals
        .iter()
        .map(|(k, t)| (*k, *t - request.requested_at))
        .collect();
    assert_eq!(
        shown,
        [
            (keys[1].public_key(), 60),
            (keys[3].public_key(), 120),
            (keys[4].public_key(), 180)
        ]
    );
    let mut plain = Vec::new();
    Decryptor::new(&old_file[..], &recovered.identity)
        .expect("header opens")
        .read_to_end(&mut plain)
        .expect("payload opens");
    assert_eq!(plain, secret_text);
    let new_file = seal_identity(
        &recovered.identity,
        b"new password",
        KdfParams::DEFAULT,
        &mut rng,
    )
    .expect("reseal");
    let again = open_identity(&new_file, b"new password").expect("opens");
    assert!(again.ct_eq(&recovered.identity));
}

fn recovery_key() -> kluis_recovery::RecoveryKey {
    combine_files(&[
        (file(0), PASSWORDS[0]),
        (file(1), PASSWORDS[1]),
        (file(2), PASSWORDS[2]),
    ])
    .expect("combine")
}

/// An escrow copy for `user` and that user's (certified) public key.
fn escrow_for(
    user: &str,
    rng: &mut ChaCha20Rng,
) -> (kluis_recovery::RecoveryEscrow, kluis_format::Recipient) {
    let identity = Identity::generate(rng);
    let escrow = seal_for_recovery(&identity, &setup().recipient, user, rng).expect("escrow");
    (escrow, identity.recipient().clone())
}

#[test]
fn wrong_request_key_fails_clearly() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let (escrow, user_key) = escrow_for("alice@gemeente.example", &mut rng);
    let request_key = RequestKey::generate(&mut rng);
    let request = request_for(&request_key);
    let keys = admins();
    let signed = approvals(&request, &keys, &[0, 1, 2]);
    let recovery = recovery_key();

    // The broker substitutes its own key for the approved one: refused.
    let mallory = RequestKey::generate(&mut rng);
    let err = reseal_for_request(
        &recovery,
        &RecoveryCase {
            request: &request,
            request_key: mallory.recipient(),
            approvals: &signed,
            escrow: &escrow,
            user_key: &user_key,
        },
        &policy(&keys),
        &mut rng,
    )
    .expect_err("substituted request key");
    assert!(
        matches!(err, RecoveryError::RequestKeyMismatch { .. }),
        "{err}"
    );

    // A package opened with another request key: refused, clearly.
    let (package, _) = reseal_for_request(
        &recovery,
        &RecoveryCase {
            request: &request,
            request_key: request_key.recipient(),
            approvals: &signed,
            escrow: &escrow,
            user_key: &user_key,
        },
        &policy(&keys),
        &mut rng,
    )
    .expect("reseal");
    let err = open_recovered(&package, &mallory, &request).expect_err("wrong key");
    assert!(matches!(err, RecoveryError::WrongRequestKey), "{err}");
    assert_eq!(
        err.to_string(),
        "this recovery package was sealed to a different request key"
    );

    // And a genuine package presented for a different request id.
    let mut other = request.clone();
    other.request_id = "rr-0002".into();
    let err = open_recovered(&package, &request_key, &other).expect_err("other request");
    assert!(
        matches!(err, RecoveryError::PackageForAnotherRequest("request id")),
        "{err}"
    );
}

#[test]
fn double_approval_blocks_recovery() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let (escrow, user_key) = escrow_for("alice@gemeente.example", &mut rng);
    let request_key = RequestKey::generate(&mut rng);
    let request = request_for(&request_key);
    let keys = admins();
    let signed = approvals(&request, &keys, &[0, 2, 0]);
    let err = reseal_for_request(
        &recovery_key(),
        &RecoveryCase {
            request: &request,
            request_key: request_key.recipient(),
            approvals: &signed,
            escrow: &escrow,
            user_key: &user_key,
        },
        &policy(&keys),
        &mut rng,
    )
    .expect_err("double approval");
    assert!(
        matches!(
            err,
            RecoveryError::Approvals(ApprovalError::DoubleApproval {
                first: 0,
                second: 2,
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn k_minus_one_approvals_block_recovery() {
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let (escrow, user_key) = escrow_for("alice@gemeente.example", &mut rng);
    let request_key = RequestKey::generate(&mut rng);
    let request = request_for(&request_key);
    let keys = admins();
    let signed = approvals(&request, &keys, &[3, 4]);
    let err = reseal_for_request(
        &recovery_key(),
        &RecoveryCase {
            request: &request,
            request_key: request_key.recipient(),
            approvals: &signed,
            escrow: &escrow,
            user_key: &user_key,
        },
        &policy(&keys),
        &mut rng,
    )
    .expect_err("too few");
    assert!(
        matches!(
            err,
            RecoveryError::Approvals(ApprovalError::NotEnoughApprovals { have: 2, need: 3 })
        ),
        "{err}"
    );
}

#[test]
fn another_users_escrow_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    // The broker hands over Bob's escrow for Alice's request.
    let (escrow, user_key) = escrow_for("bob@gemeente.example", &mut rng);
    let request_key = RequestKey::generate(&mut rng);
    let request = request_for(&request_key);
    let keys = admins();
    let signed = approvals(&request, &keys, &[0, 1, 2]);
    let err = reseal_for_request(
        &recovery_key(),
        &RecoveryCase {
            request: &request,
            request_key: request_key.recipient(),
            approvals: &signed,
            escrow: &escrow,
            user_key: &user_key,
        },
        &policy(&keys),
        &mut rng,
    )
    .expect_err("wrong user");
    assert!(
        matches!(&err, RecoveryError::EscrowForAnotherUser { expected, found }
            if expected == "alice@gemeente.example" && found == "bob@gemeente.example"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Frozen vectors: a 2-of-3 share set written by this version. If these stop
// combining, the share format (RECOVERY.md §3) changed incompatibly.

const VECTOR_PASSWORDS: [&[u8]; 3] = [b"vector-one", b"vector-two", b"vector-three"];

fn vector_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

#[test]
#[ignore = "writes tests/vectors; run by hand after an intended format change"]
fn regenerate_vectors() {
    let holders: Vec<ShareHolder<'_>> = ["One", "Two", "Three"]
        .iter()
        .zip(VECTOR_PASSWORDS)
        .map(|(name, password)| ShareHolder { name, password })
        .collect();
    let setup = init(2, &holders, &mut ChaCha20Rng::seed_from_u64(2024)).expect("init");
    std::fs::create_dir_all(vector_dir()).expect("mkdir");
    for (i, bytes) in setup.share_files.iter().enumerate() {
        std::fs::write(
            vector_dir().join(format!("share-2of3-{}.bin", i + 1)),
            bytes,
        )
        .expect("write");
    }
    std::fs::write(
        vector_dir().join("share-2of3.recipient"),
        format!("{}\n", setup.recipient),
    )
    .expect("write");
}

#[test]
fn frozen_share_vectors_still_combine() {
    let read = |name: &str| {
        let path = vector_dir().join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let files: Vec<Vec<u8>> = (1..=3)
        .map(|i| read(&format!("share-2of3-{i}.bin")))
        .collect();
    let expected = String::from_utf8(read("share-2of3.recipient")).expect("utf-8");
    for (a, b) in [(0usize, 1usize), (2, 0)] {
        let key = combine_files(&[
            (&files[a], VECTOR_PASSWORDS[a]),
            (&files[b], VECTOR_PASSWORDS[b]),
        ])
        .expect("vector shares combine");
        assert_eq!(key.recipient().to_string(), expected.trim());
    }
    let info = ShareFile::parse(&files[2]).expect("parses").info().clone();
    assert_eq!(
        (
            info.index,
            info.threshold,
            info.shares,
            info.holder.as_str()
        ),
        (3, 2, 3, "Three")
    );
    assert_eq!(files[2].len(), 182 + "Three".len() + 32 * 3);
}

#[test]
fn share_parser_never_panics_on_mutations() {
    // Cheap structural fuzzing (no Argon2id: parse only): flip, truncate and
    // extend a real share file at every position.
    let file = file(0);
    for at in 0..file.len() {
        for bit in [0x01u8, 0x80] {
            let mut m = file.to_vec();
            m[at] ^= bit;
            let _ = ShareFile::parse(&m);
        }
        let _ = ShareFile::parse(&file[..at]);
    }
    let mut longer = file.to_vec();
    longer.extend_from_slice(&[0u8; 40]);
    assert!(ShareFile::parse(&longer).is_err());
}

#[test]
fn escrow_holding_a_foreign_key_is_refused() {
    // Anyone can seal to the recovery public key: the broker plants an
    // escrow for Alice that holds a key it knows. Re-sealing checks the
    // escrowed key against Alice's certified key and refuses.
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let (_, user_key) = escrow_for("alice@gemeente.example", &mut rng);
    let (planted, _) = escrow_for("alice@gemeente.example", &mut rng);
    let request_key = RequestKey::generate(&mut rng);
    let request = request_for(&request_key);
    let keys = admins();
    let signed = approvals(&request, &keys, &[0, 1, 2]);
    let err = reseal_for_request(
        &recovery_key(),
        &RecoveryCase {
            request: &request,
            request_key: request_key.recipient(),
            approvals: &signed,
            escrow: &planted,
            user_key: &user_key,
        },
        &policy(&keys),
        &mut rng,
    )
    .expect_err("planted escrow");
    assert!(matches!(err, RecoveryError::EscrowKeyMismatch), "{err}");
}
