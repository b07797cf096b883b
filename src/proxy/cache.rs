//! The response cache in the request path (after admission, so rate
//! limits hold for cached answers too): [`lookup`] decides whether the
//! request uses the cache at all (its catalog model and its namespace opt
//! in, `Cache-Control`, `sluice_filters::cache::cacheable`), answers a
//! fresh entry, follows an identical request already in flight, or lets
//! the request go upstream with the cache stage in its pipeline
//! (`cache_record.rs`). [`serve_stale`] answers a stale entry when the
//! model could not answer and nothing was written yet.
//!
//! An answer from the cache passes through the client side of the
//! request's pipeline like any other (meter, redaction, the client's wire
//! format, `session_id` echo); by default it is not charged against token
//! or money budgets (`namespaces[].cache.charge_hits`).

use super::cache_record::{answer_header, count, served, shape, Recorder, Recording};
use super::ctx::{CacheHit, RequestCtx};
use super::plan::Plan;
use crate::cache::flight::{Flight, Joined};
use crate::catalog::Operation;
use crate::state::Snapshot;
use bytes::Bytes;
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};
use sluice_filters::cache::{self as policy, Directive, Freshness, Scope};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// What the lookup made of a request.
pub enum Lookup {
    /// Answered (from the cache, or by following an identical request).
    Served,
    /// Goes upstream; with the cache stage when the model caches (boxed:
    /// most requests carry none).
    Proceed(Option<Box<Recorder>>),
}

/// The request's use of the cache (see the module docs).
pub async fn lookup(
    session: &mut Session,
    ctx: &mut RequestCtx,
    rt: &Snapshot,
    plan: &Arc<Plan>,
) -> Result<Lookup> {
    let Some(cp) = &plan.catalog else {
        return Ok(Lookup::Proceed(None));
    };
    let model = &rt.catalog.models[cp.model];
    let ns = &rt.namespaces[plan.namespace];
    let (Some(mc), Some(nc)) = (&model.cache, &ns.cache) else {
        return Ok(Lookup::Proceed(None));
    };
    let cache_control: Vec<&str> = session
        .req_header()
        .headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let directive = policy::directive(Some(&cache_control.join(",")));
    let op = match cp.op {
        Operation::Chat => policy::Operation::Chat,
        Operation::Embeddings => policy::Operation::Embeddings,
    };
    if directive == Directive::Bypass
        || policy::cacheable(op, &cp.body, nc.any_sampling, nc.tools).is_err()
    {
        count(&ns.code, &model.name, "bypass");
        ctx.observed.cache = Some("bypass");
        return Ok(Lookup::Proceed(Some(Box::new(Recorder::bypass()))));
    }
    // Per-key isolation: the key's name, and an issuer's subject.
    let isolation = nc.per_key.then(|| {
        let key = plan.key.map_or("", |k| rt.keys[k].name.as_str());
        format!(
            "{key}\u{1f}{}",
            ctx.observed.subject.as_deref().unwrap_or("")
        )
    });
    let key = policy::key(
        &Scope {
            namespace: &ns.code,
            model: &model.name,
            operation: op,
            isolation: isolation.as_deref(),
            max_output: plan.llm.max_tokens,
        },
        &cp.body,
    );
    let ttl_ms = nc.ttl_s.unwrap_or(mc.ttl_s).saturating_mul(1000);
    let stale_ms = mc.stale_s.saturating_mul(1000);
    let cache = crate::cache::cache();
    let mut stale = None;
    if directive == Directive::Use {
        if let Some((entry, _tier)) = cache.lookup(&ns.code, &model.name, &key).await {
            match policy::freshness(entry.stored_ms, crate::clock::wall_ms(), ttl_ms, stale_ms) {
                Freshness::Fresh => {
                    count(&ns.code, &model.name, "hit");
                    ctx.observed.cache = Some("hit");
                    ctx.cache_hit = Some(CacheHit {
                        charged: nc.charge_hits,
                    });
                    let chunks = shape(&entry, plan);
                    served(&ns.code, &model.name, chunks.iter().map(Bytes::len).sum());
                    write_answer(session, ctx, plan, chunks, "hit", &key).await?;
                    return Ok(Lookup::Served);
                }
                Freshness::Stale => stale = Some(entry),
                Freshness::Expired => {}
            }
        }
    }
    // The limits lowered the output limit the upstream sees: an answer
    // that stopped there is not the answer to the client's request.
    let clamped = plan
        .granted
        .as_ref()
        .and_then(|g| g.output_cap)
        .is_some_and(|cap| {
            plan.llm
                .max_tokens
                .is_none_or(|asked| asked > cap / plan.llm.choices.max(1))
        });
    let recording = |lead| Recording {
        key,
        lead,
        stale: stale.clone(),
        plan: plan.clone(),
        namespace: ns.code.clone(),
        model: model.name.clone(),
        ttl_ms,
        stale_ms,
        max_bytes: rt.config.cache.max_entry_bytes,
        clamped,
    };
    let flight_key = (key, plan.llm.stream);
    match cache.flights().join(flight_key) {
        Joined::Lead(lead) => {
            count(&ns.code, &model.name, "miss");
            ctx.observed.cache = Some("miss");
            Ok(Lookup::Proceed(Some(Box::new(Recorder::miss(recording(
                Some(lead),
            ))))))
        }
        Joined::Follow(flight) => {
            if follow(session, ctx, rt, plan, &flight, &key).await? {
                cache.counts.coalesced.fetch_add(1, Relaxed);
                count(&ns.code, &model.name, "hit");
                ctx.observed.cache = Some("hit");
                ctx.cache_hit = Some(CacheHit {
                    charged: nc.charge_hits,
                });
                return Ok(Lookup::Served);
            }
            // The leader failed before answering: go upstream, leading a
            // new flight when none has started meanwhile.
            count(&ns.code, &model.name, "miss");
            ctx.observed.cache = Some("miss");
            let lead = match cache.flights().join(flight_key) {
                Joined::Lead(lead) => Some(lead),
                Joined::Follow(_) => None,
            };
            Ok(Lookup::Proceed(Some(Box::new(Recorder::miss(recording(
                lead,
            ))))))
        }
    }
}

