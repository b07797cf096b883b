//! Opening the config store at start (`sluice run`): the store
//! `config_store.kind` names, the Redis bus when configured, and the
//! entities to start with. Precedence: an empty store is seeded from the
//! YAML's entities; afterwards the store is the truth and the YAML's entity
//! lists are ignored, unless `--reimport-yaml` replaces the stored entities
//! with them.

use super::config_bus::ConfigBus;
use super::config_file::Entities;
use super::entity_store::{EntityStore, FileEntityStore, SaveError};
use super::history::Commit;
use super::io;
use super::mysql::MysqlStore;
use super::status::status;
use super::StoreError;
use crate::config::{Config, ConfigStoreKind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The opened store, its bus and the entities to start with.
pub struct Opened {
    pub store: Arc<dyn EntityStore>,
    pub bus: Option<Arc<ConfigBus>>,
    pub entities: Entities,
    /// Where the entities came from, for messages (`mysql store`, a path).
    pub origin: String,
}

/// Opens the store of `config` (`state_path` is the file store's file).
pub fn open(config: &Config, state_path: PathBuf, reimport: bool) -> Result<Opened, StoreError> {
    let s = &config.config_store;
    let timeout = Duration::from_millis(s.timeout_ms);
    let (store, origin): (Arc<dyn EntityStore>, String) = match (&s.kind, &s.mysql_url) {
        (ConfigStoreKind::Mysql, Some(url)) => {
            let url = url.expose().clone();
            let store = io::block_on(timeout * 10, async move {
                MysqlStore::connect(&url, timeout).await
            })
            .map_err(|e| e.context("config store"))?;
            (Arc::new(store), "mysql store".into())
        }
        _ => {
            let origin = state_path.display().to_string();
            (Arc::new(FileEntityStore::new(state_path)), origin)
        }
    };
    status().set_kind(store.kind());
    let bus = match &s.redis_url {
        Some(url) => {
            let (url, prefix) = (url.expose().clone(), s.key_prefix.clone());
            let bus = io::block_on(timeout * 2, async move {
                ConfigBus::connect(&url, &prefix, timeout).await
            })
            .map_err(|e| e.context("config_store.redis_url"))?;
            status().set_bus(Some(true));
            Some(Arc::new(bus))
        }
        None => None,
    };
    let yaml = Entities::from_config(config);
    let entities = if reimport {
        let st = store.clone();
        let written = io::block_on(timeout * 2, async move { st.replace(yaml).await })
            .map_err(|e| e.context(format!("{origin}: re-import of the YAML entities failed")))?;
        log::warn!(
            "{origin}: entities re-imported from the YAML (revision {})",
            written.revision
        );
        written
    } else {
        load_or_seed(&store, yaml, store.kind() == "mysql", timeout, &origin)?
    };
    status().set_revision(entities.revision);
    Ok(Opened {
        store,
        bus,
        entities,
        origin,
    })
}

/// The stored entities; an empty shared store is seeded with the YAML's
/// (the file store is written on the first change instead).
fn load_or_seed(
    store: &Arc<dyn EntityStore>,
    yaml: Entities,
    seed: bool,
    timeout: Duration,
    origin: &str,
) -> Result<Entities, StoreError> {
    for _ in 0..3 {
        let st = store.clone();
        let stored = io::block_on(timeout * 2, async move { st.load().await })
            .map_err(|e| e.context(origin))?;
        if let Some(stored) = stored {
            log::warn!(
                "entities loaded from {origin} (revision {})",
                stored.revision
            );
            return Ok(stored);
        }
        if !seed {
            return Ok(yaml);
        }
        let mut seeded = yaml.clone();
        seeded.revision = 1;
        let (st, s2) = (store.clone(), seeded.clone());
        let saved = io::block_on(timeout * 2, async move {
            let commit = Commit::import(&Entities::default(), &s2);
            Ok(st.save(&Entities::default(), &s2, &commit).await)
        })
        .map_err(|e| e.context(origin))?;
        match saved {
            Ok(()) => {
                log::warn!("{origin} was empty: seeded with the YAML's entities");
                return Ok(seeded);
            }
            // Another instance seeded it meanwhile: read that.
            Err(SaveError::Conflict) => continue,
            Err(SaveError::Unavailable(e)) => return Err(e.context(origin)),
        }
    }
    Err(StoreError::Corrupt(format!(
        "{origin}: could not read or seed the store"
    )))
}
