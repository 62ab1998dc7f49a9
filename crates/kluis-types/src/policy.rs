//! The organisation policy: the rules an administrator sets on the broker and
//! that both the client and the broker enforce wherever each can.
//!
//! This module is plain data plus the pure decisions that follow from it
//! ([`OrgPolicy::check_share`], [`OrgPolicy::check_label`]), so that the CLI,
//! the tray app and the broker reach the same verdict from the same policy
//! and every refusal names the rule it broke ([`PolicyViolation::rule`]).

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::{Email, KsfParams, ParseError, invalid};

/// A classification label a folder (and the files in it) can carry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// Public information.
    Public,
    /// Internal to the organisation.
    Internal,
    /// Confidential.
    Confidential,
    /// Personal data (GDPR).
    Personal,
    /// Social-security data.
    Social,
    /// Medical data.
    Medical,
}

impl Label {
    /// Every label, in the order of the policy document.
    pub const ALL: [Label; 6] = [
        Label::Public,
        Label::Internal,
        Label::Confidential,
        Label::Personal,
        Label::Social,
        Label::Medical,
    ];

    /// The lower-case name used on the wire, in the CLI and in file metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Public => "public",
            Label::Internal => "internal",
            Label::Confidential => "confidential",
            Label::Personal => "personal",
            Label::Social => "social",
            Label::Medical => "medical",
        }
    }

    /// Parses a label name (case-insensitive).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let lower = text.trim().to_ascii_lowercase();
        Label::ALL
            .into_iter()
            .find(|l| l.as_str() == lower)
            .ok_or_else(|| {
                invalid(
                    "label",
                    "must be one of public, internal, confidential, personal, social, medical",
                )
            })
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Label {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Label::parse(s)
    }
}

/// Sensitivity level a label maps to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Unclassified.
    Unclassified,
    /// Sensitive but unclassified.
    SensitiveUnclassified,
    /// Classified.
    Classified,
    /// Secret.
    Secret,
}

/// What the policy says about one label.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LabelRule {
    /// The label this rule is about.
    pub label: Label,
    /// Its sensitivity level.
    pub sensitivity: Sensitivity,
    /// Whether files with this label may be shared with addresses outside the
    /// organisation's domains. `false` overrides
    /// [`OrgPolicy::external_sharing`].
    pub external_allowed: bool,
    /// When set, only members of this broker group may receive files with
    /// this label.
    #[serde(default)]
    pub only_group: Option<String>,
}

/// The organisation policy, as stored on the broker (`GET /v1/policy`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OrgPolicy {
    /// Minimum zxcvbn score (0..=4) for new passwords.
    pub min_password_score: u8,
    /// Minimum Argon2id parameters for password-derived keys.
    pub min_ksf: KsfParams,
    /// Whether every user must seal a copy of their identity to the
    /// organisation recovery key.
    pub recovery_mandatory: bool,
    /// Whether sharing with addresses outside [`OrgPolicy::org_domains`] is
    /// allowed at all.
    pub external_sharing: bool,
    /// The organisation's e-mail domains (lower case). Empty means every
    /// address counts as inside.
    pub org_domains: Vec<String>,
    /// Whether new folders must use file-name encryption.
    pub require_name_encryption: bool,
    /// The labels users may choose, with their rules. A label that is not
    /// listed is not allowed.
    pub labels: Vec<LabelRule>,
}

/// A decision against the policy, naming the rule that was broken.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("refused by policy rule `{rule}`: {detail}")]
pub struct PolicyViolation {
    /// Stable rule name, e.g. `labels.medical.only_group`.
    pub rule: String,
    /// Human-readable explanation.
    pub detail: String,
}

fn violation(rule: impl Into<String>, detail: impl Into<String>) -> PolicyViolation {
    PolicyViolation {
        rule: rule.into(),
        detail: detail.into(),
    }
}

impl Default for OrgPolicy {
    /// A permissive policy for a single user or a new organisation: every
    /// label allowed, medical and social data never outside the domain, no
    /// mandatory recovery, the format's minimum Argon2id parameters.
    fn default() -> Self {
        let rule = |label, sensitivity, external_allowed| LabelRule {
            label,
            sensitivity,
            external_allowed,
            only_group: None,
        };
        OrgPolicy {
            min_password_score: 3,
            min_ksf: KsfParams {
                m_cost_kib: 64 * 1024,
                t_cost: 3,
                p_cost: 1,
            },
            recovery_mandatory: false,
            external_sharing: true,
            org_domains: Vec::new(),
            require_name_encryption: true,
            labels: vec![
                rule(Label::Public, Sensitivity::Unclassified, true),
                rule(Label::Internal, Sensitivity::SensitiveUnclassified, true),
                rule(Label::Confidential, Sensitivity::Classified, true),
                rule(Label::Personal, Sensitivity::Classified, true),
                rule(Label::Social, Sensitivity::Secret, false),
                rule(Label::Medical, Sensitivity::Secret, false),
            ],
        }
    }
}

impl OrgPolicy {
    /// Largest number of label rules and domains accepted.
    pub const MAX_ENTRIES: usize = 64;

