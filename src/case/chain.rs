//! The case event log's hash chain. Each entry's hash is SHA-256 over the previous entry's hash
//! and this entry's fields, length-prefixed so that no two different entries hash alike; editing,
//! deleting or reordering any entry breaks every hash after it.

use ring::digest::{Context, SHA256};

/// The `prev_hash` of a case's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What is hashed: everything an entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryContent<'a> {
    pub case_id: i64,
    pub seq: i64,
    pub kind: &'a str,
    pub actor: &'a str,
    pub payload: &'a str,
    pub at: &'a str,
}

pub fn entry_hash(prev_hash: &str, e: &EntryContent<'_>) -> String {
    let mut ctx = Context::new(&SHA256);
    for field in [prev_hash.as_bytes(), &e.case_id.to_be_bytes(), &e.seq.to_be_bytes(), e.kind.as_bytes(), e.actor.as_bytes(), e.payload.as_bytes(), e.at.as_bytes()] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field);
    }
    hex(ctx.finish().as_ref())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored entry as read back for verification.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub case_id: i64,
    pub seq: i64,
    pub kind: String,
    pub actor: String,
    pub payload: String,
    pub at: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ChainReport {
    pub entries: usize,
    pub intact: bool,
    /// The first entry (by `seq`) whose content or link does not match.
    pub first_bad_seq: Option<i64>,
    pub problem: Option<String>,
    /// The hash of the last entry: what an external anchor (a recording manifest, a court
    /// package) quotes.
    pub head: Option<String>,
}

/// Checks a case's entries, given in `seq` order.
pub fn verify(entries: &[StoredEntry]) -> ChainReport {
    let mut prev = GENESIS.to_string();
    for (i, e) in entries.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        let problem = if e.seq != expected_seq {
            Some(format!("entry {expected_seq} is missing (found seq {})", e.seq))
        } else if e.prev_hash != prev {
            Some(format!("entry {} does not link to the entry before it", e.seq))
        } else {
            let content = EntryContent { case_id: e.case_id, seq: e.seq, kind: &e.kind, actor: &e.actor, payload: &e.payload, at: &e.at };
            (entry_hash(&prev, &content) != e.hash).then(|| format!("entry {} was altered after it was written", e.seq))
        };
        if let Some(problem) = problem {
            return ChainReport { entries: entries.len(), intact: false, first_bad_seq: Some(expected_seq), problem: Some(problem), head: entries.last().map(|e| e.hash.clone()) };
        }
        prev = e.hash.clone();
    }
    ChainReport { entries: entries.len(), intact: true, first_bad_seq: None, problem: None, head: entries.last().map(|e| e.hash.clone()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<StoredEntry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let payload = format!("{{\"n\":{seq}}}");
                let c = EntryContent { case_id: 7, seq, kind: "note", actor: "staff:1", payload: &payload, at: "2026-11-29T00:00:00.000Z" };
                let hash = entry_hash(&prev, &c);
                let e = StoredEntry { case_id: 7, seq, kind: "note".into(), actor: "staff:1".into(), payload: payload.clone(), at: c.at.into(), prev_hash: prev.clone(), hash: hash.clone() };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let r = verify(&chain(5));
        assert!(r.intact, "{r:?}");
        assert_eq!(r.entries, 5);
    }

    #[test]
    fn edits_deletions_and_reorders_are_found() {
        let mut edited = chain(5);
        edited[2].payload = "{\"n\":99}".into();
        assert_eq!(verify(&edited).first_bad_seq, Some(3));

        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(verify(&deleted).first_bad_seq, Some(2));

        let mut rehashed = chain(5);
        // A forger who recomputes the edited entry's hash still breaks the next link.
        rehashed[1].actor = "staff:2".into();
        let c = EntryContent { case_id: 7, seq: 2, kind: "note", actor: "staff:2", payload: &rehashed[1].payload, at: &rehashed[1].at };
        rehashed[1].hash = entry_hash(&rehashed[1].prev_hash, &c);
        assert_eq!(verify(&rehashed).first_bad_seq, Some(3));
    }

    #[test]
    fn field_boundaries_matter() {
        let a = EntryContent { case_id: 1, seq: 1, kind: "ab", actor: "c", payload: "", at: "" };
        let b = EntryContent { case_id: 1, seq: 1, kind: "a", actor: "bc", payload: "", at: "" };
        assert_ne!(entry_hash(GENESIS, &a), entry_hash(GENESIS, &b));
    }
}
