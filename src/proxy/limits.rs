//! Limits at admission (`request_filter`): count the prompt, plan the
//! namespace's rules, ask the counter store once, and turn the answer into
//! a reservation or a denial. Settling the reservation with the actual
//! usage happens in `logging` ([`settle`]). The arithmetic is
//! `sluice_filters::limits`; this file only gathers its inputs.

use crate::error::{GatewayError, LimitDenial};
use crate::metrics::metrics;
use crate::state::Snapshot;
use serde_json::Value;
use sluice_filters::facts::HeaderLookup;
use sluice_filters::limits::plan::{self, Decision, Denial, RequestView, Reservation};
use sluice_filters::limits::rules::RuleConfig;
use sluice_filters::limits::store::{Clock, Settle, SystemClock};
use sluice_filters::routing::RouteMatch;
use sluice_filters::tokens::{count_prompt_within, TokenCounter};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// What admission granted, carried to the response phases and `logging`.
pub struct Granted {
    /// Held counters to settle; none when no stateful rule applied (or the
    /// store was down and every rule fails open).
    pub reservation: Option<Reservation>,
    /// Most output tokens the client may receive; none = unlimited.
    pub output_cap: Option<u64>,
    pub prompt_tokens: u64,
    /// Counter of the request's model (cutting output, counting it).
    pub counter: &'static dyn TokenCounter,
    /// A token rule applies to this model call: its response is metered.
    pub metered: bool,
}

impl std::fmt::Debug for Granted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Granted")
            .field("output_cap", &self.output_cap)
            .field("prompt_tokens", &self.prompt_tokens)
            .field(
                "reserved",
                &self.reservation.as_ref().map(|r| r.reserved_tokens),
            )
            .finish()
    }
}

/// The request as the limits see it.
pub struct LimitInput<'a> {
    pub namespace: usize,
    pub key: Option<usize>,
    /// An external issuer's subject: with the key's name, the caller's
    /// identity in counters keyed by `api_key`.
    pub subject: Option<&'a str>,
    /// None: a catalog request no route matched (its label is empty).
    pub route: Option<&'a RouteMatch>,
    /// None: no upstream (a Bridge invocation).
    pub pool: Option<usize>,
    pub model: Option<&'a str>,
    pub requested_output: Option<u64>,
    /// Completions generated and billed (`n` / `best_of`), at least 1.
    pub choices: u64,
    pub body: Option<&'a Value>,
    /// The raw body's length (how costly counting its prompt may be).
    pub body_len: usize,
    pub headers: &'a dyn HeaderLookup,
    pub request_id: &'a str,
    /// What its tokens cost (a catalog model's dearest deployment).
    pub price: Option<plan::Price>,
    /// Came by the internal channel.
    pub internal: bool,
}

/// Runs the rules of the request's namespace. `Ok(None)` = no rule applies
/// (nothing counted, nothing to settle).
pub async fn admit(rt: &Snapshot, input: &LimitInput<'_>) -> Result<Option<Granted>, GatewayError> {
    let limits = &rt.limits;
    let Some(indexes) = limits.by_namespace.get(input.namespace) else {
        return Ok(None);
    };
    if indexes.is_empty() {
        return Ok(None);
    }
    // Token rules apply to model calls only: generation (`messages`,
    // `prompt`) and embeddings (`input`); a `GET /v1/models` spends no
    // tokens and is not metered.
    let body = input.body.filter(|b| b.is_object());
    let has = |field: &str| body.is_some_and(|b| b.get(field).is_some());
    let generation = has("messages") || has("prompt");
    let model_call = generation || has("input");
    let metered = model_call && limits.counts_tokens[input.namespace];
    // On the stack for up to 8 rules (one allocation less per request).
    let rules: SmallVec<[&plan::Rule; 8]> = indexes
        .iter()
        .map(|&i| &limits.rules[i])
        .filter(|r| {
            model_call || !matches!(r.config, RuleConfig::TokenLimit(_) | RuleConfig::Budget(_))
        })
        .collect();
    if rules.is_empty() {
        return Ok(None);
    }
    // The route's label is a counter key part only for `key_by: route`.
    let by_route = rules.iter().any(|r| {
        r.only_route.is_some()
            || r.config
                .key_by()
                .contains(sluice_filters::limits::rules::KeyBy::Route)
    });
    let route = if by_route {
        input
            .route
            .map(|r| r.label(&rt.router))
            .unwrap_or_else(|| format!("model:{}", input.model.unwrap_or("")))
    } else {
        String::new()
    };
    let model = input.model.unwrap_or("");
    let counter = limits.tokenizers.resolve(model).encoding.counter();
    // Prompt counting is the costly part; only token rules need it, and
    // only up to the count past which they all deny.
    let prompt_tokens = match body {
        Some(b) if metered => {
            let ceiling = plan::prompt_ceiling(&rules, input.model);
            count_off_loop(input.body_len, || {
                count_prompt_within(counter, b, ceiling).tokens
            })
            .await
        }
        _ => 0,
    };
    // Embeddings produce no output: reserve one token so the budget's
    // "prompt + 1" floor holds; settlement charges the actual usage.
    let requested_output = if generation {
        input.requested_output
    } else {
        Some(1)
    };
    let identity = input.key.map(|k| {
        let name = rt.keys[k].name.as_str();
        match input.subject {
            Some(sub) => std::borrow::Cow::Owned(format!("{name}/{sub}")),
            None => std::borrow::Cow::Borrowed(name),
        }
    });
    let planned = {
        let view = RequestView {
            namespace: rt.namespaces[input.namespace].code.as_str(),
            api_key: identity.as_deref(),
            route: &route,
            model: input.model,
            upstream: input.pool.map_or("", |p| rt.pools[p].name.as_str()),
            headers: input.headers,
            request_id: input.request_id,
            prompt_tokens,
            requested_output,
            choices: if generation { input.choices } else { 1 },
            price: input.price,
            internal: input.internal,
        };
        plan::plan(&rules, &view, &limits.settings).map_err(deny)?
    };
    let decision = if planned.is_empty() {
        planned.into_decision(&rules, &Default::default())
    } else {
        let admitted = limits.store.admit(&planned.checks).await;
        match admitted {
            Ok(admission) => {
                store_recovered(&limits.store).await;
                // (An in-process store never fails: nothing to note.)
                let shared = matches!(limits.store, crate::live::Counters::Shared(_));
                if shared && planned.shares_locally() {
                    let mut seen = lock(crate::live::seen_remaining());
                    planned.note_remaining(&admission, &mut seen, SystemClock.now_ms());
                }
                planned.into_decision(&rules, &admission)
            }
            Err(e) => {
                store_failed(&e.to_string());
                let live = crate::fleet::live_count() as u64;
                let (instances, shared) = {
                    let mut seen = lock(crate::live::seen_remaining());
                    let instances = seen.outage_fleet(live);
                    let now = SystemClock.now_ms();
                    let shared = planned.local_share(instances, |check| seen.remaining(check, now));
                    (instances, shared)
                };
                match shared {
                    Some(local) => {
                        let admission = crate::live::stand_in().admit_now(&local.checks);
                        metrics().local_share(admission.admitted);
                        crate::store::status::status().set_local_share(instances);
                        local.into_decision(&rules, &admission)
                    }
                    None => planned.on_store_error(&rules),
                }
            }
        }
    };
    match decision {
        Decision::Allow(reservation) => Ok(Some(Granted {
            metered,
            output_cap: reservation.output_cap,
            reservation: Some(reservation),
            prompt_tokens,
            counter,
        })),
        Decision::Deny(d) => Err(deny(d)),
    }
}

