//! Hot apply: every accepted change takes the current entity snapshot,
//! applies the change, validates the whole config (the checks of
//! `sluice check`), compiles a new [`Runtime`] on the same counter store,
//! resolves its upstream names and probes their health, persists the
//! snapshot atomically, then swaps the runtime in. Any problem on the way
//! leaves both the store and the running gateway untouched. One async mutex
//! serializes changes, so concurrent updates never lose one another.

use super::ApiError;
use crate::config::Problem;
use crate::state::{Runtime, SharedRuntime};
use crate::store::config_file::{Entities, FileStore};
use arc_swap::ArcSwap;
use std::sync::Arc;

/// The config center's state: the applied snapshot and where it is stored.
pub struct ConfigCenter {
    runtime: SharedRuntime,
    store: Option<FileStore>,
    /// The snapshot the running runtime was built from (read without the lock).
    current: ArcSwap<Entities>,
    lock: tokio::sync::Mutex<()>,
}

impl ConfigCenter {
    /// `entities` must be what `runtime` was built from; with no `store`,
    /// changes apply but are not persisted.
    pub fn new(runtime: SharedRuntime, store: Option<FileStore>, entities: Entities) -> Self {
        ConfigCenter {
            runtime,
            store,
            current: ArcSwap::from_pointee(entities),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The applied snapshot.
    pub fn snapshot(&self) -> Arc<Entities> {
        self.current.load_full()
    }

    /// The running runtime.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Applies `change` to a copy of the snapshot, then validates, compiles,
    /// persists and swaps (see the module docs). `change` returns what the
    /// caller needs back (an id) or the error to answer with.
    pub async fn mutate<T>(
        &self,
        change: impl FnOnce(&mut Entities, &Runtime) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let _guard = self.lock.lock().await;
        let rt = self.runtime.load_full();
        let mut next = (**self.current.load()).clone();
        let out = change(&mut next, &rt)?;

        let mut config = rt.config.clone();
        next.apply_to(&mut config);
        let problems = config.check();
        if !problems.is_empty() {
            return Err(ApiError::bad_request(join(&problems, &next)));
        }
        let fresh = Runtime::build_with_store(config, rt.limits.store.clone())
            .map_err(|p| ApiError::bad_request(join(&p, &next)))?;
        fresh.warm_tokenizers();
        // New pools start unresolved: resolve and probe before any request sees them.
        fresh.refresh_pools().await;
        fresh.health_check_pools().await;

        if let Some(store) = &self.store {
            let store = store.clone();
            let snapshot = next.clone();
            tokio::task::spawn_blocking(move || store.save(&snapshot))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
                .map_err(ApiError::internal)?;
        }
        self.runtime.store(Arc::new(fresh));
        self.current.store(Arc::new(next));
        crate::metrics::metrics().config_applied(false);
        Ok(out)
    }
}

/// The problems as one `detail`, entities named by id rather than by
/// list position (`rules[id=7].namespace: ...`): API users see ids.
fn join(problems: &[Problem], e: &Entities) -> String {
    problems
        .iter()
        .map(|p| describe(p, e))
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe(p: &Problem, e: &Entities) -> String {
    let lists: [(&str, Vec<u64>); 5] = [
        ("namespaces", e.namespaces.iter().map(|n| n.id).collect()),
        (
            "upstream_servers",
            e.upstream_servers.iter().map(|s| s.id).collect(),
        ),
        ("matchers", e.matchers.iter().map(|m| m.id).collect()),
        ("proxy_rules", e.proxy_rules.iter().map(|r| r.id).collect()),
        ("rules", e.rules.iter().map(|r| r.id).collect()),
    ];
    for (kind, ids) in &lists {
        let Some(rest) = p.path.strip_prefix(kind).and_then(|r| r.strip_prefix('[')) else {
            continue;
        };
        let Some((index, after)) = rest.split_once(']') else {
            continue;
        };
        if let Some(id) = index.parse::<usize>().ok().and_then(|i| ids.get(i)) {
            return format!("{kind}[id={id}]{after}: {}", p.message);
        }
    }
    p.to_string()
}