    /// Checks that the policy is well-formed: score in range, each label at
    /// most once, domains non-empty and lower case, bounded lists.
    pub fn validate(&self) -> Result<(), ParseError> {
        if self.min_password_score > 4 {
            return Err(invalid("min_password_score", "must be 0..=4"));
        }
        if self.labels.len() > Self::MAX_ENTRIES || self.org_domains.len() > Self::MAX_ENTRIES {
            return Err(invalid("policy", "too many labels or domains"));
        }
        for (i, r) in self.labels.iter().enumerate() {
            if self.labels[..i].iter().any(|o| o.label == r.label) {
                return Err(invalid("labels", "a label is listed twice"));
            }
            if let Some(g) = &r.only_group
                && (g.is_empty() || g.len() > 64)
            {
                return Err(invalid("labels.only_group", "length must be 1..=64"));
            }
        }
        for d in &self.org_domains {
            if d.is_empty() || d.len() > 253 || d.contains('@') || d.to_ascii_lowercase() != *d {
                return Err(invalid("org_domains", "must be lower-case domain names"));
            }
        }
        Ok(())
    }

    /// The rule for `label`, if the label is allowed.
    pub fn rule(&self, label: Label) -> Option<&LabelRule> {
        self.labels.iter().find(|r| r.label == label)
    }

    /// Whether `email` belongs to the organisation's domains.
    pub fn is_internal(&self, email: &Email) -> bool {
        if self.org_domains.is_empty() {
            return true;
        }
        let domain = email.as_str().rsplit('@').next().unwrap_or_default();
        self.org_domains.iter().any(|d| d == domain)
    }

    /// Whether a folder may carry `label`.
    pub fn check_label(&self, label: Label) -> Result<&LabelRule, PolicyViolation> {
        self.rule(label).ok_or_else(|| {
            violation(
                "labels",
                format!("the label `{label}` is not allowed by the organisation"),
            )
        })
    }

    /// Whether content labelled `label` (or unlabelled, `None`) may be shared
    /// with `recipient`, who is a member of `recipient_groups`.
    pub fn check_share(
        &self,
        label: Option<Label>,
        recipient: &Email,
        recipient_groups: &[String],
    ) -> Result<(), PolicyViolation> {
        let internal = self.is_internal(recipient);
        if !internal && !self.external_sharing {
            return Err(violation(
                "external_sharing",
                format!("{recipient} is outside the organisation and external sharing is off"),
            ));
        }
        let Some(label) = label else { return Ok(()) };
        let rule = self.check_label(label)?;
        if !internal && !rule.external_allowed {
            return Err(violation(
                format!("labels.{label}.external_allowed"),
                format!(
                    "`{label}` content may not leave the organisation; {recipient} is outside it"
                ),
            ));
        }
        if let Some(group) = &rule.only_group
            && !recipient_groups.iter().any(|g| g == group)
        {
            return Err(violation(
                format!("labels.{label}.only_group"),
                format!(
                    "`{label}` content may only go to members of group `{group}`; {recipient} is not one"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> Email {
        Email::parse(s).expect("valid email")
    }

    fn org() -> OrgPolicy {
        let mut p = OrgPolicy {
            org_domains: vec!["example.org".into()],
            ..OrgPolicy::default()
        };
        for r in &mut p.labels {
            if r.label == Label::Medical {
                r.only_group = Some("doctors".into());
            }
        }
        p
    }

    #[test]
    fn default_policy_is_valid_and_roundtrips() {
        let p = OrgPolicy::default();
        p.validate().expect("valid");
        let json = serde_json::to_string(&p).expect("serialise");
        let back: OrgPolicy = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, p);
    }

    #[test]
    fn medical_only_to_the_named_group() {
        let p = org();
        let bob = email("bob@example.org");
        let err = p
            .check_share(Some(Label::Medical), &bob, &["finance".into()])
            .expect_err("not a doctor");
        assert_eq!(err.rule, "labels.medical.only_group");
        p.check_share(Some(Label::Medical), &bob, &["doctors".into()])
            .expect("doctor may read");
    }

    #[test]
    fn outside_domain_rules() {
        let mut p = org();
        let eve = email("eve@elsewhere.net");
        p.check_share(Some(Label::Internal), &eve, &[])
            .expect("internal may leave by default");
        let err = p
            .check_share(Some(Label::Social), &eve, &[])
            .expect_err("social never leaves");
        assert_eq!(err.rule, "labels.social.external_allowed");
        p.external_sharing = false;
        let err = p.check_share(None, &eve, &[]).expect_err("no external");
        assert_eq!(err.rule, "external_sharing");
        p.check_share(None, &email("bob@example.org"), &[])
            .expect("inside is fine");
    }

    #[test]
    fn unlisted_label_is_refused_and_bad_policies_rejected() {
        let mut p = org();
        p.labels.retain(|r| r.label != Label::Public);
        let err = p.check_label(Label::Public).expect_err("not listed");
        assert_eq!(err.rule, "labels");
        p.labels.push(p.labels[0].clone());
        assert!(p.validate().is_err());
        let mut q = org();
        q.min_password_score = 5;
        assert!(q.validate().is_err());
        let mut r = org();
        r.org_domains.push("Example.ORG".into());
        assert!(r.validate().is_err());
    }

    #[test]
    fn label_names_parse() {
        for l in Label::ALL {
            assert_eq!(Label::parse(&l.as_str().to_uppercase()).expect("parse"), l);
        }
        assert!(Label::parse("secret").is_err());
        let json = serde_json::to_string(&Label::Medical).expect("ser");
        assert_eq!(json, "\"medical\"");
    }
}
