//! What the embedded store and queue share about SQLite.

use std::ops::Deref;

use rusqlite::Connection;

/// A `BEGIN IMMEDIATE` … `COMMIT` span whose three statements are cached on the connection.
/// rusqlite's `Transaction` sends them through `execute_batch`, which compiles each one again
/// on every call; a crawl runs several transactions a page, and the compiling showed up in
/// its profile. Dropped without [`Immediate::commit`] (an error on the way), it rolls back.
pub struct Immediate<'c> {
    connection: &'c Connection,
    open: bool,
}

impl<'c> Immediate<'c> {
    /// Takes the write lock now, so the reads inside the span see what the writes will check.
    pub fn begin(connection: &'c Connection) -> rusqlite::Result<Self> {
        run(connection, "BEGIN IMMEDIATE")?;
        Ok(Self {
            connection,
            open: true,
        })
    }

    pub fn commit(mut self) -> rusqlite::Result<()> {
        run(self.connection, "COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl Deref for Immediate<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.connection
    }
}

impl Drop for Immediate<'_> {
    fn drop(&mut self) {
        // A failed COMMIT (SQLITE_BUSY) leaves the transaction open as well.
        if self.open && !self.connection.is_autocommit() {
            let _ = run(self.connection, "ROLLBACK");
        }
    }
}

fn run(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection
        .prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (v INTEGER)")
            .unwrap();
        connection
    }

    fn count(connection: &Connection) -> i64 {
        connection
            .query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn committed_writes_stay_and_dropped_ones_roll_back() {
        let connection = table();
        let span = Immediate::begin(&connection).unwrap();
        span.execute("INSERT INTO t VALUES (1)", []).unwrap();
        span.commit().unwrap();
        assert_eq!(count(&connection), 1);

        let span = Immediate::begin(&connection).unwrap();
        span.execute("INSERT INTO t VALUES (2)", []).unwrap();
        drop(span);
        assert_eq!(count(&connection), 1);
        assert!(connection.is_autocommit(), "nothing is left open");
    }

    #[test]
    fn a_span_can_begin_again_after_each_end() {
        let connection = table();
        for value in 0..3 {
            let span = Immediate::begin(&connection).unwrap();
            span.execute("INSERT INTO t VALUES (?1)", [value]).unwrap();
            span.commit().unwrap();
        }
        assert_eq!(count(&connection), 3);
    }
}
