//! Issue 18.4b: a hostile broker cannot make the client run a costly
//! Argon2id. The broker announces the KSF parameters of an account in its
//! login answer (for an unknown address, its `default_ksf`); the client
//! refuses anything above its caps before allocating, under every policy.

use kluis_account::{AccountError, KSF_MAX_T_COST, Password};
use kluis_broker::org::OrgSigningKey;
use kluis_types::KsfParams;

use super::util::{Backend, start, test_settings};

async fn a_hostile_broker_cannot_make_the_client_run_a_costly_ksf(backend: Backend) {
    for ksf in [
        // Cheap in memory, but more passes than the client accepts: the old
        // client ran it.
        KsfParams {
            m_cost_kib: 256,
            t_cost: 64,
            p_cost: 1,
        },
        KsfParams {
            m_cost_kib: 256,
            t_cost: KSF_MAX_T_COST + 1,
            p_cost: 1,
        },
        // What the attack asked for: 4 GiB and 64 passes.
        KsfParams {
            m_cost_kib: 4 * 1024 * 1024,
            t_cost: 64,
            p_cost: 1,
        },
        KsfParams {
            m_cost_kib: 2 * 1024 * 1024,
            t_cost: 1,
            p_cost: 1,
        },
        KsfParams {
            m_cost_kib: 256,
            t_cost: 1,
            p_cost: 64,
        },
    ] {
        let mut settings = test_settings();
        settings.default_ksf = ksf;
        let Some(tb) = start(backend, settings).await else {
            return;
        };
        let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
        let (dev, _state) = tb.device(org.public_key());
        let answer = dev
            .login("nobody@example.org", &Password::new("whatever"))
            .await;
        assert!(
            matches!(answer, Err(AccountError::KsfTooCostly { params }) if params == ksf),
            "{ksf:?}: {answer:?}"
        );
        let text = answer.unwrap_err().to_string();
        assert!(text.contains("at most 1 GiB"), "{text}");
        tb.shutdown().await;
    }
}

crate::on_both_backends!(a_hostile_broker_cannot_make_the_client_run_a_costly_ksf);
