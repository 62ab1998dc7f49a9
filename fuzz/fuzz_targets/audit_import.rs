//! Audit-log exports read back for verification (RECOVERY.md §6.3): JSONL
//! and CSV import never panic, verifying what they import never panics,
//! and an imported log exported again imports to the same rows. The first
//! input byte selects JSONL or CSV.
#![no_main]

use kluis_audit::{
    AuditRow, canonical_encoding, export_csv, export_jsonl, import_csv, import_jsonl, verify,
};
use libfuzzer_sys::fuzz_target;

fn check(rows: &[AuditRow]) {
    let _ = verify(rows, &[3u8; 32]);
    for r in rows {
        let _ = canonical_encoding(r.seq, &r.entry);
    }
    let mut jsonl = Vec::new();
    export_jsonl(rows, &mut jsonl).expect("export jsonl");
    let back = import_jsonl(&jsonl[..]).expect("exported jsonl imports");
    assert!(back == rows, "jsonl round trip differs");
    let mut csv = Vec::new();
    export_csv(rows, &mut csv).expect("export csv");
    let back = import_csv(&csv[..]).expect("exported csv imports");
    assert!(back == rows, "csv round trip differs");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let rows = if mode & 1 == 0 {
        import_jsonl(rest)
    } else {
        import_csv(rest)
    };
    if let Ok(rows) = rows {
        check(&rows);
    }
});
