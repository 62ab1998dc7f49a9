//! JSONL and CSV exports, and reading them back for verification.
//! RECOVERY.md §6.3.

use std::io::{BufRead, Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::entry::{
    Action, Actor, AuditEntry, AuditRow, ChainHash, DetailKey, Details, Value, ValueKind,
};
use crate::error::AuditError;

/// The flat form of a row: one JSONL object, and (with `details` as compact
/// JSON text) one CSV record. Also a convenient shape for database columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Sequence number.
    pub seq: u64,
    /// Unix seconds (hashed).
    pub time: i64,
    /// The same instant as `YYYY-MM-DDTHH:MM:SSZ`, for people; not hashed,
    /// but checked against `time` on import.
    pub time_utc: String,
    /// `user:…`, `admin:…` or `system`.
    pub actor: String,
    /// Action code.
    pub action: String,
    /// Target (may be empty).
    pub target: String,
    /// Details: key code → string, number, boolean, or hex (hash, signature).
    pub details: Map<String, Json>,
    /// Previous row's hash, hex.
    pub prev_hash: String,
    /// This row's hash, hex.
    pub hash: String,
}

impl From<&AuditRow> for AuditRecord {
    fn from(row: &AuditRow) -> Self {
        let details = row
            .entry
            .details
            .iter()
            .map(|(k, v)| {
                let json = match v {
                    Value::Text(t) => Json::String(t.clone()),
                    Value::Int(i) => Json::from(*i),
                    Value::Bool(b) => Json::Bool(*b),
                    Value::Hash(h) => Json::String(hex::encode(h)),
                    Value::Signature(s) => Json::String(hex::encode(s)),
                };
                (k.code().to_owned(), json)
            })
            .collect();
        AuditRecord {
            seq: row.seq,
            time: row.entry.time,
            time_utc: utc(row.entry.time),
            actor: row.entry.actor.to_string(),
            action: row.entry.action.code().to_owned(),
            target: row.entry.target.clone(),
            details,
            prev_hash: row.prev_hash.to_hex(),
            hash: row.hash.to_hex(),
        }
    }
}

impl TryFrom<AuditRecord> for AuditRow {
    type Error = AuditError;

    /// Rebuilds a row; field rules are checked, the hash is not (that is
    /// [`crate::verify`]'s job, so that a tampered export is named there).
    fn try_from(r: AuditRecord) -> Result<Self, AuditError> {
        if !r.time_utc.is_empty() && r.time_utc != utc(r.time) {
            return Err(AuditError::Invalid {
                field: "time_utc",
                reason: "does not match time",
            });
        }
        let mut details = Details::new();
        for (code, json) in r.details {
            let key = DetailKey::from_code(&code)?;
            let value = match (key.kind(), json) {
                (ValueKind::Text, Json::String(s)) => Value::Text(s),
                (ValueKind::Int, Json::Number(n)) => Value::Int(
                    n.as_i64()
                        .ok_or(AuditError::WrongValueType { key: key.code() })?,
                ),
                (ValueKind::Bool, Json::Bool(b)) => Value::Bool(b),
                (ValueKind::Hash, Json::String(s)) => {
                    let mut h = [0u8; 32];
                    hex::decode_to_slice(&s, &mut h)
                        .map_err(|_| AuditError::WrongValueType { key: key.code() })?;
                    Value::Hash(h)
                }
                (ValueKind::Signature, Json::String(s)) => {
                    let mut sig = [0u8; 64];
                    hex::decode_to_slice(&s, &mut sig)
                        .map_err(|_| AuditError::WrongValueType { key: key.code() })?;
                    Value::Signature(sig)
                }
                _ => return Err(AuditError::WrongValueType { key: key.code() }),
            };
            details.insert(key, value)?;
        }
        Ok(AuditRow {
            seq: r.seq,
            entry: AuditEntry {
                time: r.time,
                actor: Actor::parse(&r.actor)?,
                action: Action::from_code(&r.action)?,
                target: r.target,
                details,
            },
            prev_hash: ChainHash::from_hex(&r.prev_hash)?,
            hash: ChainHash::from_hex(&r.hash)?,
        })
    }
}

/// Writes one JSON object per line.
pub fn export_jsonl<W: Write>(rows: &[AuditRow], mut out: W) -> Result<(), AuditError> {
    for row in rows {
        serde_json::to_writer(&mut out, &AuditRecord::from(row))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Reads a JSONL export back (blank lines are skipped).
pub fn import_jsonl<R: BufRead>(input: R) -> Result<Vec<AuditRow>, AuditError> {
    let mut rows = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| AuditError::Import {
            line: n + 1,
            reason,
        };
        let record: AuditRecord = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        rows.push(AuditRow::try_from(record).map_err(|e| bad(e.to_string()))?);
    }
    Ok(rows)
}

#[derive(Serialize, Deserialize)]
struct CsvRecord {
    seq: u64,
    time: i64,
    time_utc: String,
    actor: String,
    action: String,
    target: String,
    details: String,
    prev_hash: String,
    hash: String,
}

/// Writes a CSV export with a header row; `details` is compact JSON text.
pub fn export_csv<W: Write>(rows: &[AuditRow], out: W) -> Result<(), AuditError> {
    let mut w = csv::Writer::from_writer(out);
    for row in rows {
        let r = AuditRecord::from(row);
        w.serialize(CsvRecord {
            seq: r.seq,
            time: r.time,
            time_utc: r.time_utc,
            actor: r.actor,
            action: r.action,
            target: r.target,
            details: serde_json::to_string(&r.details)?,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })?;
    }
    w.flush()?;
    Ok(())
}

/// Reads a CSV export back.
pub fn import_csv<R: Read>(input: R) -> Result<Vec<AuditRow>, AuditError> {
    let mut rows = Vec::new();
    for (n, record) in csv::Reader::from_reader(input)
        .deserialize::<CsvRecord>()
        .enumerate()
    {
        let bad = |reason: String| AuditError::Import {
            line: n + 1,
            reason,
        };
        let r = record.map_err(|e| bad(e.to_string()))?;
        let details: Map<String, Json> =
            serde_json::from_str(&r.details).map_err(|e| bad(e.to_string()))?;
        let record = AuditRecord {
            seq: r.seq,
            time: r.time,
            time_utc: r.time_utc,
            actor: r.actor,
            action: r.action,
            target: r.target,
            details,
            prev_hash: r.prev_hash,
            hash: r.hash,
        };
        rows.push(AuditRow::try_from(record).map_err(|e| bad(e.to_string()))?);
    }
    Ok(rows)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian; H. Hinnant's
/// days-to-civil). Years outside 0..=9999 print as the raw number.
fn utc(t: i64) -> String {
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    const MIN: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    if !(MIN..=MAX).contains(&t) {
        return t.to_string();
    }
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
        assert_eq!(utc(i64::MAX), i64::MAX.to_string());
    }
}
