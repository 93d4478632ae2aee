//! Group commit on SQLite's one write connection.
//!
//! Every write transaction of the service is a savepoint inside one outer `BEGIN IMMEDIATE`
//! transaction of the write connection. A transaction that ends while others queue for the
//! connection releases its savepoint and hands the connection over without committing; the
//! last one of the group (no one waiting, or the group full, or open long enough) runs the
//! outer `COMMIT` for all of them. Every member's `commit` returns only once that `COMMIT`
//! has succeeded (or with its error), so nothing leaves the process before its change is
//! durable — the same promise as one transaction each, for a fraction of the WAL pages:
//! the pages a group shares (the tail of the audit queue, of the tables appended to, of
//! their indexes, the database header) are written once per group, not once per
//! transaction, and the background checkpoint has as much less to copy back.
//!
//! A transaction dropped without committing rolls back to its savepoint: what earlier members
//! of the group did stays. Were the outer transaction lost (an I/O error or a full disk
//! makes SQLite roll everything back), every member of the group gets the error, none has
//! returned yet. A member waits at most [`STALL`] for someone else's `COMMIT`; past that it
//! takes the connection and commits the group itself, so that a cancelled waiter can never
//! leave a group uncommitted.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use super::StoreError;

/// The most transactions one `COMMIT` covers.
const MAX_GROUP: usize = 64;
/// The longest a group stays open once its first member ended (bounds the latency a busy
/// writer queue adds to each member).
const MAX_OPEN: Duration = Duration::from_millis(5);
/// How long a member waits for another one's `COMMIT` before committing the group itself.
const STALL: Duration = Duration::from_millis(50);
/// Failed groups remembered for their members (a failure is rare: I/O error, disk full).
const FAILURES_KEPT: usize = 64;

/// The write connection and the state of the open group.
pub struct WriteConn {
    conn: Connection,
    /// An outer transaction is open (since `since`).
    open: bool,
    since: Instant,
    /// Members of the open group whose savepoint was released (they wait for the `COMMIT`).
    members: usize,
    /// Number of the open group (or of the next one).
    group: u64,
}

impl Deref for WriteConn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// What happened to the groups: every group up to `done` is finished; the ones in
/// `failed` with the error's text.
#[derive(Clone, Default)]
struct Outcome {
    done: u64,
    failed: VecDeque<(u64, String)>,
}

impl Outcome {
    fn of(&self, group: u64) -> Option<Result<(), StoreError>> {
        if group > self.done {
            return None;
        }
        Some(match self.failed.iter().find(|(g, _)| *g == group) {
            Some((_, e)) => Err(StoreError::Unavailable(
                format!("the group commit failed: {e}").into(),
            )),
            None => Ok(()),
        })
    }
}

/// The write connection behind its lock, and the groups' outcomes.
pub struct Writer {
    conn: Arc<Mutex<WriteConn>>,
    /// Tasks queued for the connection: a member hands it over uncommitted only to one.
    queued: Arc<AtomicUsize>,
    outcome: watch::Sender<Outcome>,
}

