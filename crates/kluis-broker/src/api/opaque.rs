//! The server halves of OPAQUE registration (RFC 9807), shared by
//! account registration, password change and the password reset after a
//! recovery; the OPRF seed itself lives in [`crate::opaque`].

use kluis_types::{Email, KsfParams, OpaqueMessage, RegisterStartResponse};
use opaque_ke::{RegistrationRequest, RegistrationUpload, ServerRegistration};

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
