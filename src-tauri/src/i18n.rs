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
}
