//! The agents' side: `POST /bridge/tunnel` (the tunnel, an NDJSON stream
//! held open), `POST /bridge/tunnel/messages` (what invocations produce)
//! and `POST /bridge/agent-token` (issuing and resetting tokens).

use super::*;
use crate::bridge::hub::hub;
use crate::bridge::tokens;
use crate::bridge::wire::{Batch, Down, Hello};

/// The agent a tunnel request's token opens for, with the token's SHA-256.
pub(super) fn agent_of(session: &Session, rt: &Snapshot) -> Result<(String, [u8; 32]), Failure> {
    let token = session
        .req_header()
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let agent =
        tokens::agent_of(&rt.agent_tokens, token, crate::clock::unix_secs()).ok_or_else(|| {
            Failure::new(
                401,
                "unauthorized",
                "a valid agent token (Bearer bat_…) is required",
            )
        })?;
    Ok((agent, tokens::digest(token)))
}

pub(super) async fn tunnel(session: &mut Session, rt: &Snapshot, rid: &str) -> Result<(), Failure> {
    let (agent_id, token) = agent_of(session, rt)?;
    if crate::lifecycle::draining() {
        // The agent retries (with backoff) and lands on another instance.
        return Err(Failure::new(
            503,
            "draining",
            "this instance is shutting down: connect to another",
        ));
    }
    let s = &rt.config.bridge;
    let body = body_of(session, rt, s.max_message_bytes).await?;
    let hello: Hello = parse(&body)?;
    if hello.agent_id != agent_id {
        return Err(Failure::new(
            403,
            "forbidden",
            format!(
                "this token is agent {agent_id:?}'s, not {:?}'s",
                hello.agent_id
            ),
        ));
    }
    let name = hello.name.clone().unwrap_or_else(|| agent_id.clone());
    let mut t = hub()
        .connect(&agent_id, &name, hello.tools, token, s)
        .map_err(|e| match e {
            crate::bridge::hub::ConnectError::Invalid(m) => Failure::new(400, "invalid_request", m),
            crate::bridge::hub::ConnectError::Full => Failure::new(
                503,
                "bridge_full",
                "this instance holds bridge.max_agents agents",
            ),
        })?;
    let broken = |_| Failure::new(500, "internal_error", "could not answer");
    let mut header = ResponseHeader::build(200, Some(4)).map_err(broken)?;
    let _ = header.insert_header("content-type", "application/x-ndjson");
    let _ = header.insert_header("cache-control", "no-cache");
    let _ = header.insert_header("x-request-id", rid);
    if session.req_header().version != http::Version::HTTP_2 {
        let _ = header.insert_header("transfer-encoding", "chunked");
    }
    super::super::compression::off(session);
    // The tunnel is long-lived: it does not hold the drain up (it ends
    // with a goaway as soon as draining starts).
    session.set_keepalive(None);
    session
        .write_response_header(Box::new(header), false)
        .await
        .map_err(broken)?;
    let welcome = Down::Welcome {
        session: &t.session,
        agent_id: &agent_id,
        ping_ms: s.ping_ms,
    }
    .line();
    if session
        .write_response_body(Some(welcome), false)
        .await
        .is_err()
    {
        return Ok(());
    }
    let mut ping = tokio::time::interval(Duration::from_millis(s.ping_ms));
    ping.tick().await;
    let kick = t.kick.clone();
    let reason = loop {
        // Reading the finished request side waits for the agent's side of
        // the connection to close (Pingora's `read_body_or_idle`): an agent
        // that dies is offline at once, not at the next failed write.
        let downstream = session.as_downstream_mut();
        let frame = tokio::select! {
            f = t.frames.recv() => match f {
                Some(f) => f,
                None => break "closed",
            },
            _ = ping.tick() => Down::Ping.line(),
            r = kick.fired() => break r,
            _ = crate::lifecycle::drain_started() => break "draining",
            _ = downstream.read_body_or_idle(true) => return Ok(()),
        };
        if session
            .write_response_body(Some(frame), false)
            .await
            .is_err()
        {
            return Ok(());
        }
    };
    let bye = Down::Goaway { reason }.line();
    let _ = session.write_response_body(Some(bye), false).await;
    let _ = session.write_response_body(None, true).await;
    drop(t);
    Ok(())
}

pub(super) async fn messages(
    session: &mut Session,
    rt: &Snapshot,
    rid: &str,
) -> Result<(), Failure> {
    let (agent_id, _) = agent_of(session, rt)?;
    let body = body_of(session, rt, rt.config.bridge.max_message_bytes).await?;
    let batch: Batch = parse(&body)?;
    if !hub().is_live(&agent_id, &batch.session) {
        return Err(Failure::new(
            409,
            "tunnel_closed",
            "this session is not the agent's live tunnel: reconnect",
        ));
    }
    let mut taken = 0usize;
    let total = batch.messages.len();
    for m in batch.messages {
        taken += usize::from(hub().deliver(&agent_id, &batch.session, m));
    }
    ok(
        session,
        &json!({"accepted": taken, "dropped": total - taken}),
        rid,
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenAsk {
    agent_id: String,
    #[serde(default)]
    reset: bool,
}

pub(super) async fn agent_token(
    session: &mut Session,
    rt: &Snapshot,
    rid: &str,
) -> Result<(), Failure> {
    let auth = session
        .req_header()
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    // Who issues it, as the audit log names them.
    let admin = rt.admin_token_name(auth).map(|n| format!("token:{n}"));
    let body = body_of(session, rt, 64 << 10).await?;
    let actor = match admin {
        Some(actor) => actor,
        None => {
            let req = session.req_header();
            let caller = decision::authenticate(rt, &Headers(&req.headers))?;
            let name = caller.key.map(|k| rt.keys[k].name.as_str());
            let Some(name) = name.filter(|n| rt.config.bridge.token_issuers.iter().any(|i| i == n))
            else {
                return Err(Failure::new(
                    403,
                    "forbidden",
                    "issuing agent tokens takes the admin token or a key named in bridge.token_issuers",
                ));
            };
            let actor = format!("key:{name}");
            client(session, rt, body.clone()).await?;
            actor
        }
    };
    let ask: TokenAsk = parse(&body)?;
    if !crate::bridge::hub::valid_name(&ask.agent_id) {
        return Err(Failure::new(
            400,
            "invalid_request",
            "agent_id: 1 to 128 characters of letters, digits, _ - . /",
        ));
    }
    let Some(center) = CENTER.get() else {
        return Err(Failure::new(
            503,
            "unavailable",
            "the config center is not running",
        ));
    };
    let (token, sha) = tokens::generate()
        .map_err(|e| Failure::new(500, "internal_error", format!("no random source: {e}")))?;
    let expires_at = crate::clock::unix_secs() + rt.config.bridge.token_ttl_s;
    let version = center
        .issue_agent_token(&actor, &ask.agent_id, ask.reset, &sha, expires_at)
        .await
        .map_err(|e| Failure::new(503, "unavailable", e.0))?;
    ok(
        session,
        &json!({
            "agent_id": ask.agent_id,
            "token": token,
            "expires_at": crate::clock::rfc3339(expires_at),
            "version": version,
            "reset": ask.reset,
        }),
        rid,
    )
    .await
}

/// The config center, for issuing agent tokens (set once at start).
pub static CENTER: std::sync::OnceLock<Arc<dyn crate::control::ConfigControl>> =
    std::sync::OnceLock::new();
