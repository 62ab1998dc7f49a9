//! Making the organisation recovery key and its shares, and rebuilding it
//! from K of them. RECOVERY.md §2–3.

use kluis_format::{Identity, KdfParams, Recipient};
use subtle::ConstantTimeEq as _;
use vsss_rs::{Gf256, IdentifierGf256};
use zeroize::Zeroizing;

use crate::error::{RecoveryError, Result, TamperedPart};
use crate::share::{Commitment, OpenedShare, SHARE_LEN, ShareInfo, commit, seal};

/// One administrator who will hold a share: a display name written into the
/// file, and the password that seals it.
pub struct ShareHolder<'a> {
    /// Shown when the share is used (1 to 64 bytes, no control characters).
    pub name: &'a str,
    /// Seals the share (Argon2id). Never stored.
    pub password: &'a [u8],
}

/// The result of [`init`]: the public recovery key and one sealed file per
/// holder, in the order the holders were given. The secret key itself is
/// not returned; it exists only inside `init` and is zeroized there.
pub struct RecoverySetup {
    /// The organisation recovery public key. Goes to the broker; clients
    /// pin its fingerprint.
    pub recipient: Recipient,
    /// Share file bytes; `share_files[i]` belongs to holder `i` and has
    /// share index `i + 1`.
    pub share_files: Vec<Vec<u8>>,
}

impl std::fmt::Debug for RecoverySetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RecoverySetup({:?}, {} shares)",
            self.recipient,
            self.share_files.len()
        )
    }
}

/// The rebuilt organisation recovery key. Lives only on the admin machine,
/// in memory, for the duration of a recovery; zeroized on drop.
pub struct RecoveryKey(pub(crate) Identity);

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryKey({})", self.0.recipient().fingerprint())
    }
}

impl RecoveryKey {
    /// The public half.
    pub fn recipient(&self) -> &Recipient {
        self.0.recipient()
    }
}

