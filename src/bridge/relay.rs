//! Several instances: an invocation that arrives at one instance for an
//! agent whose tunnel is on another is relayed through the fleet's Redis
//! (the registry's, see `crate::fleet`), with the same semantics.
//!
//! - `{prefix}bridge:agents` (a hash): each online agent's instance, name
//!   and tools, written when its tunnel opens, renewed every second,
//!   removed when it closes. An entry whose instance is not live is offline.
//! - `{prefix}bridge:i:{instance}` (a channel per instance): `invoke`,
//!   `cancel` for the instance holding the agent; `event` (progress,
//!   output, the end) and `refused` back to the instance the client is on.
//! - `{prefix}bridge:events` (a channel) and `{prefix}bridge:log` (a list
//!   of the last [`LOG_KEPT`]): every instance's lifecycle events, which
//!   each instance adds to its own log, so `GET /bridge/events` anywhere
//!   sees the whole fleet's. An instance that starts reads the list after
//!   subscribing (events are told apart by their instance and sequence
//!   number, so none is taken twice).
//!
//! The client's instance keeps a stand-in of the invocation (its timeout,
//! its idempotent `req_id`, its events for late readers); it ends with an
//! `agent_disconnected` error when the agent's instance stops being live.

use super::hub::{hub, Invocation, Peers, RemoteAgent};
use fred::clients::SubscriberClient;
use fred::prelude::*;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub struct Relay {
    client: Client,
    /// Local lifecycle events to publish, in order.
    outbox: tokio::sync::mpsc::UnboundedSender<Value>,
    /// The last sequence number taken per other instance.
    seen: std::sync::Mutex<HashMap<String, u64>>,
    subscriber: SubscriberClient,
    prefix: String,
    me: String,
    remote: arc_swap::ArcSwap<HashMap<String, RemoteAgent>>,
}

static RELAY: OnceLock<Relay> = OnceLock::new();

/// Lifecycle events kept in `{prefix}bridge:log`.
const LOG_KEPT: i64 = 10_000;

/// Seconds an agent entry stays without renewal before it is stale.
const STALE_MS: u64 = 5_000;

impl Relay {
    fn agents_key(&self) -> String {
        format!("{}bridge:agents", self.prefix)
    }

    fn channel(&self, instance: &str) -> String {
        format!("{}bridge:i:{instance}", self.prefix)
    }

    fn events_channel(&self) -> String {
        format!("{}bridge:events", self.prefix)
    }

    fn log_key(&self) -> String {
        format!("{}bridge:log", self.prefix)
    }

    /// Sends `msg` to `instance` now (the events of one invocation go in
    /// order).
    async fn send_now(&self, instance: &str, msg: Value) {
        let sent: Result<i64, _> = self
            .client
            .publish(self.channel(instance), msg.to_string())
            .await;
        if let Err(e) = sent {
            log::warn!("bridge relay: cannot publish: {e}");
        }
    }

    /// Publishes the outbox in order: appended to the list, then announced.
    async fn drain_outbox(&self, mut rx: tokio::sync::mpsc::UnboundedReceiver<Value>) {
        while let Some(msg) = rx.recv().await {
            let text = msg.to_string();
            let _: Result<i64, _> = self.client.rpush(self.log_key(), text.as_str()).await;
            let _: Result<(), _> = self.client.ltrim(self.log_key(), -LOG_KEPT, -1).await;
            let _: Result<i64, _> = self.client.publish(self.events_channel(), text).await;
        }
    }

    /// Another instance's lifecycle event, once.
    fn take_event(&self, msg: &Value) {
        let from = msg["from"].as_str().unwrap_or_default();
        let seq = msg["seq"].as_u64().unwrap_or(0);
        if from == self.me || from.is_empty() {
            return;
        }
        if let Ok(mut seen) = self.seen.lock() {
            let last = seen.entry(from.to_string()).or_insert(0);
            if seq <= *last {
                return;
            }
            *last = seq;
        }
        let kind = msg["kind"].as_str().and_then(super::hub::event_kind);
        if let Some(kind) = kind {
            let at = msg["at_ms"].as_u64().unwrap_or_else(crate::clock::wall_ms);
            let agent = msg["agent_id"].as_str().unwrap_or_default();
            hub().log_at(at, agent, kind, msg["data"].clone());
        }
    }

