//! Registers a throwaway account with the **test-only** KSF parameters on a
//! loopback broker and prints `USER_ID SESSION_TOKEN`, so `.ci/broker.sh`
//! can fuzz the authenticated endpoints. Not for real brokers.
//!
//! Usage: `cargo run -p kluis-account --example ci_session -- URL STATE_DIR [EMAIL]`

use kluis_account::{AccountClient, ClientConfig, KsfPolicy, OrgPublicKey, Password, Registration};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(state)) = (args.next(), args.next()) else {
        return Err("usage: ci_session URL STATE_DIR [EMAIL]".into());
    };
    let chosen = args.next();
    // Directory lookups are not used here, so no real org key is needed.
    let config = ClientConfig::new(url, OrgPublicKey::from_bytes([0; 32]), state)
        .with_ksf_policy(KsfPolicy::InsecureTestOnly);
    let client = AccountClient::new(config)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let email = chosen.unwrap_or_else(|| format!("ci-{nanos}@example.org"));
    let out = client
        .register(&Registration {
            email: &email,
            display_name: "CI fuzz user",
            password: &Password::new(format!("ci throwaway {nanos}")),
            public_key: "kluis1cifuzzkey",
            secret_identity: b"ci throwaway identity",
            invite: None,
        })
        .await?;
    println!("{} {}", out.session.user_id, out.session.token.expose());
    Ok(())
}
