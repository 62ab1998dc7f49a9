//! The shell's strings (tray menu, notifications) come from the same
//! translation files as the web UI (`ui/src/i18n/*.json`).

use std::collections::HashMap;
use std::sync::OnceLock;

/// Languages with a translation file.
pub const LANGUAGES: [&str; 3] = ["en", "nl", "fr"];

fn table(lang: &str) -> &'static HashMap<String, String> {
    static EN: OnceLock<HashMap<String, String>> = OnceLock::new();
    static NL: OnceLock<HashMap<String, String>> = OnceLock::new();
    static FR: OnceLock<HashMap<String, String>> = OnceLock::new();
    let (cell, text) = match lang {
        "nl" => (&NL, include_str!("../../ui/src/i18n/nl.json")),
        "fr" => (&FR, include_str!("../../ui/src/i18n/fr.json")),
        _ => (&EN, include_str!("../../ui/src/i18n/en.json")),
    };
    cell.get_or_init(|| serde_json::from_str(text).unwrap_or_default())
}

/// The OS language among ours (`LC_ALL`, `LC_MESSAGES`, `LANG`), else English.
pub fn os_language() -> &'static str {
    for var in ["LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"] {
        if let Ok(v) = std::env::var(var) {
            let code = v.get(..2).unwrap_or("").to_ascii_lowercase();
            if let Some(l) = LANGUAGES.iter().find(|l| **l == code) {
                return l;
            }
            if !v.is_empty() && v != "C" && v != "POSIX" {
                break;
            }
        }
    }
    "en"
}

/// `key` in `lang`, falling back to English, then to the key itself;
/// `{name}` placeholders are replaced from `args`.
pub fn t(lang: &str, key: &str, args: &[(&str, String)]) -> String {
    let s = table(lang)
        .get(key)
        .or_else(|| table("en").get(key))
        .cloned()
        .unwrap_or_else(|| key.to_owned());
    args.iter()
        .fold(s, |s, (k, v)| s.replace(&format!("{{{k}}}"), v))
}

/// The plural category of `n` in `lang` for the keys we have (`one`,
/// `other`), as `Intl.PluralRules` picks it in the UI: French counts 0 and 1
/// as singular, English and Dutch only 1.
fn plural_category(lang: &str, n: u64) -> &'static str {
    match (lang, n) {
        ("fr", 0 | 1) | (_, 1) => "one",
        _ => "other",
    }
}

/// A count in words: `key.one` or `key.other` in `lang`, with `{n}` set.
pub fn plural(lang: &str, key: &str, n: u64, args: &[(&str, String)]) -> String {
    let key = format!("{key}.{}", plural_category(lang, n));
    let mut all = vec![("n", n.to_string())];
    all.extend(args.iter().map(|(k, v)| (*k, v.clone())));
    t(lang, &key, &all)
}

/// Why a pair needs attention, in `lang` (the UI's `alertText`, for the
/// notifications).
pub fn alert_text(lang: &str, alert: &kluis_agent::Alert) -> String {
    use kluis_agent::Alert;
    match alert {
        Alert::MassDeletion {
            deletions,
            total,
            missing_in_mirror,
            sample,
        } => {
            let mut parts = Vec::new();
            if *missing_in_mirror > 0 {
                parts.push(plural(
                    lang,
                    "alert.gone_from_mirror",
                    u64::from(*missing_in_mirror),
                    &[],
                ));
            }
            let from_plain = deletions.saturating_sub(*missing_in_mirror);
            if from_plain > 0 {
                parts.push(plural(
                    lang,
                    "alert.gone_from_plain",
                    u64::from(from_plain),
                    &[],
                ));
            }
            let list = sample.join(", ");
            let more = (*deletions as usize).saturating_sub(sample.len()) as u64;
            let examples = if more > 0 {
                plural(lang, "alert.and_more", more, &[("list", list)])
            } else {
                list
            };
            t(
                lang,
                "alert.mass_deletion",
                &[
                    ("total", total.to_string()),
                    ("what", parts.join(&t(lang, "alert.list_and", &[]))),
                    ("examples", examples),
                ],
            )
        }
        Alert::NoSpace { path, more, .. } | Alert::Damaged { path, more, .. } => {
            let kind = if matches!(alert, Alert::NoSpace { .. }) {
                "no_space"
            } else {
                "damaged"
            };
            let args = [("path", path.clone())];
            if *more > 0 {
                plural(lang, &format!("alert.{kind}.more"), u64::from(*more), &args)
            } else {
                t(lang, &format!("alert.{kind}"), &args)
            }
        }
        Alert::LocalRootEmpty => t(lang, "alert.local_root_empty", &[]),
        Alert::MirrorRootEmpty => t(lang, "alert.mirror_root_empty", &[]),
        Alert::NotSharedWithYou { .. } => t(lang, "alert.not_shared_with_you", &[]),
        Alert::SyncFailed { .. } => t(lang, "alert.sync_failed", &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_english_key() {
        let en = table("en");
        assert!(en.len() > 20);
        for lang in ["nl", "fr"] {
            let other = table(lang);
            let missing: Vec<_> = en.keys().filter(|k| !other.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
        }
    }

    #[test]
    fn placeholders_are_filled() {
        let s = t(
            "nl",
            "tray.status.attention",
            &[("conflicts", "2".into()), ("errors", "0".into())],
        );
        assert!(s.contains('2') && !s.contains('{'), "{s}");
    }

    #[test]
    fn counts_follow_each_language_and_alerts_are_translated() {
        assert_eq!(plural("en", "status.synced", 1, &[]), "1 file in sync");
        assert_eq!(plural("en", "status.synced", 0, &[]), "0 files in sync");
        assert_eq!(
            plural("nl", "status.synced", 2, &[]),
            "2 bestanden bijgewerkt"
        );
        assert_eq!(
            plural("fr", "status.synced", 0, &[]),
            "0 fichier synchronisé"
        );
        assert_eq!(
            plural("fr", "status.synced", 2, &[]),
            "2 fichiers synchronisés"
        );
        let a = kluis_agent::Alert::MassDeletion {
            deletions: 12,
            total: 20,
            missing_in_mirror: 12,
            sample: vec!["a.txt".into()],
        };
        let nl = alert_text("nl", &a);
        assert!(
            nl.contains("zijn er 12 weg") && nl.contains("a.txt en nog 11"),
            "{nl}"
        );
        let gone = kluis_agent::Alert::SyncFailed {
            detail: "io error: boom".into(),
        };
        assert!(!alert_text("fr", &gone).contains("boom"));
    }
}