/// Bodies up to this size are counted in place: about 7 µs per KiB of
/// text (~140 MB/s, `token_bench`), under half a millisecond in all.
const COUNT_IN_PLACE: usize = 64 * 1024;

/// Runs a prompt count of a body of `body_len` bytes. A large one runs
/// with `block_in_place` (this worker hands its other tasks to a fresh
/// one, so every other request keeps being served while it counts) and at
/// most [`large_counts`] at a time; the rest wait their turn without
/// blocking anything. Worst case (one repeated character) costs about as
/// much as ordinary text (`sluice_filters::tokens` merges long pieces in
/// chunks), about 20 ms per MiB.
async fn count_off_loop(body_len: usize, count: impl FnOnce() -> u64) -> u64 {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let multi =
        Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if body_len <= COUNT_IN_PLACE || !multi {
        return count();
    }
    let _permit = large_counts().acquire().await;
    tokio::task::block_in_place(count)
}

/// Large prompt counts running at once: half the cores (at least one), so
/// they never take every core from the event loops.
fn large_counts() -> &'static tokio::sync::Semaphore {
    static SEM: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SEM.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new((cores / 2).max(1))
    })
}

fn deny(d: Denial) -> GatewayError {
    GatewayError::Limited(Box::new(LimitDenial {
        rule_id: d.rule_id,
        status: d.status,
        code: d.code,
        message: d.message,
        retry_after_secs: d.retry_after_secs,
        headers: d.headers,
    }))
}

/// A mutex held for a few map operations; a poisoned one is still usable
/// (its map is valid whatever panicked).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether the store is in a failure episode (logged once per episode).
static STORE_DOWN: AtomicBool = AtomicBool::new(false);

fn store_failed(error: &str) {
    metrics().counter_store_error();
    if !STORE_DOWN.swap(true, Relaxed) {
        log::error!("counter store unavailable, applying each rule's fail_mode: {error}");
    }
}

async fn store_recovered(counters: &crate::live::Counters) {
    if STORE_DOWN.load(Relaxed) && STORE_DOWN.swap(false, Relaxed) {
        crate::store::status::status().set_local_share(0);
        lock(crate::live::seen_remaining()).outage_over();
        let handed = crate::live::hand_over_stand_in(counters).await;
        log::warn!(
            "counter store available again ({handed} windows and budgets counted locally meanwhile charged to it)"
        );
    }
}

/// Gives back what the request held (`Reservation::into_settlement`):
/// its concurrency slots, and the difference between the reserved and the
/// used tokens.
pub async fn settle(rt: &Snapshot, ops: &[Settle]) {
    if ops.is_empty() {
        return;
    }
    let settled = rt.limits.store.settle(ops).await;
    match settled {
        // Queued (the Redis store lands it later, retrying): says nothing
        // of the store's health; admissions do.
        Ok(()) => {}
        // Leases expire by themselves (`counters.lease_ms`); the token
        // difference is lost, which the metric makes visible.
        Err(e) => store_failed(&e.to_string()),
    }
}
