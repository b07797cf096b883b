//! The response pipeline's cache stage ([`Recorder`]), first on the client
//! side: it sees the answer as the upstream side made it (OpenAI's wire
//! format), labels it `x-cache`, publishes it to the request's followers
//! (coalescing) as it passes, and stores it once it ended whole —
//! successful, complete (`[DONE]` and finish reasons for a stream, a
//! chat completion or embeddings list otherwise), not cut by the meter,
//! within the size bound. A client that leaves or a cut stream never
//! reaches the end, so nothing is stored. When the answer is an upstream
//! failure (5xx or 429 after every deployment was tried) and an expired
//! entry within its grace period was found, the stage answers that entry
//! instead (`x-cache: stale`).

use super::plan::Plan;
use crate::cache::entry::Entry;
use crate::cache::flight::Lead;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::Result;
use sluice_filters::cache::replay;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// What the stage stores, and where.
pub struct Recording {
    pub key: [u8; 32],
    /// Leads the request's flight (followers get the answer as it passes).
    pub lead: Option<Lead>,
    /// An expired entry within its grace period: answered on failure.
    pub stale: Option<Arc<Entry>>,
    pub plan: Arc<Plan>,
    pub namespace: String,
    pub model: String,
    pub ttl_ms: u64,
    pub stale_ms: u64,
    pub max_bytes: usize,
    /// The limits lowered the request's output limit: an answer that
    /// stopped at it is not stored.
    pub clamped: bool,
}

/// The cache stage of one answer.
pub struct Recorder {
    label: &'static str,
    rec: Option<Recording>,
    ok: bool,
    chunks: Vec<Bytes>,
    bytes: usize,
    too_big: bool,
    /// Answering the stale entry instead of the failed answer.
    swapped: bool,
}

impl Recorder {
    /// Labels the answer `x-cache: bypass` and stores nothing.
    pub fn bypass() -> Recorder {
        Recorder::new("bypass", None)
    }

    /// Labels the answer `x-cache: miss` and records it.
    pub fn miss(rec: Recording) -> Recorder {
        Recorder::new("miss", Some(rec))
    }

    fn new(label: &'static str, rec: Option<Recording>) -> Recorder {
        Recorder {
            label,
            rec,
            ok: false,
            chunks: Vec::new(),
            bytes: 0,
            too_big: false,
            swapped: false,
        }
    }

    /// The label of the answer as it went out.
    pub fn label(&self) -> &'static str {
        if self.swapped {
            "stale"
        } else {
            self.label
        }
    }

    /// The key of the entry it records.
    pub fn key(&self) -> Option<[u8; 32]> {
        self.rec.as_ref().map(|r| r.key)
    }

    /// The stale entry to answer when the model cannot, taken once.
    pub fn take_stale(&mut self) -> Option<(Arc<Entry>, Arc<Plan>)> {
        let rec = self.rec.as_mut()?;
        let entry = rec.stale.take()?;
        rec.lead = None;
        self.swapped = true;
        Some((entry, rec.plan.clone()))
    }

    pub fn on_header(&mut self, header: &mut ResponseHeader) -> Result<()> {
        let status = header.status.as_u16();
        if status >= 500 || status == 429 {
            let key = self.key();
            if let Some((entry, plan)) = self.take_stale() {
                let request_id = header.headers.get("x-request-id").cloned();
                *header = answer_header(plan.llm.stream, "stale")?;
                if let Some(id) = request_id {
                    header.insert_header("x-request-id", id)?;
                }
                if let Some(k) = key {
                    header.insert_header("x-cache-key", hex::encode(k))?;
                }
                // The failed answer's body is dropped; the entry replaces it.
                self.chunks = shape(&entry, &plan);
                if let Some(r) = &self.rec {
                    let bytes = self.chunks.iter().map(Bytes::len).sum();
                    count(&r.namespace, &r.model, "stale");
                    served(&r.namespace, &r.model, bytes);
                }
                return Ok(());
            }
        }
        self.ok = status == 200;
        if let Some(lead) = self.rec.as_mut().and_then(|r| r.lead.as_ref()) {
            if self.ok {
                lead.start();
            }
        }
        if !self.ok {
            // Followers go upstream on their own.
            if let Some(r) = self.rec.as_mut() {
                r.lead = None;
            }
        }
        header.insert_header("x-cache", self.label)?;
        if let Some(r) = &self.rec {
            header.insert_header("x-cache-key", hex::encode(r.key))?;
        }
        Ok(())
    }

    pub fn on_body(&mut self, body: &mut Option<Bytes>, end: bool) {
        if self.swapped {
            *body = None;
            if end {
                let all: Vec<u8> = std::mem::take(&mut self.chunks).concat();
                *body = Some(Bytes::from(all));
            }
            return;
        }
        let (Some(rec), true) = (self.rec.as_mut(), self.ok) else {
            return;
        };
        let Some(chunk) = body.as_ref().filter(|b| !b.is_empty()) else {
            return;
        };
        self.bytes += chunk.len();
        if self.bytes > rec.max_bytes {
            // Not stored, and no longer shared: the flight's followers
            // would hold the whole answer. Those that started are cut,
            // the others go upstream.
            self.too_big = true;
            self.chunks = Vec::new();
            rec.lead = None;
        } else {
            if let Some(lead) = &rec.lead {
                lead.chunk(chunk.clone());
            }
            self.chunks.push(chunk.clone());
        }
    }

    /// The answer ended (`cut`: a later stage cut it short): stores it
    /// when it is whole, and ends the flight either way.
    pub fn finish(&mut self, cut: bool) {
        if self.swapped {
            return;
        }
        let Some(rec) = self.rec.take() else {
            return;
        };
        let stream = rec.plan.llm.stream;
        let body = self.chunks.concat();
        let whole = self.ok
            && !cut
            && !self.too_big
            && replay::complete(stream, &body)
            && !(rec.clamped && replay::stopped_at_limit(stream, &body));
        if let Some(lead) = &rec.lead {
            lead.finish(whole);
        }
        if !whole {
            return;
        }
        let usage = rec
            .plan
            .catalog
            .as_ref()
            .and_then(|cp| cp.outcome.lock().ok().and_then(|o| o.usage));
        crate::cache::cache().store(
            rec.key,
            Entry {
                stream,
                chunks: std::mem::take(&mut self.chunks),
                usage,
                stored_ms: crate::clock::wall_ms(),
                ttl_ms: rec.ttl_ms,
                stale_ms: rec.stale_ms,
                namespace: rec.namespace,
                model: rec.model,
            },
        );
    }
}

