//! The typed values of the status that a screen puts into words: what
//! happened to a file ([`Action`]), why a pair needs attention ([`Alert`]),
//! why an item failed ([`ProblemKind`]) or was skipped ([`SkipKind`]).
//!
//! Each serialises as the same string the protocol carried before they were
//! typed; `Display` is the English of the command line.

use serde::{Deserialize, Serialize};

/// What happened to a file or folder (an activity-log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A plaintext file was encrypted into the mirror.
    Encrypted,
    /// A ciphertext file was decrypted into the plaintext folder.
    Decrypted,
    /// Both sides changed: a conflict copy was made (`detail` names it).
    Conflict,
    /// Both sides changed alike: nothing to keep apart.
    Merged,
    /// A ciphertext file was deleted.
    Deleted,
    /// A plaintext file was moved to `.kluis-trash`.
    Trashed,
    /// Renamed (`detail` is the new path).
    Renamed,
    /// A folder was created.
    Mkdir,
    /// A folder was removed.
    Rmdir,
    /// Already alike on both sides: recorded in the index.
    Recorded,
    /// Gone from both sides: forgotten by the index.
    Forgotten,
    /// A damaged ciphertext was replaced by this device's version.
    ReplacedDamaged,
    /// A departed member was dropped from a folder.
    MemberDeparted,
    /// A member was moved to a rotated group key.
    MemberKeyMoved,
    /// A folder shared with you was paired (`detail`: who shared it).
    SharedWithYou,
    /// An action this build does not know (a newer engine or agent).
    /// Not in the TypeScript type: a screen words any unknown name alike.
    #[serde(other)]
    #[cfg_attr(feature = "specta", specta(skip))]
    Other,
}

impl Action {
    /// Every action, in the order above.
    pub const ALL: [Action; 16] = [
        Action::Encrypted,
        Action::Decrypted,
        Action::Conflict,
        Action::Merged,
        Action::Deleted,
        Action::Trashed,
        Action::Renamed,
        Action::Mkdir,
        Action::Rmdir,
        Action::Recorded,
        Action::Forgotten,
        Action::ReplacedDamaged,
        Action::MemberDeparted,
        Action::MemberKeyMoved,
        Action::SharedWithYou,
        Action::Other,
    ];

