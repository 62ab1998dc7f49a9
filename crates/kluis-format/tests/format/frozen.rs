//! Frozen vectors: files written by earlier Kluis versions. Each `NAME.kluis`
//! has a `NAME.expect` with `key: value` lines; this harness walks the folder,
//! so adding a vector needs no code. Never regenerate existing vectors.

use std::collections::BTreeMap;
use std::io::Read;

use kluis_format::{Decryptor, Error, PayloadError, open_identity};
use sha2::{Digest, Sha256};

use crate::util::vectors_dir;

fn parse_expect(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn frozen_vectors_still_decrypt() {
    let dir = vectors_dir().join("frozen");
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/vectors/frozen")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "expect"))
    {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_owned();
        let exp = parse_expect(&std::fs::read_to_string(path).expect("read expect"));
        let who = &exp["identity"];
        let key = std::fs::read(dir.join(format!("{who}.key"))).expect("key file");
        let pass = std::fs::read(dir.join(format!("{who}.passphrase"))).expect("passphrase file");
        let id =
            open_identity(&key, &pass).unwrap_or_else(|e| panic!("{name}: identity {who}: {e}"));
        let recipient =
            std::fs::read_to_string(dir.join(format!("{who}.recipient"))).expect("recipient file");
        assert_eq!(
            recipient.trim(),
            id.recipient().to_string(),
            "{name}: recipient string changed"
        );
        let file = std::fs::read(dir.join(format!("{name}.kluis"))).expect("vector");
        let result = Decryptor::new(&file[..], &id).and_then(|mut d| {
            let mut out = Vec::new();
            d.read_to_end(&mut out).map_err(Error::from_io)?;
            Ok((out, d.metadata().clone()))
        });
        match exp["expect"].as_str() {
            "ok" => {
                let (plain, meta) = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(plain.len().to_string(), exp["length"], "{name}");
                assert_eq!(hex::encode(Sha256::digest(&plain)), exp["sha256"], "{name}");
                assert_eq!(
                    meta.name.as_deref(),
                    exp.get("name").map(String::as_str),
                    "{name}"
                );
                assert_eq!(
                    meta.label.as_deref(),
                    exp.get("label").map(String::as_str),
                    "{name}"
                );
            }
            "no-matching-recipient" => {
                assert!(matches!(result, Err(Error::NoMatchingRecipient)), "{name}")
            }
            "header-auth" => assert!(matches!(result, Err(Error::HeaderAuth)), "{name}"),
            "payload-chunk" => assert!(
                matches!(result, Err(Error::Payload(PayloadError::Chunk(_)))),
                "{name}"
            ),
            other => panic!("{name}: unknown expectation {other:?}"),
        }
        seen += 1;
    }
    assert!(
        seen >= 6,
        "expected at least 6 frozen vectors, found {seen}"
    );
}

/// docs/FORMAT.md §10 shows a complete file and the identity that opens it;
/// decrypt exactly those bytes so the document cannot drift from the code.
#[test]
fn worked_example_in_format_md_decrypts() {
    let doc = std::fs::read_to_string(vectors_dir().join("../../docs/FORMAT.md"))
        .expect("docs/FORMAT.md");
    let section = doc
        .split("## 10. A worked example")
        .nth(1)
        .expect("section 10");
    let secret_hex = section
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 128 && l.chars().all(|c| c.is_ascii_hexdigit()))
        .expect("identity secret line");
    let id = kluis_format::Identity::from_secret_bytes(&hex::decode(secret_hex).expect("hex"))
        .expect("identity");
    let mut file = Vec::new();
    for line in section.lines() {
        if let Some((off, bytes)) = line.split_once(": ")
            && off.len() == 4
            && off.chars().all(|c| c.is_ascii_hexdigit())
        {
            assert_eq!(usize::from_str_radix(off, 16).expect("offset"), file.len());
            file.extend(hex::decode(bytes.trim()).expect("dump hex"));
        }
    }
    assert_eq!(file.len(), 543);
    let mut d = Decryptor::new(&file[..], &id).expect("header");
    let mut out = Vec::new();
    d.read_to_end(&mut out).expect("payload");
    assert_eq!(out, b"Kluis worked example\n");
    assert_eq!(d.metadata().name.as_deref(), Some("example.txt"));
    assert_eq!(d.metadata().label.as_deref(), Some("internal"));
    assert!(section.contains(&id.recipient().fingerprint().to_string()));
}
