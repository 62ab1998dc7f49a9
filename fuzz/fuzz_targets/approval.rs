//! Approval statements as the broker receives them (JSON, RECOVERY.md §4):
//! parsing never panics, a parsed approval serialises and parses to the
//! same value, and checking it — alone or as a set, against the request it
//! names and against another one — never panics and never accepts a
//! signature the fuzzer made up. The key, signature and fingerprint text
//! forms parse to values whose text parses back to them.
#![no_main]

use kluis_approvals::{
    AdminPublicKey, Approval, KeyFingerprint, RecoveryRequest, SignatureBytes, verify_approvals,
};
use libfuzzer_sys::fuzz_target;

fn text_forms(s: &str) {
    if let Ok(k) = AdminPublicKey::parse(s) {
        assert_eq!(AdminPublicKey::parse(&k.to_string()), Ok(k));
    }
    if let Ok(sig) = SignatureBytes::parse(s) {
        assert_eq!(SignatureBytes::parse(&sig.to_string()), Ok(sig));
    }
    if let Ok(fp) = KeyFingerprint::from_hex(s) {
        assert_eq!(KeyFingerprint::from_hex(&fp.to_hex()), Ok(fp));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        text_forms(s);
    }
    let Ok(a) = serde_json::from_slice::<Approval>(data) else {
        return;
    };
    let json = serde_json::to_string(&a).expect("serialise");
    let again: Approval = serde_json::from_str(&json).expect("serialised approval parses");
    assert_eq!(again, a);
    let s = &a.statement;
    let request = RecoveryRequest {
        request_id: s.request_id.clone(),
        user: s.user.clone(),
        request_key_fingerprint: s.request_key_fingerprint,
        requested_at: s.approved_at,
    };
    let admins = [a.admin()];
    // Without the signing key, no signature over the statement can be
    // found by chance: it must be refused.
    assert!(
        a.verify(0, &request, &admins).is_err(),
        "forged approval accepted"
    );
    let _ = a.verify(0, &request, &[]);
    let _ = verify_approvals(1, &request, std::slice::from_ref(&a), &admins);
    let _ = verify_approvals(2, &request, &[a.clone(), again], &admins);
});
