//! The SQLite side of the shared SQL: the same calls as sqlx's query API (`query`,
//! `query_as`, `query_scalar`, `QueryBuilder`), run on the C library (rusqlite) in the
//! caller's thread. SQLite executes a statement in microseconds; an async driver hands every
//! statement to a worker thread and back, which costs more than the statement itself and,
//! with one writer at a time, bounds the whole service's write rate. Here a statement is a
//! function call on a cached prepared statement.
//!
//! Values are encoded exactly as sqlx-sqlite encodes them (UUIDs as 16-byte blobs, times as
//! RFC 3339 text, booleans as integers), so a database written by either reads the same.
//! Parameters are sqlx's `$N` (or `?N`): each one is bound by its number.

use std::borrow::Cow;
use std::fmt::{Display, Write as _};
use std::future::{Ready, ready};
use std::marker::PhantomData;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("no row returned")]
    RowNotFound,
    #[error("column {0}: {1}")]
    Decode(String, &'static str),
    #[error("parameter {0} has no value")]
    MissingParameter(usize),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A value that can be bound to a parameter.
pub trait Encode {
    fn value(&self) -> Value;
}

impl<T: Encode + ?Sized> Encode for &T {
    fn value(&self) -> Value {
        (**self).value()
    }
}

impl<T: Encode> Encode for Option<T> {
    fn value(&self) -> Value {
        self.as_ref().map_or(Value::Null, Encode::value)
    }
}

macro_rules! encode_int {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn value(&self) -> Value {
                Value::Integer(i64::from(*self))
            }
        }
    )*};
}
encode_int!(i64, i32, u32, i16, u16, u8, bool);