    /// The protocol's name of the action.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Encrypted => "encrypted",
            Action::Decrypted => "decrypted",
            Action::Conflict => "conflict",
            Action::Merged => "merged",
            Action::Deleted => "deleted",
            Action::Trashed => "trashed",
            Action::Renamed => "renamed",
            Action::Mkdir => "mkdir",
            Action::Rmdir => "rmdir",
            Action::Recorded => "recorded",
            Action::Forgotten => "forgotten",
            Action::ReplacedDamaged => "replaced_damaged",
            Action::MemberDeparted => "member_departed",
            Action::MemberKeyMoved => "member_key_moved",
            Action::SharedWithYou => "shared_with_you",
            Action::Other => "other",
        }
    }

    /// The action the sync engine names `name` ([`Action::Other`] when
    /// unknown).
    pub fn from_name(name: &str) -> Action {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == name)
            .unwrap_or(Action::Other)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Action {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Action {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a pair needs attention. The faces put it into words; `Display` is
/// the command line's English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    /// The mass-deletion guard holds deletions back.
    MassDeletion {
        /// Deletions withheld.
        deletions: u32,
        /// Files synced.
        total: u32,
        /// Of `deletions`, files gone from the sync folder; the rest are
        /// gone from this computer's folder.
        missing_in_mirror: u32,
        /// The first few paths, sorted.
        sample: Vec<String>,
    },
    /// This computer's plaintext folder is empty although files were synced.
    LocalRootEmpty,
    /// The encrypted folder is empty although files were synced.
    MirrorRootEmpty,
    /// Downloads wait for free space on the plaintext's disk.
    NoSpace {
        /// The first file that waits.
        path: String,
        /// How many more wait.
        more: u32,
        /// The engine's figures (disk, needed, free), for logs.
        detail: String,
    },
    /// Ciphertext files are damaged.
    Damaged {
        /// The first damaged file.
        path: String,
        /// How many more are damaged.
        more: u32,
        /// The engine's detail, for logs.
        detail: String,
    },
    /// The folder's metadata is not encrypted to you or your groups.
    NotSharedWithYou {
        /// The engine's detail, for logs.
        detail: String,
    },
    /// The last pass failed as a whole; retried with backoff.
    SyncFailed {
        /// The engine's error, for logs.
        detail: String,
    },
}

/// `n` as a `u32`, saturating.
pub(crate) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl From<&kluis_sync::Guard> for Alert {
    fn from(g: &kluis_sync::Guard) -> Alert {
        match g {
            kluis_sync::Guard::MassDeletion {
                deletions,
                total,
                missing_in_mirror,
                sample,
            } => Alert::MassDeletion {
                deletions: count(*deletions),
                total: count(*total),
                missing_in_mirror: count(*missing_in_mirror),
                sample: sample.clone(),
            },
            kluis_sync::Guard::LocalRootEmpty => Alert::LocalRootEmpty,
            kluis_sync::Guard::MirrorRootEmpty => Alert::MirrorRootEmpty,
        }
    }
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Alert::MassDeletion {
                deletions,
                total,
                missing_in_mirror,
                sample,
            } => {
                let from_plain = deletions.saturating_sub(*missing_in_mirror);
                let mut what = Vec::new();
                if *missing_in_mirror > 0 {
                    what.push(format!(
                        "{missing_in_mirror} are gone from the sync folder"
                    ));
                }
                if from_plain > 0 {
                    what.push(format!("{from_plain} are gone from this computer's folder"));
                }
                let more = (*deletions as usize).saturating_sub(sample.len());
                let examples = if more > 0 {
                    format!("{} and {more} more", sample.join(", "))
                } else {
                    sample.join(", ")
                };
                write!(
                    f,
                    "deletions held back: of {total} synced files, {} ({examples}). Nothing was deleted. \
                     If the folder is being restored, wait: this clears by itself once the files are back. \
                     To put them back from the other side: kluis resume --restore. \
                     To delete them here too (encrypted copies deleted, plaintext moved to .kluis-trash): kluis resume --allow-deletions",
                    what.join(" and ")
                )
            }
            Alert::LocalRootEmpty => f.write_str(
                "paused: this computer's Kluis folder is empty (an unmounted disk?). Nothing was deleted. \
                 Put the folder back, or restore it from the sync folder: kluis resume --restore. \
                 To delete the encrypted copies too: kluis resume --allow-deletions",
            ),
            Alert::MirrorRootEmpty => f.write_str(
                "paused: the encrypted folder in the sync folder is empty (the sync client logged out or re-downloading?). \
                 Nothing was deleted; this clears by itself once the files are back. \
                 To encrypt them again from this computer: kluis resume --restore. \
                 To move this computer's copies to .kluis-trash: kluis resume --allow-deletions",
            ),
            Alert::NoSpace { path, more, detail } => {
                let files = if *more == 0 {
                    path.clone()
                } else {
                    format!("{path} and {more} more")
                };
                write!(
                    f,
                    "{detail}; waiting: {files} (tried again as soon as space is freed)"
                )
            }
            Alert::Damaged { path, more, detail } => {
                write!(f, "damaged: {path}: {detail}")?;
                if *more > 0 {
                    write!(
                        f,
                        " ({more} more damaged file(s): kluis status lists them)"
                    )?;
                }
                Ok(())
            }
            Alert::NotSharedWithYou { detail } | Alert::SyncFailed { detail } => {
                f.write_str(detail)
            }
        }
    }
}

