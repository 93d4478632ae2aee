//! The tamper-evident audit log: typed events, canonical JSON, Merkle hashing, the
//! two-stage append (queue in the business transaction, then the sequencer).

pub mod canonical;
pub mod checkpoint;
pub mod checkpointer;
pub mod event;
pub mod merkle;
pub mod proof;
pub mod sequencer;
pub mod verify;
pub mod witness;

pub use event::{Actor, ActorKind, Details, NewEvent, RetentionCount};

use crate::store::{StoreError, Tx};

/// Appends an event inside the caller's transaction: no change without its event, no event
/// without its change. The sequencer gives it its index after the commit.
pub async fn append(tx: &mut dyn Tx, event: &NewEvent) -> Result<(), StoreError> {
    let text = serde_json::to_string(&event.to_value()).map_err(|e| StoreError::Other(e.into()))?;
    tx.enqueue_audit(&text).await
}
