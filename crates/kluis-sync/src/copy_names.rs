//! Names of what Kluis keeps aside in a plaintext folder: conflict copies
//! (docs/FORMAT.md §8.6) and the trash (docs/SYNC.md). This module is the
//! only place that writes these names, recognises them and parses them back;
//! the executor, the agent (`kluis conflicts`) and the tray call it.
//!
//! ```text
//! conflict copy = <stem> " (conflict " <device> " " <YYYY-MM-DD HHMMSS> ")" <.ext>
//! trash entry   = ".kluis-trash/" <YYYY-MM-DD> "/" <path> [ "." <n> ]     n = 2, 3, …
//! damaged copy  = <path> ".damaged.kls"                                (kept in the trash)
//! ```

use std::fmt;

/// The trash folder at the root of a plaintext folder.
pub const TRASH_DIR: &str = ".kluis-trash";

/// What a conflict name puts between the stem and the device.
const MARKER: &str = " (conflict ";

/// `YYYY-MM-DD HHMMSS` (UTC) for a time in ns, rounded down to the second;
/// no character Windows forbids (FORMAT.md §8.6).
pub fn format_date(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}{:02}{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A Kluis conflict-copy name (FORMAT.md §8.6): `original` kept aside by
/// `device` at `date`.
///
/// `<.ext>` is the part of `original` from its last `.`, not counting a
/// leading dot, so `notes.txt` gives `notes (conflict laptop 2026-01-02
/// 120000).txt` and `.bashrc` gives `.bashrc (conflict laptop 2026-01-02
/// 120000)`. [`ConflictName::parse`] gives back what
/// [`ConflictName::format`] wrote whenever `date` has the form of
/// [`format_date`] and `device` does not hold ` (conflict `.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConflictName {
    /// The name (one path component) of the file this is a copy of.
    pub original: String,
    /// Who made the copy: a device name, with ` 2`, ` 3`, … appended when
    /// the name was taken; `sync` for a sync client's copy (FORMAT.md §8.5).
    pub device: String,
    /// `YYYY-MM-DD HHMMSS` in UTC ([`format_date`]).
    pub date: String,
}

impl ConflictName {
    /// The conflict name of `original` for `device` at `date`.
    pub fn new(original: &str, device: &str, date: &str) -> Self {
        ConflictName {
            original: original.to_owned(),
            device: device.to_owned(),
            date: date.to_owned(),
        }
    }

    /// The names to try, in order, until one is free: `device`, then
    /// `device 2`, `device 3`, … (FORMAT.md §8.6).
    pub fn candidates<'a>(
        original: &'a str,
        device: &'a str,
        date: &'a str,
    ) -> impl Iterator<Item = ConflictName> + 'a {
        (1..=u32::MAX).map(move |n| {
            let device = if n == 1 {
                device.to_owned()
            } else {
                format!("{device} {n}")
            };
            ConflictName {
                original: original.to_owned(),
                device,
                date: date.to_owned(),
            }
        })
    }

    /// The file name: `<stem> (conflict <device> <date>)<.ext>`.
    pub fn format(&self) -> String {
        let (stem, ext) = split_ext(&self.original);
        format!("{stem}{MARKER}{} {}){ext}", self.device, self.date)
    }

    /// Read a file name (one path component) back, `None` when it is not
    /// a Kluis conflict copy. The date is `YYYY-MM-DD HHMMSS` or, for names
    /// made by hand, `YYYY-MM-DD`; a name that merely holds the word
    /// "conflict" is not a conflict copy.
    ///
    /// When a name reads more than one way (a copy of a copy, a device name
    /// with parentheses), the last ` (conflict ` that starts a well-formed
    /// part wins, then the first `)` after it: a copy of
    /// `a (conflict x …).txt` names that file, not `a.txt`.
    pub fn parse(name: &str) -> Option<Self> {
        if name.contains('/') {
            return None;
        }
        let markers: Vec<usize> = name.match_indices(MARKER).map(|(i, _)| i).collect();
        markers.into_iter().rev().find_map(|start| {
            let stem = &name[..start];
            let rest = &name[start + MARKER.len()..];
            rest.match_indices(')').find_map(|(close, _)| {
                let (device, date) = split_device_date(&rest[..close])?;
                let ext = &rest[close + 1..];
                let original = format!("{stem}{ext}");
                let well_formed = !original.is_empty()
                    && original != "."
                    && original != ".."
                    && split_ext(&original) == (stem, ext);
                well_formed.then(|| ConflictName::new(&original, device, date))
            })
        })
    }

    /// The conflict copies to try for the file at `path` (a `/`-separated
    /// path in the plaintext folder), in order, as paths next to it.
    pub fn candidate_paths<'a>(
        path: &'a str,
        device: &'a str,
        date: &'a str,
    ) -> impl Iterator<Item = String> + 'a {
        let (parent, name) = split_parent(path);
        Self::candidates(name, device, date).map(move |c| join(parent, &c.format()))
    }
}