impl Encode for str {
    fn value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl Encode for String {
    fn value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl Encode for [u8] {
    fn value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl Encode for Vec<u8> {
    fn value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl<const N: usize> Encode for [u8; N] {
    fn value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl Encode for Uuid {
    fn value(&self) -> Value {
        Value::Blob(self.as_bytes().to_vec())
    }
}

impl Encode for DateTime<Utc> {
    fn value(&self) -> Value {
        Value::Text(self.to_rfc3339_opts(SecondsFormat::AutoSi, false))
    }
}

/// A column value that can be read.
pub trait Decode: Sized {
    fn decode(v: ValueRef<'_>) -> Result<Self, &'static str>;
}

impl<T: Decode> Decode for Option<T> {
    fn decode(v: ValueRef<'_>) -> Result<Self, &'static str> {
        match v {
            ValueRef::Null => Ok(None),
            v => T::decode(v).map(Some),
        }
    }
}

impl Decode for i64 {
    fn decode(v: ValueRef<'_>) -> Result<Self, &'static str> {
        match v {
            ValueRef::Integer(i) => Ok(i),
            _ => Err("expected an integer"),
        }
    }
}

impl Decode for i32 {
    fn decode(v: ValueRef<'_>) -> Result<Self, &'static str> {
        i32::try_from(i64::decode(v)?).map_err(|_| "integer out of range")
    }
}

impl Decode for bool {
    fn decode(v: ValueRef<'_>) -> Result<Self, &'static str> {
        Ok(i64::decode(v)? != 0)
    }
}

impl Decode for String {
    fn decode(v: ValueRef<'_>) -> Result<Self, &'static str> {
        match v {
            ValueRef::Text(t) => String::from_utf8(t.to_vec()).map_err(|_| "invalid UTF-8"),
            _ => Err("expected text"),
        }
    }
}

impl Decode for Vec<u8> {
    fn decode(v: ValueRef<'_>) -> Result<Self, &'static str> {
        match v {
            ValueRef::Blob(b) | ValueRef::Text(b) => Ok(b.to_vec()),
            _ => Err("expected a blob"),
        }
    }
}

impl Decode for Uuid {
    fn decode(v: ValueRef<'_>) -> Result<Self, &'static str> {
        match v {
            ValueRef::Blob(b) => Uuid::from_slice(b).map_err(|_| "invalid UUID"),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or("invalid UUID"),
            _ => Err("expected a UUID"),
        }
    }
}

impl Decode for DateTime<Utc> {
    fn decode(v: ValueRef<'_>) -> Result<Self, &'static str> {
        match v {
            ValueRef::Text(t) => {
                let s = std::str::from_utf8(t).map_err(|_| "invalid UTF-8")?;
                if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                    return Ok(t.with_timezone(&Utc));
                }
                ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                    .map(|n| n.and_utc())
                    .ok_or("invalid timestamp")
            }
            ValueRef::Integer(i) => DateTime::from_timestamp(i, 0).ok_or("invalid timestamp"),
            _ => Err("expected a timestamp"),
        }
    }
}

/// A row read into a value: by column name for structs ([`lite_row!`]), by position for
/// tuples.
pub trait FromRow: Sized {
    fn from_row(row: &rusqlite::Row<'_>) -> Result<Self>;
}

/// The column `name` of `row`.
pub fn column<T: Decode>(row: &rusqlite::Row<'_>, name: &str) -> Result<T> {
    T::decode(row.get_ref(name)?).map_err(|e| Error::Decode(name.to_owned(), e))
}

fn column_at<T: Decode>(row: &rusqlite::Row<'_>, i: usize) -> Result<T> {
    T::decode(row.get_ref(i)?).map_err(|e| Error::Decode(i.to_string(), e))
}

macro_rules! tuple_from_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Decode),+> FromRow for ($($t,)+) {
            fn from_row(row: &rusqlite::Row<'_>) -> Result<Self> {
                Ok(($(column_at::<$t>(row, $i)?,)+))
            }
        }
    };
}
tuple_from_row!(A 0);
tuple_from_row!(A 0, B 1);
tuple_from_row!(A 0, B 1, C 2);
tuple_from_row!(A 0, B 1, C 2, D 3);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5);

/// Reads a row struct by column names: `lite_row!(Type { field, … })` (every field named).
macro_rules! lite_row {
    ($t:ty { $($f:ident),+ $(,)? }) => {
        impl $crate::store::lite::FromRow for $t {
            fn from_row(row: &rusqlite::Row<'_>) -> $crate::store::lite::Result<Self> {
                Ok(Self { $($f: $crate::store::lite::column(row, stringify!($f))?,)+ })
            }
        }
    };
}
pub(crate) use lite_row;

/// What a write did.
#[derive(Debug, Clone, Copy)]
pub struct Done(u64);

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.0
    }
}

/// A statement with its arguments.
struct Stmt<'q> {
    sql: Cow<'q, str>,
    args: Vec<Value>,
}

impl Stmt<'_> {
    fn prepare<'c>(&self, conn: &'c Connection) -> Result<rusqlite::CachedStatement<'c>> {
        let mut stmt = conn.prepare_cached(&self.sql)?;
        for i in 1..=stmt.parameter_count() {
            let n = match stmt.parameter_name(i) {
                Some(name) => name[1..].parse::<usize>().unwrap_or(i),
                None => i,
            };
            let v = self
                .args
                .get(n.wrapping_sub(1))
                .ok_or(Error::MissingParameter(n))?;
            stmt.raw_bind_parameter(i, v)?;
        }
        Ok(stmt)
    }

    fn execute(&self, conn: &Connection) -> Result<Done> {
        let mut stmt = self.prepare(conn)?;
        let mut rows = stmt.raw_query();
        while rows.next()?.is_some() {}
        Ok(Done(conn.changes()))
    }

    fn rows<T>(
        &self,
        conn: &Connection,
        max: usize,
        read: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.prepare(conn)?;
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while out.len() < max {
            match rows.next()? {
                Some(row) => out.push(read(row)?),
                None => break,
            }
        }
        Ok(out)
    }
}

macro_rules! binds {
    () => {
        /// Binds the next parameter (`$1`, `$2`, … in order of the calls).
        pub fn bind<T: Encode>(mut self, v: T) -> Self {
            self.stmt.args.push(v.value());
            self
        }
    };
}

/// `query(sql)`: a statement whose rows are not read.
pub struct Query<'q> {
    stmt: Stmt<'q>,
}

pub fn query(sql: &str) -> Query<'_> {
    Query {
        stmt: Stmt {
            sql: Cow::Borrowed(sql),
            args: Vec::new(),
        },
    }
}

impl Query<'_> {
    binds!();

    pub fn execute(self, conn: &Connection) -> Ready<Result<Done>> {
        ready(self.stmt.execute(conn))
    }
}

/// `query_as(sql)`: rows read into `O`.
pub struct QueryAs<'q, O> {
    stmt: Stmt<'q>,
    out: PhantomData<fn() -> O>,
}