    /// Writes (or renews) the registry entries of the agents online here.
    pub async fn publish_agents(&self) {
        let local = hub().local_agents();
        if local.is_empty() {
            return;
        }
        let now = crate::clock::wall_ms();
        let fields: Vec<(String, String)> = local
            .into_iter()
            .filter_map(|(id, name, tools)| {
                let entry = RemoteAgent {
                    instance: self.me.clone(),
                    name,
                    tools: (*tools).clone(),
                    seen_ms: now,
                };
                Some((id, serde_json::to_string(&entry).ok()?))
            })
            .collect();
        let _: Result<(), _> = self.client.hset(self.agents_key(), fields).await;
    }

    /// Reads the registry into the remote list (stale entries dropped).
    async fn read_agents(&self) {
        let Ok(map) = self
            .client
            .hgetall::<HashMap<String, String>, _>(self.agents_key())
            .await
        else {
            return;
        };
        let now = crate::clock::wall_ms();
        let mut stale = Vec::new();
        let remote: HashMap<String, RemoteAgent> = map
            .into_iter()
            .filter_map(|(id, v)| {
                let a: RemoteAgent = serde_json::from_str(&v).ok()?;
                if now.saturating_sub(a.seen_ms) > STALE_MS * 12 {
                    stale.push(id);
                    return None;
                }
                (now.saturating_sub(a.seen_ms) <= STALE_MS).then_some((id, a))
            })
            .collect();
        if !stale.is_empty() {
            let _: Result<i64, _> = self.client.hdel(self.agents_key(), stale).await;
        }
        for (id, a) in remote.iter().filter(|(_, a)| a.instance != self.me) {
            hub().remember(id, &a.name, &a.tools);
        }
        self.remote.store(Arc::new(remote));
    }

    /// One message on this instance's channel or the events channel.
    fn handle(&'static self, channel: &str, text: &str) {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let s = |k: &str| msg[k].as_str().unwrap_or_default().to_string();
        if channel == self.events_channel() {
            self.take_event(&msg);
            return;
        }
        match msg["op"].as_str() {
            Some("invoke") => self.run_here(msg),
            Some("cancel") => {
                let _ = hub().cancel(&s("agent_id"), &s("req_id"), &s("reason"));
            }
            Some("event") => {
                hub().relayed(
                    &s("agent_id"),
                    &s("req_id"),
                    &s("kind"),
                    msg["data"].clone(),
                );
            }
            _ => {}
        }
    }

    /// An invocation another instance relays to an agent here: started,
    /// and its events sent back as they come.
    fn run_here(&'static self, msg: Value) {
        let s = |k: &str| msg[k].as_str().unwrap_or_default().to_string();
        let (from, agent, req_id) = (s("from"), s("agent_id"), s("req_id"));
        let settings = crate::bridge::settings();
        let started = hub().invoke(
            &req_id,
            &agent,
            &s("tool"),
            msg["arguments"].clone(),
            msg["timeout_ms"]
                .as_u64()
                .unwrap_or(settings.default_timeout_ms),
            &settings,
        );
        let back = move |kind: &str, data: Value| json!({"op": "event", "agent_id": agent, "req_id": req_id, "kind": kind, "data": data});
        let inv: Arc<Invocation> = match started {
            Ok(inv) => inv,
            Err(e) => {
                let (code, status) = super::hub::refusal(&e);
                let message = match &e {
                    super::hub::InvokeError::InvalidArguments(m) => m.clone(),
                    other => format!("the agent's instance refused it: {other:?}"),
                };
                let data = super::hub::error_data(code, &message, "gateway", status);
                self.send(&from, back("error", data));
                return;
            }
        };
        tokio::spawn(async move {
            let w = inv.watch();
            for e in &w.so_far {
                self.send_now(&from, back(e.kind, (*e.data).clone())).await;
                if e.is_terminal() {
                    return;
                }
            }
            let Some(mut rx) = w.live else { return };
            while let Ok(e) = rx.recv().await {
                self.send_now(&from, back(e.kind, (*e.data).clone())).await;
                if e.is_terminal() {
                    return;
                }
            }
        });
    }
}

impl Peers for Relay {
    /// A local lifecycle event, for the other instances' logs.
    fn announce(&self, e: &super::events::Event) {
        let _ = self
            .outbox
            .send(json!({"from": self.me, "seq": e.seq, "at_ms": e.at_ms,
            "agent_id": e.agent_id, "kind": e.kind, "data": e.data}));
    }

