//! [`EntityStore`]: where the config center keeps its entities, chosen by
//! `config_store.kind`: the file store ([`super::config_file`], one
//! instance) or MySQL ([`super::mysql`], shared by every instance). The
//! config center reads it at start and when another instance announces a
//! change, and commits every change through [`EntityStore::save`], which
//! refuses a change made on an older revision than the stored one.

use super::config_file::{Entities, FileStore};
use super::StoreError;
use async_trait::async_trait;

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
    async fn save(&self, prev: &Entities, next: &Entities) -> Result<(), SaveError>;

    /// Replaces whatever is stored with `entities` (re-import of the YAML),
    /// one revision above the stored one; returns what was written.
    async fn replace(&self, entities: Entities) -> Result<Entities, StoreError>;

    /// The stored revision (0 when empty).
    async fn revision(&self) -> Result<u64, StoreError>;

    /// Whether the store answers now.
    async fn ping(&self) -> bool;
}

#[async_trait]
impl EntityStore for FileStore {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn load(&self) -> Result<Option<Entities>, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || FileStore::load(&store))
            .await
            .map_err(|e| StoreError::Snapshot(e.to_string()))?
    }

    async fn save(&self, _prev: &Entities, next: &Entities) -> Result<(), SaveError> {
        // One instance owns the file; the config center serializes changes.
        let store = self.clone();
        let next = next.clone();
        tokio::task::spawn_blocking(move || FileStore::save(&store, &next))
            .await
            .map_err(|e| SaveError::Unavailable(StoreError::Snapshot(e.to_string())))?
            .map_err(SaveError::Unavailable)
    }

    async fn replace(&self, mut entities: Entities) -> Result<Entities, StoreError> {
        let stored = EntityStore::load(self).await?;
        entities.revision = stored.map_or(0, |s| s.revision) + 1;
        EntityStore::save(self, &Entities::default(), &entities)
            .await
            .map_err(|e| match e {
                SaveError::Unavailable(e) => e,
                SaveError::Conflict => StoreError::File(SaveError::Conflict.to_string()),
            })?;
        Ok(entities)
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        Ok(EntityStore::load(self).await?.map_or(0, |e| e.revision))
    }

    async fn ping(&self) -> bool {
        // The directory of the state file must exist to write it.
        let dir = match self.path().parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        dir.is_dir()
    }
}
