//! Verification of the whole log, streaming, in constant memory: one task reads pages from a
//! read-only snapshot while this one checks them (two cores: I/O and SHA-256 overlap).
//!
//! For every entry: index continuity (a gap, an insertion or a swap shows as an entry at the
//! wrong place), the leaf hash recomputed from the payload (unless pruned), the payload's own
//! `index`, and the chain hash. At each stored checkpoint size: the rebuilt Merkle root and
//! the checkpoint's signature; two consecutive checkpoints that both match roots rebuilt from
//! one sequence of leaves are consistent by construction. External checkpoints (a witness
//! file, a DPO's copy) are checked the same way. At the end, the head row must agree.
//!
//! **First bad index**: for a defect seen on an entry, its index (for an entry carrying
//! another index `c`, the smaller of the two); for a checkpoint that does not verify (bad
//! signature, other root), the size of the last checkpoint that did verify — every entry
//! before it is proven, from it on the log and the checkpoint disagree; for a checkpoint or a
//! head beyond the end of the log, the number of entries (the tail is missing).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::checkpoint::{PublicKey, SignedNote};
use super::merkle::{Hash, RootBuilder, chain_hash, leaf_hash};
use crate::store::{CheckpointRow, Store, StoreError, StoredAuditEntry};

/// Entries per page read from the database.
pub const PAGE: i64 = 8192;

/// The outcome, as reported by the CLI and the API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    pub entries: i64,
    pub checked_checkpoints: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_index: Option<i64>,
    /// What was found, in English, for operators (no content of events).
    #[serde(skip)]
    pub problem: Option<String>,
}

impl VerifyReport {
    /// One line for the CLI and the logs.
    pub fn summary(&self) -> String {
        match (self.first_bad_index, &self.problem) {
            (None, _) => format!(
                "ok: {} entries, {} checkpoints verified",
                self.entries, self.checked_checkpoints
            ),
            (Some(i), p) => format!(
                "FAILED: first bad index: {i} ({}); {} entries read, {} checkpoints verified",
                p.as_deref().unwrap_or("integrity failure"),
                self.entries,
                self.checked_checkpoints
            ),
        }
    }
}

/// A full verification and the state it ends in (the checkpoint writer continues from it).
#[derive(Debug, Clone)]
pub struct Verified {
    pub report: VerifyReport,
    pub frontier: RootBuilder,
    pub last_chain: Hash,
}

enum Msg {
    Page(Vec<StoredAuditEntry>, Vec<CheckpointRow>),
    End {
        beyond: Option<CheckpointRow>,
        head: (i64, Vec<u8>),
    },
}

struct Failure(i64, String);

/// Verifies the stored log and its checkpoints, and the `external` checkpoints.
pub async fn verify(
    store: &Arc<dyn Store>,
    keys: &[PublicKey],
    external: &[SignedNote],
) -> Result<Verified, StoreError> {
    let (tx, mut rx) = mpsc::channel::<Result<Msg, StoreError>>(2);
    let reader = tokio::spawn(read_all(store.clone(), tx));
    let mut external: Vec<&SignedNote> = external.iter().collect();
    external.sort_by_key(|n| n.checkpoint.tree_size);
    let mut ext = external.into_iter().peekable();

    let mut v = Verifier {
        keys,
        builder: RootBuilder::new(),
        prev: [0u8; 32],
        expected: 0,
        checked: 0,
        last_good: 0,
    };
    let mut failure: Option<Failure> = None;
    while let Some(msg) = rx.recv().await {
        match msg? {
            Msg::Page(entries, checkpoints) => {
                let mut cps = checkpoints.into_iter().peekable();
                // A checkpoint of size 0 (never written, but possible if forged).
                if let Err(f) = v.checkpoints_at_current_size(&mut cps, &mut ext) {
                    failure = Some(f);
                    break;
                }
                for e in &entries {
                    if let Err(f) = v.entry(e) {
                        failure = Some(f);
                        break;
                    }
                    if let Err(f) = v.checkpoints_at_current_size(&mut cps, &mut ext) {
                        failure = Some(f);
                        break;
                    }
                }
                if failure.is_some() {
                    break;
                }
            }
            Msg::End { beyond, head } => {
                let n = v.expected;
                let ext_beyond = ext.find(|c| c.checkpoint.tree_size as i64 > n);
                if let Some(cp) = beyond {
                    failure = Some(Failure(
                        n,
                        format!(
                            "a stored checkpoint covers {} entries but the log has {n}",
                            cp.tree_size
                        ),
                    ));
                } else if let Some(cp) = ext_beyond {
                    failure = Some(Failure(
                        n,
                        format!(
                            "an external checkpoint covers {} entries but the log has {n}",
                            cp.checkpoint.tree_size
                        ),
                    ));
                } else if head.0 != n || (n > 0 && head.1 != v.prev) {
                    failure = Some(Failure(
                        n.min(head.0.max(0)),
                        format!(
                            "the head row says {} entries, the log has {n} or ends elsewhere",
                            head.0
                        ),
                    ));
                }
            }
        }
    }
    drop(rx);
    let _ = reader.await;
    let report = VerifyReport {
        ok: failure.is_none(),
        entries: v.expected,
        checked_checkpoints: v.checked,
        first_bad_index: failure.as_ref().map(|f| f.0),
        problem: failure.map(|f| f.1),
    };
    Ok(Verified {
        report,
        frontier: v.builder,
        last_chain: v.prev,
    })
}