/// Why one item was not synced in the last pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum ProblemKind {
    /// The ciphertext does not (yet) authenticate: partly synced or
    /// corrupt. Retried; never decrypted, never deleted.
    Incomplete,
    /// The file is not encrypted to you or your groups.
    NotSharedWithYou,
    /// The file changed while it was synced; it is rescanned.
    ChangedDuringSync,
    /// Not enough free space on the plaintext's disk; tried again once
    /// space is freed.
    NoSpace,
    /// The ciphertext is damaged; a newer version replaces it.
    Damaged,
    /// Any other I/O or format problem.
    Failed,
}

impl From<&kluis_sync::ItemErrorKind> for ProblemKind {
    fn from(k: &kluis_sync::ItemErrorKind) -> ProblemKind {
        use kluis_sync::ItemErrorKind as K;
        match k {
            K::Incomplete => ProblemKind::Incomplete,
            K::NotSharedWithYou => ProblemKind::NotSharedWithYou,
            K::ChangedDuringSync => ProblemKind::ChangedDuringSync,
            K::NoSpace => ProblemKind::NoSpace,
            K::Damaged => ProblemKind::Damaged,
            K::Failed => ProblemKind::Failed,
        }
    }
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProblemKind::Incomplete => "incomplete",
            ProblemKind::NotSharedWithYou => "not shared with you",
            ProblemKind::ChangedDuringSync => "changed during sync",
            ProblemKind::NoSpace => "waiting for disk space",
            ProblemKind::Damaged => "damaged",
            ProblemKind::Failed => "failed",
        })
    }
}

/// An item that failed in the last pass (retried).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ItemProblem {
    /// The plaintext path (or ciphertext path when unknown).
    pub path: String,
    /// Why.
    pub kind: ProblemKind,
    /// The engine's detail, for logs and the command line.
    pub detail: String,
}

impl From<&kluis_sync::ItemError> for ItemProblem {
    fn from(e: &kluis_sync::ItemError) -> ItemProblem {
        ItemProblem {
            path: e.path.clone(),
            kind: ProblemKind::from(&e.kind),
            detail: e.detail.clone(),
        }
    }
}

/// Why a path is skipped on purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum SkipKind {
    /// A symbolic link.
    Symlink,
    /// A device, socket or pipe.
    SpecialFile,
    /// The folder of another folder pair.
    OtherPair,
    /// A name that is not valid UTF-8.
    NotUtf8,
    /// A folder or file that cannot be read.
    Unreadable,
    /// In the mirror: a name that is not an encrypted name of this folder.
    ForeignName,
    /// In the mirror: not a Kluis file.
    NotKluis,
    /// Any other reason (`reason` says which). Not in the TypeScript
    /// type: a screen words any unknown kind alike.
    #[default]
    #[serde(other)]
    #[cfg_attr(feature = "specta", specta(skip))]
    Other,
}

impl From<&kluis_sync::scan::SkipReason> for SkipKind {
    /// The kind of the engine's typed skip reason, variant by variant.
    fn from(reason: &kluis_sync::scan::SkipReason) -> SkipKind {
        use kluis_sync::scan::SkipReason as R;
        match reason {
            R::Symlink => SkipKind::Symlink,
            R::SpecialFile => SkipKind::SpecialFile,
            R::OtherPair => SkipKind::OtherPair,
            R::NotUtf8 => SkipKind::NotUtf8,
            R::CannotReadDir(_) | R::CannotStat(_) | R::CannotReadMirrorDir => SkipKind::Unreadable,
            R::ForeignDirName | R::ForeignFileName => SkipKind::ForeignName,
            R::NotKluisFile => SkipKind::NotKluis,
        }
    }
}

/// A path skipped on purpose (symlinks, special files, foreign names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Skip {
    /// Path relative to the folder.
    pub path: String,
    /// Why, in the engine's words (for logs and the command line).
    pub reason: String,
    /// Why, typed (for the screens).
    #[serde(default)]
    pub kind: SkipKind,
}