    /// An agent on another live instance.
    fn remote(&self, agent_id: &str) -> Option<RemoteAgent> {
        self.remote
            .load()
            .get(agent_id)
            .filter(|a| a.instance != self.me && crate::fleet::is_live(&a.instance))
            .cloned()
    }

    /// Every agent online elsewhere.
    fn remotes(&self) -> Vec<(String, RemoteAgent)> {
        self.remote
            .load()
            .iter()
            .filter(|(_, a)| a.instance != self.me && crate::fleet::is_live(&a.instance))
            .map(|(id, a)| (id.clone(), a.clone()))
            .collect()
    }

    /// Sends `msg` to `instance` (in the background: callers do not wait).
    fn send(&'static self, instance: &str, msg: Value) {
        let channel = self.channel(instance);
        tokio::spawn(async move {
            let sent: Result<i64, _> = self.client.publish(channel, msg.to_string()).await;
            if let Err(e) = sent {
                log::warn!("bridge relay: cannot publish: {e}");
            }
        });
    }

    fn agents_changed(&'static self) {
        tokio::spawn(self.publish_agents());
    }

    /// Removes `agent_id`'s entry if it is still this instance's.
    fn forget(&'static self, agent_id: &str) {
        let (key, id) = (self.agents_key(), agent_id.to_string());
        tokio::spawn(async move {
            let current: Result<Option<String>, _> = self.client.hget(&key, &id).await;
            let mine = current
                .ok()
                .flatten()
                .and_then(|v| serde_json::from_str::<RemoteAgent>(&v).ok())
                .is_some_and(|a| a.instance == self.me);
            if mine {
                let _: Result<i64, _> = self.client.hdel(&key, &id).await;
            }
        });
    }
}

/// Connects the relay and runs it until shutdown: messages as they come,
/// the registry renewed and read every second, relayed invocations whose
/// agent's instance stopped ended.
pub async fn run(mut shutdown: pingora::server::ShutdownWatch) {
    let Some((url, prefix)) = crate::fleet::redis() else {
        return;
    };
    let built = crate::store::redis_client::builder(&url, Duration::from_secs(2)).and_then(|b| {
        let client = b.build().map_err(|e| e.to_string())?;
        let subscriber = b.build_subscriber_client().map_err(|e| e.to_string())?;
        Ok((client, subscriber))
    });
    let (client, subscriber) = match built {
        Ok(c) => c,
        Err(e) => {
            log::error!("bridge relay: {e}");
            return;
        }
    };
    // The connection tasks run for as long as the relay does.
    let _connection = client.connect();
    let _subscription = subscriber.connect();
    let _resubscribe = subscriber.manage_subscriptions();
    let _ = tokio::time::timeout(Duration::from_secs(2), client.wait_for_connect()).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), subscriber.wait_for_connect()).await;
    let (outbox, outbox_rx) = tokio::sync::mpsc::unbounded_channel();
    let relay = Relay {
        outbox,
        seen: Default::default(),
        client,
        subscriber,
        prefix,
        me: crate::fleet::id().to_string(),
        remote: Default::default(),
    };
    let relay = RELAY.get_or_init(|| relay);
    super::hub::set_peers(relay);
    let mut messages = relay.subscriber.message_rx();
    for channel in [relay.channel(&relay.me), relay.events_channel()] {
        if let Err(e) = relay.subscriber.subscribe(channel).await {
            log::warn!("bridge relay: cannot subscribe yet: {e}");
        }
    }
    // The fleet's events from before this instance listened.
    let kept: Result<Vec<String>, _> = relay.client.lrange(relay.log_key(), 0, -1).await;
    for text in kept.unwrap_or_default() {
        if let Ok(msg) = serde_json::from_str::<Value>(&text) {
            relay.take_event(&msg);
        }
    }
    tokio::spawn(relay.drain_outbox(outbox_rx));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            m = messages.recv() => match m {
                Ok(m) => {
                    if let Some(text) = m.value.as_str() {
                        relay.handle(&m.channel, &text);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    log::warn!("bridge relay: {n} messages missed (falling behind)");
                }
                Err(_) => return,
            },
            _ = tick.tick() => {
                relay.publish_agents().await;
                relay.read_agents().await;
                hub().end_orphans(&|instance| crate::fleet::is_live(instance));
            }
            _ = shutdown.changed() => {
                for (id, _, _) in hub().local_agents() {
                    let _: Result<i64, _> = relay.client.hdel(relay.agents_key(), id).await;
                }
                return;
            }
        }
    }
}
