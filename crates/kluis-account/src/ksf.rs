//! Client-enforced Argon2id parameters for OPAQUE's key-stretching function.

use kluis_types::KsfParams;
use opaque_ke::argon2::{Algorithm, Argon2, Params, Version};

use crate::AccountError;

/// Which Argon2id parameters this client registers with and accepts.
///
/// The broker tells the client which parameters an account uses; a client
/// never goes below its policy's minimum, so a malicious broker cannot
/// downgrade the work factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KsfPolicy {
    /// Production: at least 64 MiB and 3 passes (registers with exactly that).
    Standard,
    /// **Insecure, for tests only**: accepts and registers tiny parameters
    /// (256 KiB, 1 pass). Never use it for real accounts; the name is long on
    /// purpose so it cannot be picked by accident.
    InsecureTestOnly,
}

/// Upper bounds any policy accepts, so a broker cannot exhaust the client.
const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 16;

impl KsfPolicy {
    /// Parameters used for new registrations and password changes.
    pub fn registration_params(self) -> KsfParams {
        match self {
            Self::Standard => KsfParams {
                m_cost_kib: 64 * 1024,
                t_cost: 3,
                p_cost: 1,
            },
            Self::InsecureTestOnly => KsfParams {
                m_cost_kib: 256,
                t_cost: 1,
                p_cost: 1,
            },
        }
    }

    fn minimum(self) -> KsfParams {
        match self {
            Self::Standard => KsfParams {
                m_cost_kib: 64 * 1024,
                t_cost: 3,
                p_cost: 1,
            },
            Self::InsecureTestOnly => KsfParams {
                m_cost_kib: 8,
                t_cost: 1,
                p_cost: 1,
            },
        }
    }

    /// Refuses parameters below this policy's minimum or above sane bounds.
    pub fn check(self, params: &KsfParams) -> Result<(), AccountError> {
        let min = self.minimum();
        let ok = params.m_cost_kib >= min.m_cost_kib
            && params.t_cost >= min.t_cost
            && params.p_cost >= min.p_cost
            && params.m_cost_kib <= MAX_M_COST_KIB
            && params.t_cost <= MAX_T_COST
            && params.p_cost <= MAX_P_COST
            && params.m_cost_kib >= 8 * params.p_cost;
        if ok {
            Ok(())
        } else {
            Err(AccountError::KsfRejected { params: *params })
        }
    }

    /// Builds the Argon2id instance after [`KsfPolicy::check`].
    pub(crate) fn argon2(self, params: &KsfParams) -> Result<Argon2<'static>, AccountError> {
        self.check(params)?;
        let p = Params::new(params.m_cost_kib, params.t_cost, params.p_cost, None)
            .map_err(|_| AccountError::KsfRejected { params: *params })?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn standard_refuses_test_parameters() {
        let weak = KsfPolicy::InsecureTestOnly.registration_params();
        assert!(KsfPolicy::Standard.check(&weak).is_err());
        assert!(
            KsfPolicy::Standard
                .check(&KsfPolicy::Standard.registration_params())
                .is_ok()
        );
        assert!(KsfPolicy::InsecureTestOnly.check(&weak).is_ok());
        let huge = KsfParams {
            m_cost_kib: u32::MAX,
            t_cost: 3,
            p_cost: 1,
        };
        assert!(KsfPolicy::Standard.check(&huge).is_err());
    }
}
