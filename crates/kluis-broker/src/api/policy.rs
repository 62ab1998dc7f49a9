//! The organisation policy (`GET /v1/policy`) and the published recovery
//! key (`GET /v1/recovery/key`), and the server's share of enforcing the
//! policy: what it can see of an enrolment (KSF parameters, whether a
//! recovery escrow copy came with it).

use axum::Json;
use axum::extract::State;
use kluis_types::{
    EncryptedEscrow, KsfParams, OrgPolicy, RecoveryKeyInfo, SignatureBytes, SignedPolicy,
};

use super::extract::Authed;
use super::{ApiError, AppState};

/// The policy in force: the newest version an administrator set, or the
/// unsigned built-in default (version 0).
pub(crate) async fn current(state: &AppState) -> Result<(SignedPolicy, OrgPolicy), ApiError> {
    let signed = match state.store.policy_latest().await? {
        Some(p) => SignedPolicy {
            version: p.version,
            issued_at: p.issued_at,
            policy_json: p.policy_json,
            signature: Some(SignatureBytes::new(p.signature)),
        },
        None => SignedPolicy::default_unsigned(),
    };
    let policy = signed
        .policy()
        .map_err(|e| ApiError::internal("stored policy", &e))?;
    Ok((signed, policy))
}

/// The published recovery key, if any.
pub(crate) async fn recovery_key_info(
    state: &AppState,
) -> Result<Option<RecoveryKeyInfo>, ApiError> {
    Ok(state
        .store
        .recovery_key_latest()
        .await?
        .map(|k| RecoveryKeyInfo {
            public_key: k.public_key,
            threshold: k.threshold,
            shares: k.shares,
            issued_at: k.issued_at,
            signature: SignatureBytes::new(k.signature),
        }))
}

fn below(ksf: &KsfParams, min: &KsfParams) -> bool {
    ksf.m_cost_kib < min.m_cost_kib || ksf.t_cost < min.t_cost || ksf.p_cost < min.p_cost
}

/// What the broker can check of a registration or password change against
/// a policy an administrator has set: the Argon2id parameters and, when
/// recovery is mandatory, that an escrow copy for the recovery key came
/// with it. (The password itself never reaches the broker; its strength is
/// the client's check.) The built-in default policy (version 0) is applied
/// by clients only.
pub(crate) async fn enforce_enrolment(
    state: &AppState,
    ksf: &KsfParams,
    recovery_escrow: Option<&EncryptedEscrow>,
) -> Result<(), ApiError> {
    let (signed, policy) = current(state).await?;
    if signed.version == 0 {
        if recovery_escrow.is_some_and(EncryptedEscrow::is_empty) {
            return Err(ApiError::bad_request("recovery_escrow must not be empty"));
        }
        return Ok(());
    }
    if below(ksf, &policy.min_ksf) {
        return Err(ApiError::policy(
            "min_ksf",
            format!(
                "Argon2id parameters {}/{}/{} are below the organisation minimum {}/{}/{} (KiB/passes/lanes)",
                ksf.m_cost_kib,
                ksf.t_cost,
                ksf.p_cost,
                policy.min_ksf.m_cost_kib,
                policy.min_ksf.t_cost,
                policy.min_ksf.p_cost
            ),
        ));
    }
    match recovery_escrow {
        Some(e) if e.is_empty() => Err(ApiError::bad_request("recovery_escrow must not be empty")),
        Some(_) => Ok(()),
        None if policy.recovery_mandatory => Err(ApiError::policy(
            "recovery_mandatory",
            "an escrow copy sealed to the organisation recovery key is required",
        )),
        None => Ok(()),
    }
}

/// The organisation policy, signed by the org key (version 0: the unsigned
/// default). Clients verify the signature with their pinned org key.
#[utoipa::path(get, path = "/v1/policy", tag = "policy", security(("bearer" = [])),
    responses((status = 200, body = SignedPolicy), (status = 401, body = kluis_types::ErrorBody)))]
pub async fn get_policy(
    State(state): State<AppState>,
    _auth: Authed,
) -> Result<Json<SignedPolicy>, ApiError> {
    Ok(Json(current(&state).await?.0))
}

/// The organisation recovery public key, certified by the org key.
#[utoipa::path(get, path = "/v1/recovery/key", tag = "recovery", security(("bearer" = [])),
    responses((status = 200, body = RecoveryKeyInfo), (status = 401, body = kluis_types::ErrorBody),
              (status = 404, description = "no recovery key published", body = kluis_types::ErrorBody)))]
pub async fn get_recovery_key(
    State(state): State<AppState>,
    _auth: Authed,
) -> Result<Json<RecoveryKeyInfo>, ApiError> {
    recovery_key_info(&state)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no recovery key published"))
}