/// Makes a fresh organisation recovery key and splits it into one share per
/// holder, `threshold` of which rebuild it. Uses [`KdfParams::DEFAULT`].
pub fn init(
    threshold: u8,
    holders: &[ShareHolder<'_>],
    rng: &mut impl rand_core::CryptoRng,
) -> Result<RecoverySetup> {
    init_with_params(threshold, holders, KdfParams::DEFAULT, rng)
}

/// [`init`] with chosen Argon2id parameters (at least [`KdfParams::MINIMUM`]).
pub fn init_with_params(
    threshold: u8,
    holders: &[ShareHolder<'_>],
    kdf: KdfParams,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<RecoverySetup> {
    crate::share::check_kdf(kdf)?;
    if threshold < 2 {
        return Err(RecoveryError::BadParameters(
            "the threshold must be at least 2: no one may recover alone",
        ));
    }
    // MAX_SHARES is u8::MAX: the conversion is the bound.
    let n = u8::try_from(holders.len())
        .map_err(|_| RecoveryError::BadParameters("at most 255 shares"))?;
    if n < threshold {
        return Err(RecoveryError::BadParameters(
            "fewer holders than the threshold",
        ));
    }
    let identity = Identity::generate(rng);
    let recipient = identity.recipient().clone();
    let secret = identity.to_secret_bytes();
    let values = split(&secret[..], threshold, n, rng)?;
    let mut set_id = [0u8; 16];
    rng.fill_bytes(&mut set_id);
    let commitments: Vec<Commitment> = (1..=n)
        .zip(values.iter())
        .map(|(i, y)| commit(&set_id, i, y))
        .collect();
    let mut share_files = Vec::with_capacity(holders.len());
    for ((index, holder), y) in (1..=n).zip(holders).zip(values.iter()) {
        let info = ShareInfo {
            index,
            threshold,
            shares: n,
            set_id,
            recovery_fingerprint: *recipient.fingerprint().as_bytes(),
            holder: holder.name.to_owned(),
            kdf,
        };
        share_files.push(seal(&info, &commitments, y, holder.password, rng)?);
    }
    Ok(RecoverySetup {
        recipient,
        share_files,
    })
}

/// Shamir-splits the 64 secret bytes; `out[i]` is the value at x = i + 1.
fn split(
    secret: &[u8],
    threshold: u8,
    n: u8,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<Zeroizing<[u8; SHARE_LEN]>>> {
    let ids = (1..=n).map(|x| IdentifierGf256(Gf256(x)));
    let raw = Zeroizing::new(
        Gf256::split_bytes_with_participant_ids_iter(
            usize::from(threshold),
            usize::from(n),
            secret,
            &mut *rng,
            ids,
        )
        .map_err(|_| RecoveryError::BadParameters("secret sharing refused the parameters"))?,
    );
    let mut out = Vec::with_capacity(raw.len());
    for (x, share) in (1..=n).zip(raw.iter()) {
        // vsss-rs writes [x, y_1 .. y_64].
        if share.len() != SHARE_LEN + 1 || share[0] != x {
            return Err(RecoveryError::BadParameters(
                "unexpected share layout from vsss-rs",
            ));
        }
        let mut y = Zeroizing::new([0u8; SHARE_LEN]);
        y.copy_from_slice(&share[1..]);
        out.push(y);
    }
    let mut raw = raw;
    for share in raw.iter_mut() {
        zeroize::Zeroize::zeroize(share);
    }
    Ok(out)
}

/// Rebuilds the recovery key from opened shares (at least K, of one setup,
/// each index once).
///
/// Every share's value is checked against the commitment that *every other*
/// file holds for it, and the result against the recovery fingerprint the
/// files name. A share that an insider replaced (re-sealed with their own
/// password) is named: [`RecoveryError::TamperedShare`]. If the key comes
/// out right but one file's commitment list disagrees, that file is named
/// too: it has been altered, even if this time it did no harm.
pub fn combine(shares: &[OpenedShare]) -> Result<RecoveryKey> {
    let first = shares
        .first()
        .ok_or(RecoveryError::NotEnoughShares { have: 0, need: 2 })?;
    let k = usize::from(first.info.threshold);
    for s in shares {
        let i = &s.info;
        if i.set_id != first.info.set_id
            || i.threshold != first.info.threshold
            || i.shares != first.info.shares
            || i.recovery_fingerprint != first.info.recovery_fingerprint
        {
            return Err(RecoveryError::MixedShareSets {
                index: i.index,
                holder: i.holder.clone(),
            });
        }
    }
    for (a, s) in shares.iter().enumerate() {
        if shares[..a].iter().any(|t| t.info.index == s.info.index) {
            return Err(RecoveryError::DuplicateShare {
                index: s.info.index,
            });
        }
    }
    if shares.len() < k {
        return Err(RecoveryError::NotEnoughShares {
            have: shares.len(),
            need: k,
        });
    }

    // detractors[a] = which files' commitment lists contradict share a's value.
    let own: Vec<Commitment> = shares
        .iter()
        .map(|s| commit(&s.info.set_id, s.info.index, &s.y))
        .collect();
    let detractors: Vec<Vec<usize>> = shares
        .iter()
        .enumerate()
        .map(|(a, s)| {
            let slot = usize::from(s.info.index) - 1;
            (0..shares.len())
                .filter(|&b| !bool::from(shares[b].commitments[slot].ct_eq(&own[a])))
                .collect()
        })
        .collect();

    let result = interpolate(shares)?;
    let key_ok = bool::from(
        result
            .recipient()
            .fingerprint()
            .as_bytes()
            .ct_eq(&first.info.recovery_fingerprint),
    );
    let named = |a: usize, part| RecoveryError::TamperedShare {
        index: shares[a].info.index,
        holder: shares[a].info.holder.clone(),
        part,
    };
    let contradicted = (0..shares.len()).filter(|&a| !detractors[a].is_empty());
    match (
        key_ok,
        contradicted.clone().max_by_key(|&a| detractors[a].len()),
    ) {
        (true, None) => Ok(RecoveryKey(result)),
        (false, Some(a)) => Err(named(a, TamperedPart::Value)),
        (true, Some(_)) => {
            // The values are genuine (the key is right), so the file that
            // contradicts them most has altered commitments.
            let mut blame = vec![0usize; shares.len()];
            for a in contradicted {
                for &b in &detractors[a] {
                    blame[b] += 1;
                }
            }
            let worst = (0..shares.len()).max_by_key(|&b| blame[b]).unwrap_or(0);
            Err(named(worst, TamperedPart::Commitments))
        }
        (false, None) => Err(RecoveryError::CombinedKeyMismatch),
    }
}

fn interpolate(shares: &[OpenedShare]) -> Result<Identity> {
    let points: Zeroizing<Vec<Vec<u8>>> = Zeroizing::new(
        shares
            .iter()
            .map(|s| {
                let mut p = Vec::with_capacity(SHARE_LEN + 1);
                p.push(s.info.index);
                p.extend_from_slice(&s.y[..]);
                p
            })
            .collect(),
    );
    let secret = Zeroizing::new(
        Gf256::combine_bytes(&points[..])
            .map_err(|_| RecoveryError::MalformedShare("shares do not interpolate"))?,
    );
    let mut points = points;
    for p in points.iter_mut() {
        zeroize::Zeroize::zeroize(p);
    }
    // A wrong result can still be 64 valid-looking bytes; the caller checks
    // the fingerprint. Bytes that are not a key at all are a mismatch too.
    Identity::from_secret_bytes(&secret).map_err(|_| RecoveryError::CombinedKeyMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::ShareFile;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn holders() -> Vec<ShareHolder<'static>> {
        vec![
            ShareHolder {
                name: "Anna",
                password: b"anna pw",
            },
            ShareHolder {
                name: "Bram",
                password: b"bram pw",
            },
            ShareHolder {
                name: "Cor",
                password: b"cor pw",
            },
        ]
    }

    fn opened(setup: &RecoverySetup, which: &[usize]) -> Vec<OpenedShare> {
        let h = holders();
        which
            .iter()
            .map(|&i| {
                ShareFile::parse(&setup.share_files[i])
                    .and_then(|f| f.open(h[i].password))
                    .expect("opens")
            })
            .collect()
    }

    #[test]
    fn split_then_interpolate_any_k() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let secret = [0x5au8; SHARE_LEN];
        let values = split(&secret, 3, 5, &mut rng).expect("splits");
        assert_eq!(values.len(), 5);
        for pick in [[0usize, 1, 2], [4, 2, 0], [1, 3, 4]] {
            let points: Vec<Vec<u8>> = pick
                .iter()
                .map(|&i| {
                    let mut p = vec![u8::try_from(i + 1).expect("small")];
                    p.extend_from_slice(&values[i][..]);
                    p
                })
                .collect();
            assert_eq!(
                Gf256::combine_bytes(&points[..]).expect("combines"),
                secret.to_vec()
            );
        }
    }

    /// K−1 shares carry no information about the secret: interpolating
    /// them yields an unrelated value, and for every candidate value of a
    /// secret byte there is a polynomial of degree K−1 through the K−1
    /// points and that candidate (a field always admits one).
    #[test]
    fn k_minus_one_values_do_not_determine_the_secret() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let secret = [0xc3u8; SHARE_LEN];
        let values = split(&secret, 3, 5, &mut rng).expect("splits");
        let points: Vec<Vec<u8>> = [1u8, 4]
            .iter()
            .map(|&x| {
                let mut p = vec![x];
                p.extend_from_slice(&values[usize::from(x) - 1][..]);
                p
            })
            .collect();
        let guess = Gf256::combine_bytes(&points[..]).expect("interpolates a line");
        assert_ne!(guess, secret.to_vec());
        for candidate in 0..=255u8 {
            let mut with_candidate = points.clone();
            with_candidate.push(
                std::iter::once(0xffu8)
                    .chain(std::iter::repeat_n(candidate, SHARE_LEN))
                    .collect(),
            );
            // Three points always define a quadratic; no candidate is ruled out.
            assert!(Gf256::combine_bytes(&with_candidate[..]).is_ok());
        }
    }

    /// An insider who knows their password replaces their share value and
    /// re-seals it consistently (own commitment updated too). The other
    /// files' commitments expose them, and the wrong key confirms it.
    #[test]
    fn insider_replaced_value_is_named() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let setup = init(2, &holders(), &mut rng).expect("init");
        let mut shares = opened(&setup, &[0, 2]);
        let cor = &mut shares[1];
        cor.y[0] ^= 1;
        cor.commitments[2] = commit(&cor.info.set_id, 3, &cor.y);
        let err = combine(&shares).expect_err("tampered");
        assert!(
            matches!(&err, RecoveryError::TamperedShare { index: 3, holder, part: TamperedPart::Value } if holder == "Cor"),
            "{err}"
        );
    }

    /// An insider who tries to frame a colleague by altering the commitment
    /// their own file holds for the colleague's share is named instead.
    #[test]
    fn insider_altered_commitments_are_named() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let setup = init(2, &holders(), &mut rng).expect("init");
        let mut shares = opened(&setup, &[0, 1, 2]);
        shares[2].commitments[0] = [0u8; 32];
        let err = combine(&shares).expect_err("tampered");
        assert!(
            matches!(
                &err,
                RecoveryError::TamperedShare {
                    index: 3,
                    part: TamperedPart::Commitments,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn threshold_one_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        assert!(matches!(
            init(1, &holders(), &mut rng),
            Err(RecoveryError::BadParameters(_))
        ));
        assert!(matches!(
            init(4, &holders(), &mut rng),
            Err(RecoveryError::BadParameters(_))
        ));
    }
}