/// Counts a task as queued until it holds the connection or gives up.
struct Queued(Arc<AtomicUsize>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Writer {
    pub fn new(conn: Connection) -> Self {
        Self {
            conn: Arc::new(Mutex::new(WriteConn {
                conn,
                open: false,
                since: Instant::now(),
                members: 0,
                group: 1,
            })),
            queued: Arc::new(AtomicUsize::new(0)),
            outcome: watch::Sender::new(Outcome::default()),
        }
    }

    /// Whether a task holds the connection now.
    pub fn busy(&self) -> bool {
        self.conn.try_lock().is_err()
    }

    /// The connection, in its turn, with the outer transaction open.
    pub async fn lock(&self, wait: Duration) -> Result<OwnedMutexGuard<WriteConn>, StoreError> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let queued = Queued(self.queued.clone());
        let mut w = tokio::time::timeout(wait, self.conn.clone().lock_owned())
            .await
            .map_err(|_| super::sqlite::timed_out())?;
        drop(queued);
        if !w.open {
            w.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            w.open = true;
            w.since = Instant::now();
        }
        Ok(w)
    }

    /// The connection with no transaction open: the open group committed first.
    pub async fn lock_flushed(
        &self,
        wait: Duration,
    ) -> Result<OwnedMutexGuard<WriteConn>, StoreError> {
        let mut w = self.lock(wait).await?;
        self.finish(&mut w);
        Ok(w)
    }

    /// Ends the holder's turn: commits the group unless another task is queued to carry it
    /// on (and it is neither full nor open too long). Returns the group's outcome when this
    /// call committed it.
    pub fn release(&self, mut w: OwnedMutexGuard<WriteConn>) -> Option<Result<(), StoreError>> {
        if !w.open {
            return None;
        }
        let carry_on = self.queued.load(Ordering::SeqCst) > 0
            && w.members < MAX_GROUP
            && w.since.elapsed() < MAX_OPEN;
        if carry_on && !w.is_autocommit() {
            return None;
        }
        let group = w.group;
        self.finish(&mut w);
        drop(w);
        self.outcome.borrow().of(group)
    }

    /// Commits the open outer transaction (or learns that SQLite rolled it back) and
    /// publishes the outcome of its group.
    fn finish(&self, w: &mut WriteConn) {
        if !w.open {
            return;
        }
        let result = if w.is_autocommit() {
            // An error made SQLite roll the whole transaction back.
            Err("the transaction was rolled back by the database".to_owned())
        } else {
            match w
                .conn
                .prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]))
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    if !w.is_autocommit() {
                        let _ = w.conn.execute_batch("ROLLBACK");
                    }
                    Err(e.to_string())
                }
            }
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, members = w.members, "sqlite group commit failed");
        }
        let group = w.group;
        w.open = false;
        w.members = 0;
        w.group += 1;
        self.outcome.send_modify(|o| {
            o.done = group;
            if let Err(e) = result {
                o.failed.push_back((group, e));
                if o.failed.len() > FAILURES_KEPT {
                    o.failed.pop_front();
                }
            }
        });
    }

    /// Waits for the `COMMIT` of `group` (whose member released its savepoint); commits the
    /// group itself if no one did within [`STALL`].
    pub async fn wait(&self, group: u64) -> Result<(), StoreError> {
        let mut rx = self.outcome.subscribe();
        loop {
            if let Some(r) = rx.borrow_and_update().of(group) {
                return r;
            }
            if tokio::time::timeout(STALL, rx.changed()).await.is_err() {
                let mut w = self.conn.clone().lock_owned().await;
                if w.group == group {
                    self.finish(&mut w);
                }
            }
        }
    }
}

/// A write transaction's hold on the connection: its savepoint is open until it commits or
/// is dropped; either way the connection goes back through [`Writer::release`].
pub struct Hold {
    conn: Option<OwnedMutexGuard<WriteConn>>,
    writer: Arc<Writer>,
}

impl Hold {
    pub fn new(conn: OwnedMutexGuard<WriteConn>, writer: Arc<Writer>) -> Self {
        Self {
            conn: Some(conn),
            writer,
        }
    }

    pub fn conn(&self) -> &WriteConn {
        // Present until commit or drop.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }

    pub fn conn_mut(&mut self) -> &mut WriteConn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }

