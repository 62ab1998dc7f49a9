//! What a share tells the person besides its counts, typed: the notices
//! (a departed member dropped, the directory not reachable, a group key
//! file not written) and why a file was left as it was. A screen words
//! each variant in its own language; `Display` gives the English that
//! `kluis share` prints.

use std::fmt;

use super::MemberChange;
use kluis_agent::share::replace::ReplaceError;

/// Something the person should know about a share.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ShareNotice {
    /// The directory could not be asked: members were not checked.
    DirectoryUnreachable {
        /// The cause, in English (for the command line and logs).
        error: String,
    },
    /// A person who left was dropped from the folder's members.
    DepartedDropped {
        /// Their address.
        who: String,
        /// The folder's mirror.
        folder: String,
    },
    /// A member moved to the directory's current key.
    KeyMoved {
        /// `bob@example.org` or `group:finance`.
        who: String,
        /// Fingerprint of the new key.
        fingerprint: String,
        /// The folder's mirror.
        folder: String,
    },
    /// The group key files could not be fetched from the broker.
    GroupFilesUnreachable {
        /// The cause, in English.
        error: String,
    },
    /// One group's key file was not written.
    GroupFileNotWritten {
        /// The group.
        group: String,
        /// The cause, in English.
        error: String,
    },
    /// The group key files were not updated.
    GroupFilesNotUpdated {
        /// The cause, in English.
        error: String,
    },
    /// You are not in the group: a member's agent adds its key file.
    NotGroupMember {
        /// The group.
        group: String,
    },
}

impl ShareNotice {
    /// The notice for a member change the directory refresh made in the
    /// folder whose mirror is `folder`.
    pub fn of_change(change: &MemberChange, folder: &std::path::Path) -> ShareNotice {
        let folder = folder.display().to_string();
        match change {
            MemberChange::Departed(who) => ShareNotice::DepartedDropped {
                who: who.clone(),
                folder,
            },
            MemberChange::KeyMoved { who, fingerprint } => ShareNotice::KeyMoved {
                who: who.clone(),
                fingerprint: fingerprint.clone(),
                folder,
            },
        }
    }
}

impl fmt::Display for ShareNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShareNotice::DirectoryUnreachable { error } => {
                write!(f, "members not checked against the directory ({error})")
            }
            ShareNotice::DepartedDropped { who, folder } => {
                let change = MemberChange::Departed(who.clone());
                write!(f, "{change} ({folder})")
            }
            ShareNotice::KeyMoved {
                who,
                fingerprint,
                folder,
            } => {
                let change = MemberChange::KeyMoved {
                    who: who.clone(),
                    fingerprint: fingerprint.clone(),
                };
                write!(f, "{change} ({folder})")
            }
            ShareNotice::GroupFilesUnreachable { error } => write!(
                f,
                "the group key files in the mirror were not updated ({error})"
            ),
            ShareNotice::GroupFileNotWritten { group, error } => {
                write!(f, "the key file of group {group} was not written: {error}")
            }
            ShareNotice::GroupFilesNotUpdated { error } => {
                write!(f, "the group key files were not updated: {error}")
            }
            ShareNotice::NotGroupMember { group } => write!(
                f,
                "you are not a member of group {group}; a member's agent adds its key file to the mirror"
            ),
        }
    }
}

/// Why a file was left as it was by a share (the old file is intact).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FileProblem {
    /// Changed while sharing: run the share again.
    Changed,
    /// Not shared with you: you cannot re-key it.
    NotSharedWithYou,
    /// Not a readable Kluis file.
    Damaged {
        /// The cause, in English.
        error: String,
    },
    /// A read or write failed.
    Io {
        /// The cause, in English.
        error: String,
    },
}

impl From<ReplaceError> for FileProblem {
    fn from(e: ReplaceError) -> FileProblem {
        match e {
            ReplaceError::Changed => FileProblem::Changed,
            ReplaceError::Format(kluis_format::Error::NoMatchingRecipient) => {
                FileProblem::NotSharedWithYou
            }
            ReplaceError::Format(e) => FileProblem::Damaged {
                error: e.to_string(),
            },
            ReplaceError::Io(e) => FileProblem::Io {
                error: e.to_string(),
            },
        }
    }
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileProblem::Changed => {
                f.write_str("changed while sharing; left as it was (run the command again)")
            }
            FileProblem::NotSharedWithYou => f.write_str("not shared with you; left as it was"),
            FileProblem::Damaged { error } | FileProblem::Io { error } => {
                write!(f, "{error}; left as it was")
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_prints_the_same_english_as_before() {
        let cases = [
            (
                ShareNotice::DirectoryUnreachable {
                    error: "cannot reach the broker".into(),
                },
                "members not checked against the directory (cannot reach the broker)",
            ),
            (
                ShareNotice::of_change(
                    &MemberChange::Departed("bob@example.org".into()),
                    std::path::Path::new("/m"),
                ),
                "bob@example.org has left the organisation and no longer receives new files (/m)",
            ),
            (
                ShareNotice::of_change(
                    &MemberChange::KeyMoved {
                        who: "group:finance".into(),
                        fingerprint: "FFFF".into(),
                    },
                    std::path::Path::new("/m"),
                ),
                "group:finance moved to its current key FFFF; new files use it (/m)",
            ),
            (
                ShareNotice::GroupFilesUnreachable { error: "e".into() },
                "the group key files in the mirror were not updated (e)",
            ),
            (
                ShareNotice::GroupFileNotWritten {
                    group: "finance".into(),
                    error: "e".into(),
                },
                "the key file of group finance was not written: e",
            ),
            (
                ShareNotice::GroupFilesNotUpdated { error: "e".into() },
                "the group key files were not updated: e",
            ),
            (
                ShareNotice::NotGroupMember {
                    group: "finance".into(),
                },
                "you are not a member of group finance; a member's agent adds its key file to the mirror",
            ),
        ];
        for (notice, text) in cases {
            assert_eq!(notice.to_string(), text);
        }
        assert_eq!(
            FileProblem::from(ReplaceError::Changed).to_string(),
            "changed while sharing; left as it was (run the command again)"
        );
        assert_eq!(
            FileProblem::from(ReplaceError::Format(
                kluis_format::Error::NoMatchingRecipient
            ))
            .to_string(),
            "not shared with you; left as it was"
        );
        assert_eq!(
            serde_json::to_value(ShareNotice::NotGroupMember {
                group: "finance".into()
            })
            .unwrap(),
            serde_json::json!({"kind": "not_group_member", "group": "finance"})
        );
    }
}