/// The header of an answer from the cache: 200, the answer's type,
/// `x-cache`; streams chunked and not cached by clients.
pub fn answer_header(stream: bool, label: &'static str) -> Result<ResponseHeader> {
    let mut header = ResponseHeader::build(200, Some(4))?;
    if stream {
        header.insert_header("content-type", "text/event-stream")?;
        header.insert_header("cache-control", "no-cache")?;
    } else {
        header.insert_header("content-type", "application/json")?;
    }
    header.insert_header("transfer-encoding", "chunked")?;
    header.insert_header("x-cache", label)?;
    Ok(header)
}

/// A stored answer in the shape `plan` asks for: a stream (its usage
/// fitted to what the client asked) or one JSON object, whichever way it
/// was stored. Chunked as stored when the shapes agree.
pub fn shape(entry: &Entry, plan: &Plan) -> Vec<Bytes> {
    match (entry.stream, plan.llm.stream) {
        (true, true) => replay::fit_usage(&entry.chunks, plan.client_wants_usage, entry.usage),
        (false, false) => entry.chunks.clone(),
        (true, false) => replay::stream_to_json(&entry.body())
            .map(|b| vec![Bytes::from(b)])
            .unwrap_or_default(),
        (false, true) => {
            let chunks: Vec<Bytes> = replay::json_to_stream(&entry.body())
                .unwrap_or_default()
                .into_iter()
                .map(Bytes::from)
                .collect();
            replay::fit_usage(&chunks, plan.client_wants_usage, entry.usage)
        }
    }
}

/// Counts a request's cache result (`hit`, `miss`, `stale`, `bypass`)
/// for `/stats` and the metrics.
pub(super) fn count(ns: &str, model: &str, result: &'static str) {
    let c = &crate::cache::cache().counts;
    match result {
        "hit" => c.hits.fetch_add(1, Relaxed),
        "miss" => c.misses.fetch_add(1, Relaxed),
        "stale" => c.stale.fetch_add(1, Relaxed),
        _ => c.bypass.fetch_add(1, Relaxed),
    };
    crate::metrics::metrics()
        .f
        .cache_requests
        .with_label_values(&[ns, model, result])
        .inc();
}

/// Counts bytes answered from the cache.
pub(super) fn served(ns: &str, model: &str, bytes: usize) {
    crate::cache::cache()
        .counts
        .served_bytes
        .fetch_add(bytes as u64, Relaxed);
    crate::metrics::metrics()
        .f
        .cache_bytes
        .with_label_values(&[ns, model])
        .inc_by(bytes as u64);
}