    /// Releases the savepoint (the transaction is now a member of the group) and waits for
    /// the group's `COMMIT`.
    pub async fn commit(&mut self) -> Result<(), StoreError> {
        let Some(mut w) = self.conn.take() else {
            return Err(StoreError::Unavailable("the transaction was closed".into()));
        };
        if let Err(e) = w
            .prepare_cached("RELEASE tx")
            .and_then(|mut s| s.execute([]))
        {
            self.conn = Some(w);
            return Err(e.into());
        }
        w.members += 1;
        let group = w.group;
        match self.writer.release(w) {
            Some(r) => r,
            None => self.writer.wait(group).await,
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(w) = self.conn.take() {
            if !w.is_autocommit() {
                let _ = w.execute_batch("ROLLBACK TO tx; RELEASE tx");
            }
            let _ = self.writer.release(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer on a fresh file with a table `t(x)`, and a second connection to read it.
    fn writer() -> (tempfile::TempDir, Arc<Writer>, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("g.db");
        let conn = Connection::open(&file).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER PRIMARY KEY);")
            .unwrap();
        let reader = Connection::open(&file).unwrap();
        (dir, Arc::new(Writer::new(conn)), reader)
    }

    async fn begin(w: &Arc<Writer>) -> Hold {
        let conn = w.lock(Duration::from_secs(5)).await.unwrap();
        conn.execute_batch("SAVEPOINT tx").unwrap();
        Hold::new(conn, w.clone())
    }

    fn insert(h: &Hold, x: i64) {
        h.conn()
            .execute("INSERT INTO t (x) VALUES (?1)", [x])
            .unwrap();
    }

    fn committed(reader: &Connection) -> Vec<i64> {
        let mut stmt = reader.prepare("SELECT x FROM t ORDER BY x").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    async fn until_queued(w: &Writer, n: usize) {
        while w.queued.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_transactions_share_commits_and_each_returns_once_durable() {
        let (dir, w, _) = writer();
        let file = dir.path().join("g.db");
        let tasks: Vec<_> = (0..64_i64)
            .map(|x| {
                let w = w.clone();
                let file = file.clone();
                tokio::spawn(async move {
                    let mut h = begin(&w).await;
                    insert(&h, x);
                    // Let the others queue behind this transaction.
                    tokio::task::yield_now().await;
                    h.commit().await.unwrap();
                    // Committed when commit returns: another connection sees it.
                    let seen: i64 = Connection::open(&file)
                        .unwrap()
                        .query_row("SELECT COUNT(*) FROM t WHERE x = ?1", [x], |r| r.get(0))
                        .unwrap();
                    assert_eq!(seen, 1, "row {x} not visible after its commit returned");
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let groups = w.outcome.borrow().done;
        assert!(
            groups < 64,
            "{groups} commits for 64 transactions: no group formed"
        );
        assert!(groups >= 1);
    }

    #[tokio::test]
    async fn a_member_rolled_back_leaves_what_the_others_of_its_group_did() {
        let (_dir, w, reader) = writer();
        let mut a = begin(&w).await;
        insert(&a, 1);
        let second = {
            let w = w.clone();
            tokio::spawn(async move {
                let b = begin(&w).await;
                insert(&b, 2);
                drop(b); // rolled back; the group's COMMIT happens here (no one queued)
            })
        };
        until_queued(&w, 1).await;
        // Someone is queued: `a` hands the connection over uncommitted and waits.
        a.commit().await.unwrap();
        second.await.unwrap();
        assert_eq!(committed(&reader), vec![1]);
        assert_eq!(w.outcome.borrow().done, 1, "one COMMIT for the group");
    }

    #[tokio::test]
    async fn when_the_database_drops_the_outer_transaction_every_member_gets_the_error() {
        let (_dir, w, reader) = writer();
        let mut a = begin(&w).await;
        insert(&a, 1);
        let second = {
            let w = w.clone();
            tokio::spawn(async move {
                let mut b = begin(&w).await;
                insert(&b, 2);
                // As SQLite does on an I/O error or a full disk: everything rolled back.
                b.conn().execute_batch("ROLLBACK").unwrap();
                b.commit().await
            })
        };
        until_queued(&w, 1).await;
        assert!(
            a.commit().await.is_err(),
            "the first member must not report success"
        );
        assert!(second.await.unwrap().is_err());
        assert!(committed(&reader).is_empty());
        // The next transaction starts a new group and commits.
        let mut c = begin(&w).await;
        insert(&c, 3);
        c.commit().await.unwrap();
        assert_eq!(committed(&reader), vec![3]);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_its_turn_cannot_leave_a_group_uncommitted() {
        let (_dir, w, reader) = writer();
        let mut a = begin(&w).await;
        insert(&a, 1);
        let queued = {
            let w = w.clone();
            // Takes its turn and drops the connection without ending it (as a cancelled
            // request would): no COMMIT from it.
            tokio::spawn(async move { drop(w.lock(Duration::from_secs(5)).await) })
        };
        until_queued(&w, 1).await;
        let done = tokio::time::timeout(Duration::from_secs(2), a.commit()).await;
        assert!(
            matches!(done, Ok(Ok(()))),
            "the member committed its group itself"
        );
        queued.await.unwrap();
        assert_eq!(committed(&reader), vec![1]);
    }
}