struct Verifier<'a> {
    keys: &'a [PublicKey],
    builder: RootBuilder,
    prev: Hash,
    expected: i64,
    checked: i64,
    last_good: i64,
}

impl Verifier<'_> {
    fn entry(&mut self, e: &StoredAuditEntry) -> Result<(), Failure> {
        let i = self.expected;
        if e.idx != i {
            return Err(Failure(i, format!("entry {i} is missing")));
        }
        let stored_leaf: Hash = e
            .leaf_hash
            .as_slice()
            .try_into()
            .map_err(|_| Failure(i, "malformed leaf hash".into()))?;
        if let Some(text) = &e.canonical_event {
            let claimed = payload_index(text)
                .ok_or_else(|| Failure(i, "the payload is not a canonical event".into()))?;
            if claimed != i {
                return Err(Failure(
                    i.min(claimed.max(0)),
                    format!("entry {i} carries index {claimed}"),
                ));
            }
            if leaf_hash(text.as_bytes()) != stored_leaf {
                return Err(Failure(
                    i,
                    "the payload does not match its leaf hash".into(),
                ));
            }
        }
        let chain = chain_hash(&self.prev, &stored_leaf);
        if e.chain_hash.as_slice() != chain {
            return Err(Failure(i, "chain hash mismatch".into()));
        }
        self.builder.push(stored_leaf);
        self.prev = chain;
        self.expected += 1;
        Ok(())
    }

    fn checkpoints_at_current_size<'n>(
        &mut self,
        stored: &mut std::iter::Peekable<std::vec::IntoIter<CheckpointRow>>,
        external: &mut std::iter::Peekable<impl Iterator<Item = &'n SignedNote>>,
    ) -> Result<(), Failure> {
        let size = self.expected;
        // Every checkpoint at this size must verify before the size counts as proven.
        let base = self.last_good;
        while let Some(cp) = stored.next_if(|c| c.tree_size <= size) {
            let note = SignedNote::parse(&cp.note).map_err(|_| {
                Failure(
                    base,
                    format!("stored checkpoint {} is malformed", cp.tree_size),
                )
            })?;
            if note.checkpoint.tree_size as i64 != cp.tree_size
                || note.checkpoint.root.as_slice() != cp.root_hash
            {
                return Err(Failure(
                    base,
                    format!(
                        "stored checkpoint {} does not match its signed note",
                        cp.tree_size
                    ),
                ));
            }
            self.check_note(&note, "stored", base)?;
        }
        while let Some(note) = external.next_if(|n| n.checkpoint.tree_size as i64 <= size) {
            self.check_note(note, "external", base)?;
        }
        Ok(())
    }

    fn check_note(&mut self, note: &SignedNote, kind: &str, base: i64) -> Result<(), Failure> {
        let size = note.checkpoint.tree_size;
        if note.verify(self.keys).is_err() {
            return Err(Failure(
                base,
                format!("{kind} checkpoint {size}: no valid signature"),
            ));
        }
        if size as i64 != self.expected || note.checkpoint.root != self.builder.root() {
            return Err(Failure(
                base,
                format!("{kind} checkpoint {size}: the log does not reproduce its root"),
            ));
        }
        self.checked += 1;
        self.last_good = size as i64;
        Ok(())
    }
}

