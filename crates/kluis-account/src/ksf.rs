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

/// Most memory any policy accepts, in KiB (1 GiB): 16 times the standard
/// 64 MiB, and what a modest laptop can spare. Upper bounds hold for every
/// policy, so a hostile broker cannot exhaust the client (issue 18.4b).
pub const KSF_MAX_M_COST_KIB: u32 = 1024 * 1024;
/// Most Argon2id passes any policy accepts (the standard is 3).
pub const KSF_MAX_T_COST: u32 = 10;
/// Most Argon2id lanes any policy accepts.
pub const KSF_MAX_P_COST: u32 = 16;

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

    /// Refuses parameters above the caps ([`AccountError::KsfTooCostly`]),
    /// then parameters below this policy's minimum or that Argon2id itself
    /// refuses ([`AccountError::KsfRejected`]). Only arithmetic: nothing is
    /// allocated before the parameters pass.
    pub fn check(self, params: &KsfParams) -> Result<(), AccountError> {
        if params.m_cost_kib > KSF_MAX_M_COST_KIB
            || params.t_cost > KSF_MAX_T_COST
            || params.p_cost > KSF_MAX_P_COST
        {
            return Err(AccountError::KsfTooCostly { params: *params });
        }
        let min = self.minimum();
        let ok = params.m_cost_kib >= min.m_cost_kib
            && params.t_cost >= min.t_cost
            && params.p_cost >= min.p_cost
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

    /// Issue 18.4b: what a hostile broker once made a client run (4 GiB,
    /// 64 passes) and each cap's first value beyond it are refused as too
    /// costly under every policy; the caps themselves are accepted.
    #[test]
    fn costly_parameters_are_refused_under_every_policy() {
        let ksf = |m_cost_kib, t_cost, p_cost| KsfParams {
            m_cost_kib,
            t_cost,
            p_cost,
        };
        for policy in [KsfPolicy::Standard, KsfPolicy::InsecureTestOnly] {
            for bad in [
                ksf(4 * 1024 * 1024, 64, 1),
                ksf(KSF_MAX_M_COST_KIB + 1, 3, 1),
                ksf(64 * 1024, KSF_MAX_T_COST + 1, 1),
                ksf(64 * 1024, 3, KSF_MAX_P_COST + 1),
            ] {
                assert!(
                    matches!(policy.check(&bad), Err(AccountError::KsfTooCostly { .. })),
                    "{policy:?} {bad:?}"
                );
            }
            let at_caps = ksf(KSF_MAX_M_COST_KIB, KSF_MAX_T_COST, KSF_MAX_P_COST);
            assert!(policy.check(&at_caps).is_ok(), "{policy:?}");
        }
    }
}
