//! OpenTelemetry traces of client requests (`tracing:` in the config): a
//! span per request (kind server) with children for admission, each
//! upstream attempt (kind client; its id goes upstream in `traceparent`)
//! and the streamed answer, GenAI attributes (operation, model, provider,
//! token usage, finish reasons). A request's `traceparent` is continued
//! (its trace id, its span as the parent, its sampling decision); other
//! requests are sampled at `sample_ratio` (`sluice_filters::trace`).
//!
//! Spans are kept with the request ([`Trace`], shared with its
//! subrequest) and handed to the exporter ([`export`]) when it ends: a
//! bounded queue that never blocks the request path.

pub mod export;

use sluice_filters::trace::{self as w3c, TraceParent};
use std::sync::{Arc, Mutex};

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Strs(Vec<String>),
}

/// Span kinds (OTLP's numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub kind: Kind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Vec<(&'static str, Value)>,
    pub error: bool,
}

/// Wall-clock nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    crate::clock::wall_nanos() as u64
}

/// A fresh span id (never zero).
pub fn span_id() -> [u8; 8] {
    loop {
        let id = fastrand::u64(..).to_be_bytes();
        if id != [0; 8] {
            return id;
        }
    }
}

fn trace_id() -> [u8; 16] {
    loop {
        let id = fastrand::u128(..).to_be_bytes();
        if id != [0; 16] {
            return id;
        }
    }
}

/// One request's trace while it runs.
#[derive(Debug)]
pub struct Trace {
    pub trace_id: [u8; 16],
    /// The request's own span.
    pub root: [u8; 8],
    /// The caller's span, from its `traceparent`.
    parent: Option<[u8; 8]>,
    pub start_ns: u64,
    children: Mutex<Vec<Span>>,
}

impl Trace {
    /// A trace for a request with this `traceparent`, when it is sampled
    /// (at `ratio` for new traces) and an exporter runs.
    pub fn start(traceparent: Option<&str>, ratio: f64) -> Option<Arc<Trace>> {
        if !export::running() {
            return None;
        }
        let parent: Option<TraceParent> = traceparent.and_then(w3c::parse);
        let id = parent.map_or_else(trace_id, |p| p.trace_id);
        if !w3c::sampled(parent.as_ref(), &id, ratio) {
            return None;
        }
        Some(Arc::new(Trace {
            trace_id: id,
            root: span_id(),
            parent: parent.map(|p| p.span_id),
            start_ns: now_ns(),
            children: Mutex::new(Vec::new()),
        }))
    }

    /// The `traceparent` an upstream attempt (span `span`) sends.
    pub fn traceparent(&self, span: &[u8; 8]) -> String {
        w3c::format(&self.trace_id, span, true)
    }

    /// Records a child of the request's span.
    pub fn child(
        &self,
        id: [u8; 8],
        name: &str,
        kind: Kind,
        start_ns: u64,
        attributes: Vec<(&'static str, Value)>,
        error: bool,
    ) {
        let span = Span {
            trace_id: self.trace_id,
            span_id: id,
            parent: Some(self.root),
            name: name.to_string(),
            kind,
            start_ns,
            end_ns: now_ns().max(start_ns),
            attributes,
            error,
        };
        self.keep(span);
    }

    /// Records a finished span under `parent` (one of the request's
    /// children), from `start_ns` to `end_ns`.
    pub fn grandchild(
        &self,
        parent: [u8; 8],
        name: &str,
        start_ns: u64,
        end_ns: u64,
        attributes: Vec<(&'static str, Value)>,
        error: bool,
    ) {
        let span = Span {
            trace_id: self.trace_id,
            span_id: span_id(),
            parent: Some(parent),
            name: name.to_string(),
            kind: Kind::Internal,
            start_ns,
            end_ns: end_ns.max(start_ns),
            attributes,
            error,
        };
        self.keep(span);
    }

    /// Keeps a finished span until the request ends (bounded: a request
    /// makes a handful; attempts are capped).
    fn keep(&self, span: Span) {
        if let Ok(mut c) = self.children.lock() {
            if c.len() < 64 {
                c.push(span);
            }
        }
    }

    /// Ends the request's span and hands every span to the exporter.
    pub fn finish(&self, name: String, attributes: Vec<(&'static str, Value)>, error: bool) {
        let mut spans = self
            .children
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        spans.push(Span {
            trace_id: self.trace_id,
            span_id: self.root,
            parent: self.parent,
            name,
            kind: Kind::Server,
            start_ns: self.start_ns,
            end_ns: now_ns().max(self.start_ns),
            attributes,
            error,
        });
        export::submit(spans);
    }
}