pub fn query_as<O: FromRow>(sql: &str) -> QueryAs<'_, O> {
    QueryAs {
        stmt: Stmt {
            sql: Cow::Borrowed(sql),
            args: Vec::new(),
        },
        out: PhantomData,
    }
}

/// `query_scalar(sql)`: the first column of each row, read into `O`.
pub struct QueryScalar<'q, O> {
    stmt: Stmt<'q>,
    out: PhantomData<fn() -> O>,
}

pub fn query_scalar<O: Decode>(sql: &str) -> QueryScalar<'_, O> {
    QueryScalar {
        stmt: Stmt {
            sql: Cow::Borrowed(sql),
            args: Vec::new(),
        },
        out: PhantomData,
    }
}

macro_rules! fetches {
    ($read:expr) => {
        pub fn fetch_all(self, conn: &Connection) -> Ready<Result<Vec<O>>> {
            ready(self.stmt.rows(conn, usize::MAX, $read))
        }

        pub fn fetch_optional(self, conn: &Connection) -> Ready<Result<Option<O>>> {
            ready(self.stmt.rows(conn, 1, $read).map(|mut v| v.pop()))
        }

        pub fn fetch_one(self, conn: &Connection) -> Ready<Result<O>> {
            ready(
                self.stmt
                    .rows(conn, 1, $read)
                    .and_then(|mut v| v.pop().ok_or(Error::RowNotFound)),
            )
        }
    };
}

impl<O: FromRow> QueryAs<'_, O> {
    binds!();
    fetches!(O::from_row);
}

impl<O: Decode> QueryScalar<'_, O> {
    binds!();
    fetches!(|row: &rusqlite::Row<'_>| column_at::<O>(row, 0));
}

/// Dynamic SQL, as sqlx's `QueryBuilder`: `push` appends text, `push_bind` a numbered
/// parameter.
pub struct QueryBuilder {
    sql: String,
    args: Vec<Value>,
}

impl QueryBuilder {
    pub fn new(init: impl Into<String>) -> Self {
        Self {
            sql: init.into(),
            args: Vec::new(),
        }
    }

    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        let _ = write!(self.sql, "{sql}");
        self
    }

    pub fn push_bind<T: Encode>(&mut self, v: T) -> &mut Self {
        self.args.push(v.value());
        let _ = write!(self.sql, "?{}", self.args.len());
        self
    }

    pub fn separated<S: Display>(&mut self, separator: S) -> Separated<'_, S> {
        Separated {
            builder: self,
            separator,
            first: true,
        }
    }

    fn stmt(&self) -> Stmt<'_> {
        Stmt {
            sql: Cow::Borrowed(&self.sql),
            args: self.args.clone(),
        }
    }

    pub fn build(&mut self) -> Query<'_> {
        Query { stmt: self.stmt() }
    }

    pub fn build_query_as<O: FromRow>(&mut self) -> QueryAs<'_, O> {
        QueryAs {
            stmt: self.stmt(),
            out: PhantomData,
        }
    }

    pub fn build_query_scalar<O: Decode>(&mut self) -> QueryScalar<'_, O> {
        QueryScalar {
            stmt: self.stmt(),
            out: PhantomData,
        }
    }
}

