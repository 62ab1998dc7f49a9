//! Issue 18.4c, broker side: `kluis-broker admin invite create` (the real
//! binary) writes a v2 invite naming the policy version in force, so the
//! joining device refuses anything older (the client side is tested in
//! kluis-account's `hostile_broker`).

use std::path::Path;
use std::process::Command;

use kluis_types::Invite;

fn admin(data: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kluis-broker"))
        .env_remove("KLUIS_BROKER_CONFIG")
        .env_remove("KLUIS_BROKER_DATABASE_URL")
        .arg("--data-dir")
        .arg(data)
        .arg("admin")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kluis-broker admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_invite_names_the_policy_version_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("org.key");
    let org = admin(&data, &["org", "init", "--out", key.to_str().unwrap()]);
    let create = |data: &Path| {
        let text = admin(
            data,
            &[
                "invite",
                "create",
                "--broker-url",
                "https://kluis.example.org",
                "--org-public-key",
                org.trim(),
            ],
        );
        assert!(text.starts_with("kluis-invite-v2:"), "{text}");
        Invite::decode(&text).unwrap()
    };
    assert_eq!(create(&data).min_policy_version, 0, "the built-in default");
    let policy = dir.path().join("policy.json");
    let json = serde_json::to_string(&kluis_types::OrgPolicy::default()).unwrap();
    std::fs::write(&policy, json).unwrap();
    for _ in 0..2 {
        admin(
            &data,
            &[
                "policy",
                "set",
                policy.to_str().unwrap(),
                "--org-key",
                key.to_str().unwrap(),
            ],
        );
    }
    assert_eq!(create(&data).min_policy_version, 2);
}