impl From<&kluis_sync::scan::Skip> for Skip {
    fn from(s: &kluis_sync::scan::Skip) -> Skip {
        Skip {
            path: s.path.clone(),
            reason: s.reason.to_string(),
            kind: SkipKind::from(&s.reason),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn actions_keep_their_wire_names() {
        for a in Action::ALL {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
            assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), a);
            assert_eq!(Action::from_name(a.as_str()), a);
        }
        assert_eq!(
            serde_json::from_str::<Action>("\"teleported\"").unwrap(),
            Action::Other
        );
        assert_eq!(Action::from_name("teleported"), Action::Other);
        assert!(Action::Encrypted == "encrypted");
    }

    #[test]
    fn item_problems_keep_the_wire_shape_of_the_engine_errors() {
        let e = kluis_sync::ItemError {
            path: "a.txt".into(),
            kind: kluis_sync::ItemErrorKind::NoSpace,
            detail: "d".into(),
        };
        assert_eq!(
            serde_json::to_value(ItemProblem::from(&e)).unwrap(),
            serde_json::to_value(&e).unwrap()
        );
    }

    #[test]
    fn every_engine_skip_reason_has_a_kind() {
        use kluis_sync::scan::SkipReason as R;
        // The engine's words stay what logs and `kluis status` showed;
        // each reason has its kind.
        let cases = [
            (
                R::CannotReadDir("denied".into()),
                "cannot read directory: denied",
                SkipKind::Unreadable,
            ),
            (R::NotUtf8, "name is not valid UTF-8", SkipKind::NotUtf8),
            (
                R::CannotStat("gone".into()),
                "cannot stat: gone",
                SkipKind::Unreadable,
            ),
            (R::Symlink, "symbolic link (not synced)", SkipKind::Symlink),
            (
                R::OtherPair,
                "another folder pair (not synced into this mirror)",
                SkipKind::OtherPair,
            ),
            (
                R::SpecialFile,
                "special file (not synced)",
                SkipKind::SpecialFile,
            ),
            (
                R::CannotReadMirrorDir,
                "cannot read mirror directory",
                SkipKind::Unreadable,
            ),
            (
                R::ForeignDirName,
                "directory is not an encrypted name of this folder",
                SkipKind::ForeignName,
            ),
            (
                R::NotKluisFile,
                "not a Kluis file (no .kls suffix)",
                SkipKind::NotKluis,
            ),
            (
                R::ForeignFileName,
                "file name is not an encrypted name of this folder",
                SkipKind::ForeignName,
            ),
        ];
        for (reason, text, kind) in cases {
            let s = Skip::from(&kluis_sync::scan::Skip {
                path: "p".into(),
                reason,
            });
            assert_eq!((s.reason.as_str(), s.kind), (text, kind));
        }
        // Older agents send no kind.
        let s: Skip = serde_json::from_str(r#"{"path":"p","reason":"r"}"#).unwrap();
        assert_eq!(s.kind, SkipKind::Other);
    }

    #[test]
    fn alerts_are_tagged_and_read_as_before_on_the_command_line() {
        let a = Alert::from(&kluis_sync::Guard::MassDeletion {
            deletions: 3,
            total: 4,
            missing_in_mirror: 1,
            sample: vec!["a".into(), "b".into()],
        });
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["kind"], "mass_deletion");
        assert_eq!(serde_json::from_value::<Alert>(json).unwrap(), a);
        let text = a.to_string();
        assert!(
            text.starts_with(
                "deletions held back: of 4 synced files, 1 are gone from the sync folder and \
                 2 are gone from this computer's folder (a, b and 1 more). Nothing was deleted."
            ),
            "{text}"
        );
        assert_eq!(
            serde_json::to_string(&Alert::LocalRootEmpty).unwrap(),
            r#"{"kind":"local_root_empty"}"#
        );
    }
}
