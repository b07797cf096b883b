//! [`StoreError`]: why a config store, the Redis bus or the config I/O
//! runtime could not do what was asked. The message is what operators see
//! (logs, `/health`, admin errors); the variant is what code decides on.

/// A store failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer within its timeout.
    #[error("{store}: no answer within {ms} ms")]
    Timeout { store: &'static str, ms: u128 },
    /// The Redis clients are not connected (yet, or any more).
    #[error("redis: not connected")]
    NotConnected,
    /// A Redis command failed.
    #[error("redis: {0}")]
    Redis(String),
    /// A MySQL query failed.
    #[error("mysql: {0}")]
    Mysql(String),
    /// The state file could not be read or written.
    #[error("{0}")]
    File(String),
    /// A setting (URL, database name) cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// What is stored cannot be read back (not JSON, wrong shape).
    #[error("{0}")]
    Corrupt(String),
    /// The config I/O runtime could not start or lost a task.
    #[error("{0}")]
    Snapshot(String),
    /// Another failure, with where it happened.
    #[error("{context}: {source}")]
    Context {
        context: String,
        source: Box<StoreError>,
    },
}

impl StoreError {
    /// This error, prefixed with where it happened.
    pub fn context(self, context: impl Into<String>) -> StoreError {
        StoreError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }
}

impl From<fred::error::Error> for StoreError {
    fn from(e: fred::error::Error) -> Self {
        StoreError::Redis(e.to_string())
    }
}

impl From<mysql_async::Error> for StoreError {
    fn from(e: mysql_async::Error) -> Self {
        StoreError::Mysql(e.to_string())
    }
}
