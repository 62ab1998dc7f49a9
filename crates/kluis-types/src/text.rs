//! Text that people read: names and audit text must show what they are.
//!
//! A bidi override (U+202E) makes "ann\u{202E}nimda" display as "annadmin";
//! a trailing space makes "ann " a second administrator who looks like
//! "ann". Names and free text that the broker stores and shows are refused
//! when they hold such characters (issue 18.4e): refusing is clearer than
//! silently rewriting what someone typed.

/// Why `text` is not fit to be shown as a name or audit text, or `None`.
/// Refused: control characters (Unicode `Cc`), the bidirectional formatting
/// characters (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), the
/// line and paragraph separators (U+2028, U+2029), and leading or trailing
/// whitespace. Empty text passes (callers decide whether it may be empty).
pub fn display_text_problem(text: &str) -> Option<&'static str> {
    if text.chars().any(char::is_control) {
        Some("contains control characters")
    } else if text.chars().any(is_bidi_or_separator) {
        Some("contains bidirectional formatting or line separator characters")
    } else if text.trim() != text {
        Some("starts or ends with whitespace")
    } else {
        None
    }
}

/// The invisible characters that reorder or break displayed text.
pub fn is_bidi_or_separator(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_named() {
        assert_eq!(display_text_problem("Ann de Vries"), None);
        assert_eq!(display_text_problem("Zoë Ødegård 李"), None);
        assert_eq!(display_text_problem(""), None);
        for bad in [
            "ann ",
            " ann",
            "ann\u{00A0}",
            "ann\t",
            "a\u{0}b",
            "a\nb",
            "ann\u{202E}nimda",
            "\u{2066}x\u{2069}",
            "a\u{061C}b",
            "a\u{200E}b",
            "a\u{200F}b",
            "a\u{202A}b",
            "a\u{2028}b",
        ] {
            assert!(display_text_problem(bad).is_some(), "{bad:?}");
        }
    }
}
