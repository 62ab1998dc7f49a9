//! The server half of OPAQUE (RFC 9807) for the API: registration
//! (account registration, password change and the password reset after a
//! recovery) and login (login and re-authentication). The handlers never
//! touch `opaque-ke` themselves; the OPRF seed lives in [`crate::opaque`].

use kluis_types::{Email, KsfParams, OpaqueMessage, RegisterStartResponse};
use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration,
};
use rand::rngs::OsRng;

use super::{ApiError, AppState};
use crate::opaque::Suite;

/// Largest Argon2id memory a client may register with (4 GiB).
const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;

/// Sanity bounds only: the *client* enforces the security minimum (and
/// [`super::policy::enforce_enrolment`] the organisation's, once set).
pub(crate) fn check_ksf(ksf: &KsfParams) -> Result<(), ApiError> {
    let ok = (1..=16).contains(&ksf.p_cost)
        && (1..=64).contains(&ksf.t_cost)
        && ksf.m_cost_kib >= 8 * ksf.p_cost
        && ksf.m_cost_kib <= MAX_M_COST_KIB;
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request("ksf parameters out of range"))
    }
}

pub(crate) fn registration_response(
    state: &AppState,
    email: &Email,
    request: &OpaqueMessage,
    policy: Option<kluis_types::SignedPolicy>,
    recovery_key: Option<kluis_types::RecoveryKeyInfo>,
) -> Result<RegisterStartResponse, ApiError> {
    let request = RegistrationRequest::<Suite>::deserialize(request.as_bytes())
        .map_err(|_| ApiError::bad_request("malformed OPAQUE registration request"))?;
    let result =
        ServerRegistration::<Suite>::start(state.seed.setup(), request, email.as_str().as_bytes())
            .map_err(|_| ApiError::bad_request("invalid OPAQUE registration request"))?;
    Ok(RegisterStartResponse {
        registration_response: OpaqueMessage::new(result.message.serialize().to_vec()),
        policy,
        recovery_key,
    })
}

pub(crate) fn registration_record(upload: &OpaqueMessage) -> Result<Vec<u8>, ApiError> {
    let upload = RegistrationUpload::<Suite>::deserialize(upload.as_bytes())
        .map_err(|_| ApiError::bad_request("malformed OPAQUE registration upload"))?;
    Ok(ServerRegistration::<Suite>::finish(upload)
        .serialize()
        .to_vec())
}

/// A client's first login message, parsed.
pub(crate) type LoginRequest = CredentialRequest<Suite>;

/// A client's last login (or re-authentication) message, parsed.
pub(crate) type LoginFinalization = CredentialFinalization<Suite>;

/// Parses a client's first login message.
pub(crate) fn login_request(message: &OpaqueMessage) -> Result<LoginRequest, ApiError> {
    LoginRequest::deserialize(message.as_bytes())
        .map_err(|_| ApiError::bad_request("malformed OPAQUE credential request"))
}

/// Parses a client's last login (or re-authentication) message.
pub(crate) fn login_finalization(message: &OpaqueMessage) -> Result<LoginFinalization, ApiError> {
    LoginFinalization::deserialize(message.as_bytes())
        .map_err(|_| ApiError::bad_request("malformed OPAQUE credential finalization"))
}

/// The server's answer to `request` for `email`: from the user's stored
/// OPAQUE `record`, or, for an unknown address, from a fake one of the
/// same shape (RFC 9807 §10.9). Returns the state to keep until the
/// finish and the message for the client.
pub(crate) fn start_login(
    state: &AppState,
    record: Option<&[u8]>,
    request: LoginRequest,
    email: &Email,
) -> Result<(Vec<u8>, OpaqueMessage), ApiError> {
    let record = record
        .map(|r| {
            ServerRegistration::<Suite>::deserialize(r)
                .map_err(|e| ApiError::internal("stored OPAQUE record", &e))
        })
        .transpose()?;
    let result = ServerLogin::start(
        &mut OsRng,
        state.seed.setup(),
        record,
        request,
        email.as_str().as_bytes(),
        ServerLoginParameters::default(),
    )
    .map_err(|_| ApiError::bad_request("invalid OPAQUE credential request"))?;
    Ok((
        result.state.serialize().to_vec(),
        OpaqueMessage::new(result.message.serialize().to_vec()),
    ))
}

/// Whether `finalization` completes the login whose kept state is
/// `server_state` (the client proved the password); an error only when
/// that state does not parse.
pub(crate) fn finish_login(
    server_state: &[u8],
    finalization: LoginFinalization,
) -> Result<bool, ApiError> {
    let server_login = ServerLogin::<Suite>::deserialize(server_state)
        .map_err(|e| ApiError::internal("stored login state", &e))?;
    Ok(server_login
        .finish(finalization, ServerLoginParameters::default())
        .is_ok())
}
