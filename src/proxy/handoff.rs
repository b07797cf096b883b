//! Proxying through a subrequest, for requests Pingora's direct path cannot
//! carry or bound: bodies over its 64 KiB retry buffer and streaming
//! responses.
//!
//! Why: `request_filter` must read the body (to route and meter on it), but
//! Pingora 0.9.1 only replays a body read there from its retry buffer,
//! capped at 64 KiB; above it the body is silently dropped (pingora issues
//! #349, #688). A subrequest gets the whole body preset
//! (`InputBodyType::Preset`) and runs the proxy phases again with the plan
//! passed in `user_ctx`, so the child skips admission. The parent pipes the
//! child's response to the client and owns the clock: time to first byte,
//! the idle gap between chunks and the total deadline of non-streaming
//! responses are enforced here, per task, which Pingora's per-read timeout
//! alone cannot express. The client side of the request's response
//! [`Pipeline`] runs here on every task; when its meter cuts a stream, the
//! client's response is ended cleanly and the subrequest aborted (closing
//! the upstream).

use super::ctx::{Handoff, Plan, RequestCtx};
use super::observe::StreamTimer;
use super::pipeline::Pipeline;
use super::reply;
use crate::error::GatewayError;
use pingora::protocols::http::HttpTask;
use pingora::proxy::subrequest::pipe::{pipe_subrequest, InputBody, InputBodyType};
use pingora::proxy::subrequest::{BodyMode, Ctx as SubrequestCtx};
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs the request through a subrequest and pipes its response to the
/// client. `Ok` = the response was written completely.
pub async fn run(session: &mut Session, ctx: &mut RequestCtx, plan: Arc<Plan>) -> Result<()> {
    let Some(rt) = ctx.runtime.clone() else {
        return reply::error(session, &GatewayError::Internal, &ctx.request_id).await;
    };
    if session.subrequest_spawner.is_none() {
        return reply::error(session, &GatewayError::Internal, &ctx.request_id).await;
    }
    let handoff = Handoff {
        runtime: rt.clone(),
        plan: plan.clone(),
        request_id: ctx.request_id.clone(),
        trace: super::trace::handed(ctx),
    };
    let sub_ctx = SubrequestCtx::builder()
        .body_mode(if plan.has_body {
            BodyMode::ExpectBody
        } else {
            BodyMode::NoBody
        })
        .user_ctx(Box::new(handoff))
        .build();
    // Pingora 0.9.1 gives the subrequest its head as HTTP/1 text made
    // from the parent's (`HttpSession::to_h1_raw`); an HTTP/2 parent's is
    // written with the version `HTTP/2` and no Host, which the
    // subrequest's HTTP/1 parser refuses (400 before any phase runs). So
    // an HTTP/2 head is shown as HTTP/1.1 with a Host (its authority) for
    // that moment.
    let h2 = session.req_header().version == http::Version::HTTP_2;
    let added_host = h2 && as_h1(session)?;
    let Some(spawner) = session.subrequest_spawner.as_ref() else {
        return reply::error(session, &GatewayError::Internal, &ctx.request_id).await;
    };
    let (subrequest, handle) = spawner.create_subrequest(session.as_downstream(), sub_ctx);
    if h2 {
        let req = session.req_header_mut();
        req.set_version(http::Version::HTTP_2);
        if added_host {
            req.remove_header(&http::header::HOST);
        }
    }
    let body = if plan.body.is_empty() {
        InputBody::NoBody
    } else {
        InputBody::Bytes(vec![plan.body.clone()])
    };

    // gzip is settled before the pipe writes the child's header (the
    // pipe's filter cannot reach the session): a catalog answer is SSE
    // when the request streams, else JSON in OpenAI's shape.
    let answer_type = if plan.llm.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    super::compression::decide_type(session, &rt.config.compression, answer_type);

    let start = Instant::now();
    let last_task_ms = Arc::new(AtomicU64::new(0));
    let header_seen = Arc::new(AtomicBool::new(false));
    let (last, seen) = (last_task_ms.clone(), header_seen.clone());
    // The client side of the response pipeline runs here, on every task
    // of the child's answer.
    let mut pipeline = std::mem::take(&mut ctx.pipeline);
    let pipeline_ref = &mut pipeline;
    let mut timer = StreamTimer::new(ctx, plan.llm.stream);
    let timer_ref = &mut timer;
    let filter = move |task: HttpTask| {
        if matches!(task, HttpTask::Header(..)) {
            seen.store(true, Relaxed);
        }
        timer_ref.on_task(&task);
        last.store(start.elapsed().as_millis() as u64, Relaxed);
        pipeline_ref.on_task(task)
    };

    let t = &rt.config.timeouts;
    let deadline = |header: bool, last_ms: u64| -> Duration {
        let ms = match (header, plan.llm.stream) {
            (false, true) => t.first_byte_ms.min(t.stream_total_ms),
            (false, false) => t.first_byte_ms.min(t.total_ms),
            (true, true) => (last_ms + t.idle_ms).min(t.stream_total_ms),
            (true, false) => (last_ms + t.idle_ms).min(t.total_ms),
        };
        Duration::from_millis(ms)
    };

    let outcome = {
        let pipe = pipe_subrequest(
            session,
            subrequest,
            handle,
            filter,
            InputBodyType::Preset(body),
        );
        tokio::pin!(pipe);
        loop {
            let wait = deadline(header_seen.load(Relaxed), last_task_ms.load(Relaxed));
            let sleep = tokio::time::sleep_until((start + wait).into());
            tokio::select! {
                r = &mut pipe => break Some(r),
                _ = sleep => {
                    // Re-check: a task may have arrived while we were waking up.
                    let wait = deadline(header_seen.load(Relaxed), last_task_ms.load(Relaxed));
                    if start.elapsed() >= wait {
                        break None;
                    }
                }
            }
        }
    };

    let cut = pipeline.done();
    ctx.pipeline = pipeline;
    timer.finish(&mut ctx.observed);
    let header_sent = session.response_written().is_some();
    match outcome {
        Some(Ok(mut state)) => {
            if cut {
                // The client's response is complete; stop the subrequest so
                // its upstream connection closes and the provider stops
                // generating (and billing) the rest.
                if let Some(child) = state.join_handle.take() {
                    child.abort();
                }
            }
            Ok(())
        }
        None if !header_sent => fail(session, ctx, &GatewayError::UpstreamTimeout).await,
        None => {
            ctx.error = Some(GatewayError::UpstreamTimeout);
            Error::e_explain(
                ErrorType::ReadTimedout,
                "upstream idle or total timeout mid-response",
            )
        }
        Some(Err(mut e)) => {
            // The subrequest failed and wrote its own error answer into the
            // pipe, but Pingora's pipe may hand the parent the error before
            // that answer (an unbiased `select!`, `subrequest/pipe.rs`):
            // the client got a 500, or a 503 head with no body. The rest
            // of the child's answer is forwarded instead.
            let forwarded = match e.state.pipe_rx.as_mut() {
                Some(rx) => forward_rest(session, rx, &mut ctx.pipeline).await,
                None => false,
            };
            if forwarded {
                ctx.error = Some(super::peer::classify(&e.error));
                return Ok(());
            }
            if let Some(head) = session.response_written() {
                // The child's whole answer may already be out (its length
                // reached): then the request is simply done.
                let length = head
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok());
                if length.is_some_and(|n| session.as_downstream().body_bytes_sent() >= n) {
                    ctx.error = Some(super::peer::classify(&e.error));
                    return Ok(());
                }
                // A head without its body: the connection must close.
                session.set_keepalive(None);
                return Err(e.error);
            }
            let err = super::peer::classify(&e.error);
            fail(session, ctx, &err).await
        }
    }
}