impl fmt::Display for ConflictName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format())
    }
}

/// Whether the last component of `path` is a Kluis conflict copy.
pub fn is_conflict_copy(path: &str) -> bool {
    ConflictName::parse(split_parent(path).1).is_some()
}

/// The path of the file a conflict copy at `path` is a copy of, `None`
/// when it is not a conflict copy: `a/b (conflict dev 2026-01-01
/// 120000).txt` → `a/b.txt`.
pub fn original_path(path: &str) -> Option<String> {
    let (parent, name) = split_parent(path);
    ConflictName::parse(name).map(|c| join(parent, &c.original))
}

/// The trash day folder's name (`YYYY-MM-DD`, UTC) for a time in ns.
pub fn trash_day(now_ns: i64) -> String {
    let mut day = format_date(now_ns);
    day.truncate(10);
    day
}

/// Where the `n`-th try (from 1) puts `path` in the trash of `day`,
/// relative to the plaintext root: `.kluis-trash/<day>/<path>`, then
/// `<path>.2`, `<path>.3`, … when the earlier ones are taken.
pub fn trash_path(day: &str, path: &str, n: u32) -> String {
    if n <= 1 {
        format!("{TRASH_DIR}/{day}/{path}")
    } else {
        format!("{TRASH_DIR}/{day}/{path}.{n}")
    }
}

/// The name under which a damaged ciphertext of `path` is kept in the
/// trash: `<path>.damaged.kls`.
pub fn damaged_name(path: &str) -> String {
    format!("{path}.damaged.kls")
}

/// Whether `dir_name`, a folder directly in the trash, is a day older than
/// `days` days before `now_ns` (the purge removes it).
pub fn is_expired_trash_day(dir_name: &str, now_ns: i64, days: u32) -> bool {
    let cutoff = trash_day(now_ns - i64::from(days) * 86_400 * 1_000_000_000);
    dir_name.len() == 10 && dir_name < cutoff.as_str()
}

/// `name` → (stem, ext): ext from the last `.`, not counting a leading dot.
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    }
}

/// `<device> <date>` → (device, date) for a non-empty device and a date of
/// the form `YYYY-MM-DD HHMMSS` or `YYYY-MM-DD`.
fn split_device_date(s: &str) -> Option<(&str, &str)> {
    const FULL: &str = "dddd-dd-dd dddddd";
    const DAY: &str = "dddd-dd-dd";
    [FULL, DAY].into_iter().find_map(|shape| {
        let at = s.len().checked_sub(shape.len())?;
        let date = s.get(at..)?;
        let fits = date.bytes().zip(shape.bytes()).all(|(b, p)| {
            if p == b'd' {
                b.is_ascii_digit()
            } else {
                b == p
            }
        });
        let device = s.get(..at)?.strip_suffix(' ')?;
        (fits && !device.is_empty()).then_some((device, date))
    })
}

fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_date(0), "1970-01-01 000000");
        assert_eq!(
            format_date(1_709_251_199 * 1_000_000_000),
            "2024-02-29 235959"
        );
        assert_eq!(format_date(1_500_000_000 - 1), "1970-01-01 000001");
        assert_eq!(trash_day(1_709_251_199 * 1_000_000_000), "2024-02-29");
    }

    fn conflict_name(name: &str, device: &str, date: &str) -> String {
        ConflictName::new(name, device, date).format()
    }

    #[test]
    fn conflict_names() {
        assert_eq!(
            conflict_name("notes.txt", "laptop", "2026-01-02"),
            "notes (conflict laptop 2026-01-02).txt"
        );
        assert_eq!(conflict_name(".bashrc", "d", "x"), ".bashrc (conflict d x)");
        assert_eq!(
            conflict_name("Makefile", "d", "x"),
            "Makefile (conflict d x)"
        );
        // FORMAT.md §8.6's example.
        assert_eq!(
            conflict_name("report.pdf", "sync", "2026-12-07 122554"),
            "report (conflict sync 2026-12-07 122554).pdf"
        );
    }

    #[test]
    fn parse_gives_back_what_format_wrote() {
        let originals = [
            "notes.txt",
            "Report 2024 final.docx",
            "archive.tar.gz",
            "a.b.c.d",
            "a (1).pdf",
            "(draft) plan (v2).odt",
            "ends with paren)",
            "x.y (z)",
            "ünïcødé ✓.txt",
            "日本語のファイル",
            "Makefile",
            "README",
            ".bashrc",
            ".config.json",
            "a.",
            "...",
            "file (conflict notes).txt",
            "notes (conflict laptop 2026-01-02 120000).txt",
            "x.y (conflict z 2026-01-02 120000)",
            "conflict",
        ];
        let devices = [
            "laptop",
            "sync",
            "sync 2",
            "Jan's laptop (work)",
            "host.local",
            "ПК-2",
            "2026-01-01",
        ];
        let dates = ["2026-12-07 122554", "1970-01-01 000000", "2026-01-01"];
        for original in originals {
            for device in devices {
                for date in dates {
                    let c = ConflictName::new(original, device, date);
                    let name = c.format();
                    assert_eq!(ConflictName::parse(&name).as_ref(), Some(&c), "{name}");
                    assert!(is_conflict_copy(&name), "{name}");
                    assert_eq!(
                        original_path(&format!("dir/sub/{name}")),
                        Some(format!("dir/sub/{original}"))
                    );
                }
            }
        }
    }

    #[test]
    fn names_that_only_mention_conflicts_are_not_copies() {
        for name in [
            "conflict",
            "conflict.txt",
            "conflicts (2026-01-01 120000).txt",
            "notes (conflict).txt",
            "notes (conflict laptop).txt",
            "notes (conflict laptop 2026-01-02).txt.bak.old",
            "notes (conflict 2026-01-02 120000).txt",
            "notes (conflict  2026-01-02 120000).txt",
            "notes (conflict laptop 2026-1-2 120000).txt",
            "notes (conflict laptop 2026-01-02 12:00).txt",
            "notes (Conflict laptop 2026-01-02 120000).txt",
            "notes (conflicted copy 2026-01-02).txt",
            "notes (conflict laptop 2026-01-02 120000",
            " (conflict laptop 2026-01-02 120000).txt",
            " (conflict laptop 2026-01-02 120000)",
            ". (conflict laptop 2026-01-02 120000)",
            "a (conflict laptop 2026-01-02 120000)x",
            "how to resolve a (conflict of interest).pdf",
            "plain.txt",
            "",
        ] {
            assert_eq!(ConflictName::parse(name), None, "{name:?}");
            assert!(!is_conflict_copy(name), "{name:?}");
            assert!(!is_conflict_copy(&format!("d/{name}")), "{name:?}");
            assert_eq!(original_path(name), None, "{name:?}");
        }
        // A conflict name in a parent directory does not make a copy.
        assert!(!is_conflict_copy("a (conflict d 2026-01-02 120000)/b.txt"));
    }

    #[test]
    fn a_copy_of_a_copy_names_the_copy() {
        let first = conflict_name("a.txt", "x", "2026-01-01 000000");
        let second = conflict_name(&first, "y", "2026-02-02 000000");
        assert_eq!(
            second,
            "a (conflict x 2026-01-01 000000) (conflict y 2026-02-02 000000).txt"
        );
        let c = ConflictName::parse(&second).unwrap();
        assert_eq!(
            (c.original.as_str(), c.device.as_str()),
            (first.as_str(), "y")
        );
        assert_eq!(original_path(&c.original).as_deref(), Some("a.txt"));
    }

    /// Whatever reads as a conflict copy is written back to the same bytes,
    /// however many ways it could be read.
    #[test]
    fn whatever_parses_formats_back() {
        for name in [
            "n (conflict a 2026-01-01).y D)",
            "n (conflict a (b) 2026-01-01 000000) (conflict c 2026-01-01).x",
            "a.b (conflict d 2026-01-01 000000).c (conflict e 2026-01-01)",
            "x (conflict d 2026-01-01 000000).y (conflict z)",
            "ü (conflict ✓ 2026-01-01 000000)",
            ".h (conflict d 2026-01-01 000000)",
        ] {
            let c = ConflictName::parse(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(c.format(), name);
        }
    }

    #[test]
    fn candidates_number_the_device() {
        let paths: Vec<String> =
            ConflictName::candidate_paths("d/e/n.txt", "sync", "2026-01-01 000000")
                .take(3)
                .collect();
        assert_eq!(
            paths,
            [
                "d/e/n (conflict sync 2026-01-01 000000).txt",
                "d/e/n (conflict sync 2 2026-01-01 000000).txt",
                "d/e/n (conflict sync 3 2026-01-01 000000).txt",
            ]
        );
        for p in &paths {
            assert_eq!(original_path(p).as_deref(), Some("d/e/n.txt"));
        }
        assert_eq!(
            ConflictName::candidate_paths("top", "pc", "2026-01-01 000000").next(),
            Some("top (conflict pc 2026-01-01 000000)".to_owned())
        );
    }

    #[test]
    fn trash_names() {
        assert_eq!(
            trash_path("2026-01-02", "a/b.txt", 1),
            ".kluis-trash/2026-01-02/a/b.txt"
        );
        assert_eq!(
            trash_path("2026-01-02", "a/b.txt", 3),
            ".kluis-trash/2026-01-02/a/b.txt.3"
        );
        assert_eq!(damaged_name("a/b.txt"), "a/b.txt.damaged.kls");
        let day = 86_400 * 1_000_000_000;
        let now = 40 * day; // 1970-02-10
        assert!(is_expired_trash_day("1970-01-10", now, 30));
        assert!(!is_expired_trash_day("1970-01-11", now, 30));
        assert!(!is_expired_trash_day("1970-01-1", now, 30));
        assert!(!is_expired_trash_day("notes", now, 30));
    }
}
