//! [`EntityStore`]: where the config center keeps its entities, chosen by
//! `config_store.kind`: the file store ([`super::config_file`], one
//! instance) or MySQL ([`super::mysql`], shared by every instance). The
//! config center reads it at start and when another instance announces a
//! change, and commits every change through [`EntityStore::save`], which
//! refuses a change made on an older revision than the stored one. With
//! each revision a store keeps its snapshot and the change's audit entries
//! ([`super::history`]), in the same transaction (MySQL) or right after the
//! state file (file).

use super::config_file::{Entities, FileStore};
use super::file_history::FileHistory;
use super::history::{AuditEntry, AuditQuery, Commit, RevisionRecord};
use super::StoreError;
use async_trait::async_trait;
use std::sync::Arc;

/// Why a save did not happen.
#[derive(Debug)]
pub enum SaveError {
    /// The stored revision moved on (another instance committed first):
    /// reload and redo the change.
    Conflict,
    /// The store cannot be reached: nothing was written.
    Unavailable(StoreError),
}

impl std::fmt::Display for SaveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaveError::Conflict => write!(f, "the stored config changed meanwhile"),
            SaveError::Unavailable(e) => write!(f, "{e}"),
        }
    }
}

/// A config-center entity store.
#[async_trait]
pub trait EntityStore: Send + Sync {
    /// `file` or `mysql` (the name `/health` reports it under).
    fn kind(&self) -> &'static str;

    /// The stored snapshot (with its revision); `None` when the store is empty.
    async fn load(&self) -> Result<Option<Entities>, StoreError>;

    /// Commits `next` (whose `revision` is `prev.revision + 1`) in one
    /// transaction, provided the store still holds `prev.revision`.
    /// `prev` is what the caller last loaded or saved (`revision` 0 with
    /// an empty store: `next` seeds it).
    /// `commit` is recorded with it (the revision's snapshot and audit entries).
    async fn save(
        &self,
        prev: &Entities,
        next: &Entities,
        commit: &Commit,
    ) -> Result<(), SaveError>;

    /// Replaces whatever is stored with `entities` (re-import of the YAML),
    /// one revision above the stored one, recorded as an `import` by
    /// `system`; returns what was written.
    async fn replace(&self, entities: Entities) -> Result<Entities, StoreError>;

    /// Up to `limit` kept revisions below `before`, newest first.
    async fn revisions(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RevisionRecord>, StoreError>;

    /// The snapshot of revision `n`, while it is kept.
    async fn snapshot(&self, n: u64) -> Result<Option<Entities>, StoreError>;

    /// The audit entries `q` asks for, newest first.
    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;

    /// The stored revision (0 when empty).
    async fn revision(&self) -> Result<u64, StoreError>;

    /// Whether the store answers now.
    async fn ping(&self) -> bool;
}

/// The file store as the config center's store: the state file
/// ([`FileStore`]) and its history ([`FileHistory`]) beside it.
#[derive(Clone)]
pub struct FileEntityStore {
    files: FileStore,
    history: Arc<FileHistory>,
}

impl FileEntityStore {
    /// The store of the state file at `path`.
    pub fn new(path: impl Into<std::path::PathBuf>) -> FileEntityStore {
        let files = FileStore::new(path);
        let history = Arc::new(FileHistory::new(files.path()));
        FileEntityStore { files, history }
    }
}

#[async_trait]
impl EntityStore for FileEntityStore {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn load(&self) -> Result<Option<Entities>, StoreError> {
        let store = self.files.clone();
        tokio::task::spawn_blocking(move || FileStore::load(&store))
            .await
            .map_err(|e| StoreError::Snapshot(e.to_string()))?
    }

    async fn save(
        &self,
        prev: &Entities,
        next: &Entities,
        commit: &Commit,
    ) -> Result<(), SaveError> {
        // One instance owns the file; the config center serializes changes.
        let store = self.clone();
        let (prev, next, commit) = (prev.clone(), next.clone(), commit.clone());
        tokio::task::spawn_blocking(move || {
            FileStore::save(&store.files, &next)?;
            // The change is saved: a history that cannot be written is
            // logged, not a reason to answer that the change failed.
            if let Err(e) = store.history.record(&commit, &prev, &next) {
                log::error!(
                    "config history: revision {} not recorded: {e}",
                    next.revision
                );
            }
            Ok(())
        })
        .await
        .map_err(|e| SaveError::Unavailable(StoreError::Snapshot(e.to_string())))?
        .map_err(SaveError::Unavailable)
    }

    async fn replace(&self, mut entities: Entities) -> Result<Entities, StoreError> {
        let stored = EntityStore::load(self).await?.unwrap_or_default();
        entities.revision = stored.revision + 1;
        let commit = Commit::import(&stored, &entities);
        EntityStore::save(self, &stored, &entities, &commit)
            .await
            .map_err(|e| match e {
                SaveError::Unavailable(e) => e,
                SaveError::Conflict => StoreError::File(SaveError::Conflict.to_string()),
            })?;
        Ok(entities)
    }

    async fn revisions(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RevisionRecord>, StoreError> {
        let h = self.history.clone();
        blocking(move || h.revisions(before, limit)).await
    }

    async fn snapshot(&self, n: u64) -> Result<Option<Entities>, StoreError> {
        let h = self.history.clone();
        blocking(move || h.snapshot(n)).await
    }

    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let (h, q) = (self.history.clone(), q.clone());
        blocking(move || h.audit(&q)).await
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        Ok(EntityStore::load(self).await?.map_or(0, |e| e.revision))
    }

    async fn ping(&self) -> bool {
        // The directory of the state file must exist to write it.
        let dir = match self.files.path().parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        dir.is_dir()
    }
}

/// Runs file I/O off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Snapshot(e.to_string()))?
}