/// Shows an HTTP/2 request head as HTTP/1.1 (see `run`); returns whether
/// a Host header was added.
fn as_h1(session: &mut Session) -> Result<bool> {
    let req = session.req_header_mut();
    req.set_version(http::Version::HTTP_11);
    if req.headers.contains_key(http::header::HOST) {
        return Ok(false);
    }
    let Some(authority) = req.uri.authority().map(|a| a.as_str().to_string()) else {
        return Ok(false);
    };
    req.insert_header(http::header::HOST, authority)?;
    Ok(true)
}

/// Answers a failure the client has no header of yet: a stale cache
/// entry when the lookup kept one, else the error.
async fn fail(session: &mut Session, ctx: &mut RequestCtx, err: &GatewayError) -> Result<()> {
    if super::cache::serve_stale(session, ctx).await? {
        return Ok(());
    }
    reply::error(session, err, &ctx.request_id).await
}

/// Writes what the subrequest still sends (its error answer) to the
/// client, through the client side of the pipeline. Returns whether the
/// answer was completed that way.
async fn forward_rest(
    session: &mut Session,
    rx: &mut tokio::sync::mpsc::Receiver<HttpTask>,
    pipeline: &mut Pipeline,
) -> bool {
    let mut tasks = Vec::new();
    let mut complete = false;
    // The child writes its answer right after failing; bounded anyway.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(task)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        let end = matches!(
            task,
            HttpTask::Done | HttpTask::Body(_, true) | HttpTask::Header(_, true)
        );
        match pipeline.on_task(task) {
            Ok(Some(task)) => tasks.push(task),
            Ok(None) => {}
            Err(_) => return false,
        }
        if end {
            complete = true;
            break;
        }
    }
    let header_now = tasks.iter().any(|t| matches!(t, HttpTask::Header(..)));
    if !complete || (!header_now && session.response_written().is_none()) {
        return false;
    }
    session.write_response_tasks(tasks).await.is_ok()
}
