//! `GET /bridge/events`: the lifecycle events as server-sent events,
//! resumable with `Last-Event-ID`.

use super::*;
use crate::bridge::hub::hub;

pub(super) async fn events(session: &mut Session, rt: &Snapshot, rid: &str) -> Result<(), Failure> {
    client(session, rt, Bytes::new()).await?;
    let req = session.req_header();
    let query = req.uri.query().unwrap_or("").to_string();
    let agent = sluice_filters::facts::query_param(&query, "agent_id").filter(|a| !a.is_empty());
    let last_id = req
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| sluice_filters::facts::query_param(&query, "last_event_id"));
    let (gap, backlog, mut rx) = hub().events(last_id.as_deref());
    let broken = |_| Failure::new(500, "internal_error", "could not answer");
    sse_header(session, rid).await.map_err(broken)?;
    let wanted =
        |e: &crate::bridge::events::Event| agent.as_deref().is_none_or(|a| a == e.agent_id);
    let line = |e: &crate::bridge::events::Event| {
        let mut data = e.data.clone();
        data["agent_id"] = e.agent_id.clone().into();
        data["at"] =
            crate::clock::rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(e.at_ms))
                .into();
        Bytes::from(format!(
            "id: {}\nevent: {}\ndata: {}\n\n",
            e.id, e.kind, data
        ))
    };
    let mut first = String::from("retry: 1000\n\n");
    if gap {
        first.push_str("event: gap\ndata: {\"message\":\"the Last-Event-ID is not in the retention window: every kept event follows\"}\n\n");
    }
    if session
        .write_response_body(Some(Bytes::from(first)), false)
        .await
        .is_err()
    {
        return Ok(());
    }
    let mut last_seq = 0;
    for e in backlog.iter().filter(|e| wanted(e)) {
        last_seq = e.seq;
        if session
            .write_response_body(Some(line(e)), false)
            .await
            .is_err()
        {
            return Ok(());
        }
    }
    let ping = Duration::from_millis(rt.config.bridge.ping_ms);
    loop {
        let downstream = session.as_downstream_mut();
        let e = tokio::select! {
            e = rx.recv() => e,
            // The client went away.
            _ = downstream.read_body_or_idle(true) => return Ok(()),
            _ = tokio::time::sleep(ping) => {
                if session.write_response_body(Some(Bytes::from_static(b": ping\n\n")), false).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            _ = crate::lifecycle::drain_started() => break,
        };
        match e {
            Ok(e) if e.seq > last_seq && wanted(&e) => {
                if session
                    .write_response_body(Some(line(&e)), false)
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                // Resume from the log: the client reconnects with its last id.
                break;
            }
            Err(_) => break,
        }
    }
    let _ = session.write_response_body(None, true).await;
    Ok(())
}