/// A list whose items are separated (`a, b, c`).
pub struct Separated<'b, S> {
    builder: &'b mut QueryBuilder,
    separator: S,
    first: bool,
}

impl<S: Display> Separated<'_, S> {
    fn separate(&mut self) {
        if !self.first {
            let _ = write!(self.builder.sql, "{}", self.separator);
        }
        self.first = false;
    }

    pub fn push_bind<T: Encode>(&mut self, v: T) -> &mut Self {
        self.separate();
        self.builder.push_bind(v);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t (id BLOB PRIMARY KEY, n INTEGER, s TEXT, at TEXT, ok INTEGER)",
        )
        .unwrap();
        c
    }

    #[tokio::test]
    async fn parameters_bind_by_number_and_values_round_trip() {
        let c = conn();
        let id = Uuid::new_v4();
        let at = DateTime::parse_from_rfc3339("2026-11-23T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        // `$2` before `$1`: bound by number, not by order of appearance.
        query("INSERT INTO t (s, id, n, at, ok) VALUES ($2, $1, $3, $4, $5)")
            .bind(id)
            .bind("x")
            .bind(7_i64)
            .bind(at)
            .bind(true)
            .execute(&c)
            .await
            .unwrap();
        let (got_id, s, n, got_at, ok): (Uuid, String, i64, DateTime<Utc>, bool) =
            query_as("SELECT id, s, n, at, ok FROM t")
                .fetch_one(&c)
                .await
                .unwrap();
        assert_eq!((got_id, s.as_str(), n, got_at, ok), (id, "x", 7, at, true));
        // The text is sqlx-sqlite's encoding, so both drivers compare times alike.
        let raw: String = query_scalar("SELECT at FROM t")
            .fetch_one(&c)
            .await
            .unwrap();
        assert_eq!(raw, "2026-11-23T10:00:00.123456+00:00");
        let none: Option<i64> = query_scalar("SELECT n FROM t WHERE n = $1")
            .bind(8_i64)
            .fetch_optional(&c)
            .await
            .unwrap();
        assert_eq!(none, None);
        assert!(matches!(
            query_scalar::<i64>("SELECT n FROM t WHERE n = 8")
                .fetch_one(&c)
                .await,
            Err(Error::RowNotFound)
        ));
    }

    #[tokio::test]
    async fn builder_numbers_its_parameters() {
        let c = conn();
        for n in 1..=3_i64 {
            query("INSERT INTO t (id, n) VALUES ($1, $2)")
                .bind(Uuid::new_v4())
                .bind(n)
                .execute(&c)
                .await
                .unwrap();
        }
        let mut q = QueryBuilder::new("SELECT n FROM t WHERE n IN (");
        let mut sep = q.separated(", ");
        sep.push_bind(1_i64);
        sep.push_bind(3_i64);
        q.push(") AND n > ").push_bind(0_i64).push(" ORDER BY n");
        let got: Vec<i64> = q.build_query_scalar().fetch_all(&c).await.unwrap();
        assert_eq!(got, vec![1, 3]);
    }

    #[tokio::test]
    async fn wrong_types_are_errors_not_panics() {
        let c = conn();
        query("INSERT INTO t (id, n, s) VALUES (x'00', 1, 'a')")
            .execute(&c)
            .await
            .unwrap();
        assert!(matches!(
            query_scalar::<i64>("SELECT s FROM t").fetch_one(&c).await,
            Err(Error::Decode(..))
        ));
        assert!(matches!(
            query_scalar::<Uuid>("SELECT id FROM t").fetch_one(&c).await,
            Err(Error::Decode(..))
        ));
    }
}