/// Reads the log page by page from one read-only snapshot (or through the backend's fast
/// stream) and sends the pages with the checkpoints whose size falls in them, in order. Rows
/// appended after the start are not read (the log is append-only below the size seen then).
async fn read_all(store: Arc<dyn Store>, out: mpsc::Sender<Result<Msg, StoreError>>) {
    let result = async {
        let mut tx = store.begin_snapshot().await?;
        let (min, max) = tx.audit_bounds().await?;
        let head = tx.audit_head().await?;
        let start = min.unwrap_or(0).min(0);
        let end = max.map_or(0, |m| m + 1).max(head.0);
        if store.has_audit_stream() {
            drop(tx);
            return read_stream(store, start, end, head, out.clone()).await;
        }
        let mut from = start;
        let mut cp_bound = -1i64;
        while from < end {
            let to = (from + PAGE).min(end);
            let entries = tx.audit_entries_between(from, to).await?;
            let cps = tx.audit_checkpoints_between(cp_bound, to, i64::MAX).await?;
            cp_bound = to;
            from = to;
            if out.send(Ok(Msg::Page(entries, cps))).await.is_err() {
                return Ok(());
            }
        }
        let beyond = tx
            .audit_checkpoints_between(cp_bound.max(end), i64::MAX, 1)
            .await?
            .into_iter()
            .next();
        let _ = out.send(Ok(Msg::End { beyond, head })).await;
        Ok::<(), StoreError>(())
    }
    .await;
    if let Err(e) = result {
        let _ = out.send(Err(e)).await;
    }
}

/// The same, with the backend's fast stream for the entries.
async fn read_stream(
    store: Arc<dyn Store>,
    start: i64,
    end: i64,
    head: (i64, Vec<u8>),
    out: mpsc::Sender<Result<Msg, StoreError>>,
) -> Result<(), StoreError> {
    let (etx, mut pages) = mpsc::channel::<Result<Vec<StoredAuditEntry>, StoreError>>(2);
    let streamer = store.clone();
    let reader = tokio::spawn(async move {
        if let Err(e) = streamer.audit_stream(start, end, PAGE, etx.clone()).await {
            let _ = etx.send(Err(e)).await;
        }
    });
    let mut tx = store.begin_snapshot().await?;
    let mut from = start;
    let mut cp_bound = -1i64;
    while from < end {
        let to = (from + PAGE).min(end);
        let entries = pages.recv().await.unwrap_or_else(|| Ok(Vec::new()))?;
        let cps = tx.audit_checkpoints_between(cp_bound, to, i64::MAX).await?;
        cp_bound = to;
        from = to;
        if out.send(Ok(Msg::Page(entries, cps))).await.is_err() {
            return Ok(());
        }
    }
    drop(pages);
    let _ = reader.await;
    let beyond = tx
        .audit_checkpoints_between(cp_bound.max(end), i64::MAX, 1)
        .await?
        .into_iter()
        .next();
    let _ = out.send(Ok(Msg::End { beyond, head })).await;
    Ok(())
}

/// The top-level `index` of a canonical event. Keys are sorted, so it is the last
/// `,"index":` of the text: only string, null and integer members follow it, and a string
/// cannot contain an unescaped quote.
fn payload_index(text: &str) -> Option<i64> {
    let at = memchr::memmem::rfind(text.as_bytes(), b",\"index\":")? + 9;
    let rest = &text.as_bytes()[at..];
    let (neg, digits) = match rest.first() {
        Some(b'-') => (true, &rest[1..]),
        _ => (false, rest),
    };
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || len > 18 {
        return None;
    }
    let n: i64 = std::str::from_utf8(&digits[..len]).ok()?.parse().ok()?;
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::payload_index;

    #[test]
    fn finds_the_top_level_index() {
        assert_eq!(
            payload_index(
                r#"{"action":"a","details":{"x":{"index":5}},"index":42,"mandate":null,"v":1}"#
            ),
            Some(42)
        );
        assert_eq!(
            payload_index(r#"{"details":{},"index":-3,"v":1}"#),
            Some(-3)
        );
        assert_eq!(payload_index(r#"{"details":{"index":7}}"#), None);
        assert_eq!(payload_index("garbage"), None);
    }
}