/// Follows a leader's answer to the client. Ok(false) = the leader failed
/// before its answer started (nothing was written: go upstream); an error
/// once the answer started and the leader failed or stalled (the client's
/// answer is cut, as the leader's was).
async fn follow(
    session: &mut Session,
    ctx: &mut RequestCtx,
    rt: &Snapshot,
    plan: &Arc<Plan>,
    flight: &Arc<Flight>,
    key: &[u8; 32],
) -> Result<bool> {
    let t = &rt.config.timeouts;
    let total = if plan.llm.stream {
        t.stream_total_ms
    } else {
        t.total_ms
    };
    let start = tokio::time::Instant::now();
    let mut changed = flight.subscribe();
    let mut sent = 0usize;
    let mut header_sent = false;
    loop {
        let (started, chunks, end) = flight.read(sent);
        if !started {
            if end.is_some() {
                return Ok(false);
            }
        } else {
            if !header_sent {
                write_header(session, ctx, plan, "hit", key).await?;
                header_sent = true;
            }
            sent += chunks.len();
            let last = end == Some(true);
            let n = chunks.len();
            for (i, chunk) in chunks.into_iter().enumerate() {
                if !plan.client_wants_usage && policy::replay::usage_only(&chunk) {
                    continue;
                }
                if write_chunk(session, ctx, chunk, last && i + 1 == n).await? {
                    return Ok(true);
                }
            }
            match end {
                Some(true) => {
                    write_chunk(session, ctx, Bytes::new(), true).await?;
                    return Ok(true);
                }
                Some(false) => {
                    return Error::e_explain(
                        ErrorType::HTTPStatus(502),
                        "the coalesced request's answer failed mid-way",
                    )
                }
                None => {}
            }
        }
        // Wait for the next change: the first byte, then each chunk, is
        // bounded like an upstream's.
        let wait = if started { t.idle_ms } else { t.first_byte_ms };
        let limit = Duration::from_millis(wait.min(total));
        let deadline =
            (tokio::time::Instant::now() + limit).min(start + Duration::from_millis(total));
        match tokio::time::timeout_at(deadline, changed.changed()).await {
            Ok(Ok(())) => {}
            // The flight is gone or stalled.
            _ if !header_sent => return Ok(false),
            _ => {
                return Error::e_explain(
                    ErrorType::ReadTimedout,
                    "the coalesced request's answer stalled",
                )
            }
        }
    }
}

/// Writes the header of an answer from the cache through the client side
/// of the request's pipeline.
async fn write_header(
    session: &mut Session,
    ctx: &mut RequestCtx,
    plan: &Plan,
    label: &'static str,
    key: &[u8; 32],
) -> Result<()> {
    let mut header = answer_header(plan.llm.stream, label)?;
    header.insert_header("x-cache-key", hex::encode(key))?;
    let rate = plan
        .granted
        .as_ref()
        .and_then(|g| g.reservation.as_ref())
        .map(|r| &r.rate);
    super::headers::downstream(&mut header, &ctx.request_id, rate, !plan.internal)?;
    ctx.pipeline.on_header(&mut header)?;
    if let Some(rt) = &ctx.runtime {
        super::compression::decide(session, &rt.config.compression, &header);
    }
    ctx.response_started = true;
    session.write_response_header(Box::new(header), false).await
}

/// Writes one chunk through the pipeline; returns whether the answer
/// ended (its last chunk, or the meter cut it).
async fn write_chunk(
    session: &mut Session,
    ctx: &mut RequestCtx,
    chunk: Bytes,
    last: bool,
) -> Result<bool> {
    let mut body = (!chunk.is_empty()).then_some(chunk);
    let end = ctx.pipeline.on_body(&mut body, last);
    if body.is_some() || end {
        session.write_response_body(body, end).await?;
    }
    Ok(end)
}

/// Writes a whole answer from the cache.
async fn write_answer(
    session: &mut Session,
    ctx: &mut RequestCtx,
    plan: &Plan,
    chunks: Vec<Bytes>,
    label: &'static str,
    key: &[u8; 32],
) -> Result<()> {
    write_header(session, ctx, plan, label, key).await?;
    let n = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        if write_chunk(session, ctx, chunk, i + 1 == n).await? {
            return Ok(());
        }
    }
    write_chunk(session, ctx, Bytes::new(), true).await?;
    Ok(())
}

/// Answers the stale entry the lookup kept, when the model could not
/// answer and nothing was written to the client yet. Returns whether it
/// did.
pub async fn serve_stale(session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
    if session.response_written().is_some() {
        return Ok(false);
    }
    let Some(mut recorder) = ctx.pipeline.take_recorder() else {
        return Ok(false);
    };
    let key = recorder.key();
    let Some((entry, plan)) = recorder.take_stale() else {
        ctx.pipeline.add_recorder(recorder);
        return Ok(false);
    };
    // Answered through the rest of the client side.
    let chunks = shape(&entry, &plan);
    stale_served(ctx, &plan, chunks.iter().map(Bytes::len).sum());
    write_answer(
        session,
        ctx,
        &plan,
        chunks,
        "stale",
        &key.unwrap_or_default(),
    )
    .await?;
    Ok(true)
}

/// Counts a stale answer (metrics, access log).
pub fn stale_served(ctx: &mut RequestCtx, plan: &Plan, bytes: usize) {
    ctx.observed.cache = Some("stale");
    if let (Some(rt), Some(cp)) = (&ctx.runtime, &plan.catalog) {
        let ns = &rt.namespaces[plan.namespace].code;
        let model = &rt.catalog.models[cp.model].name;
        count(ns, model, "stale");
        served(ns, model, bytes);
    }
}
