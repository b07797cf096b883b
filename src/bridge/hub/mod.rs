//! The hub of one instance: the agents with a tunnel here, the
//! invocations in progress and recently finished, and the lifecycle event
//! log. Every operation is short and under one lock; the tunnels and the
//! clients wait on channels, never on the lock.

mod calls;

use super::events::{Event, EventLog, Resume};
use super::schema::ArgSchema;
use super::wire::{Down, Tool, Up};
use crate::config::BridgeSettings;
use crate::metrics::metrics;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, Notify};

/// Frames waiting for one tunnel's writer at most; an agent that cannot
/// take more is congested (invocations to it are refused 503).
const TUNNEL_QUEUE: usize = 1_024;
/// Events one invocation keeps for a client that joins late (a repeated
/// `req_id`); the live stream is not limited by this.
const KEPT_EVENTS: usize = 1_024;
/// Bytes of output one invocation keeps for late readers.
const KEPT_BYTES: usize = 1 << 20;
/// Finished invocations kept (for a repeated `req_id`) at most; the oldest
/// are forgotten first, even within `bridge.retention_s`.
const KEPT_FINISHED: usize = 10_000;
/// Live events queued per reader; a reader further behind is told it lagged.
const READER_QUEUE: usize = 1_024;
/// Agents remembered (offline) for `GET /bridge/agents` at most.
const REMEMBERED: usize = 100_000;

/// The process's hub.
pub fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(Hub::new)
}

pub struct Hub {
    settings: Mutex<BridgeSettings>,
    state: Mutex<State>,
    events: Mutex<EventLog>,
    live: broadcast::Sender<Arc<Event>>,
}

#[derive(Default)]
struct State {
    online: HashMap<String, Agent>,
    /// Every agent seen since start: name and tools, for listings.
    known: HashMap<String, Known>,
    /// By `agent_id` + NUL + `req_id`.
    invocations: HashMap<String, Arc<Invocation>>,
    /// Finished invocations in order, for expiry.
    finished: VecDeque<(Instant, String)>,
    running: usize,
    sessions: u64,
    /// Figures per (agent, tool) of the invocations that finished here.
    figures: HashMap<(String, String), Figures>,
}

/// Invocations of one tool that finished on this instance.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Figures {
    pub calls: u64,
    pub errors: u64,
    pub total_ms: u64,
}

impl State {
    /// Records an agent's name and tools for listings (at most
    /// [`REMEMBERED`] agents).
    fn know(&mut self, id: &str, name: &str, tools: Arc<Vec<Tool>>) {
        if self.known.len() < REMEMBERED || self.known.contains_key(id) {
            let name = name.to_string();
            self.known.insert(id.to_string(), Known { name, tools });
        }
    }
}

struct Known {
    name: String,
    tools: Arc<Vec<Tool>>,
}

struct Agent {
    session: String,
    token: [u8; 32],
    schemas: HashMap<String, Arc<ArgSchema>>,
    tx: mpsc::Sender<Bytes>,
    kick: Arc<Kick>,
}

/// Tells a tunnel to close, with the reason its agent is given.
#[derive(Default)]
pub struct Kick {
    notify: Notify,
    reason: Mutex<Option<&'static str>>,
}

impl Kick {
    fn fire(&self, reason: &'static str) {
        *lock(&self.reason) = Some(reason);
        self.notify.notify_one();
    }

    /// Returns the reason once the tunnel must close.
    pub async fn fired(&self) -> &'static str {
        loop {
            if let Some(r) = *lock(&self.reason) {
                return r;
            }
            self.notify.notified().await;
        }
    }
}

/// An open tunnel: its frames to write, and when to stop. Dropping it
/// takes the agent offline (unless a newer tunnel replaced it).
pub struct Tunnel {
    pub agent_id: String,
    pub session: String,
    pub frames: mpsc::Receiver<Bytes>,
    pub kick: Arc<Kick>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        hub().disconnect(&self.agent_id, &self.session);
    }
}

/// Why a tunnel was not opened.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// A tool is malformed (the message names it).
    Invalid(String),
    /// `bridge.max_agents` are online here.
    Full,
}

/// Why an invocation was not started.
#[derive(Debug, PartialEq, Eq)]
pub enum InvokeError {
    UnknownAgent,
    Offline,
    UnknownTool,
    InvalidArguments(String),
    /// The same `req_id` was used for another tool or other arguments.
    Conflict,
    /// `bridge.max_invocations` are in progress here.
    Busy,
    /// The agent's tunnel does not take more.
    Congested,
}

/// One invocation's event as its client sees it: `progress`, `output`,
/// then one of `result`, `error`, `cancelled`.
#[derive(Debug, Clone)]
pub struct InvEvent {
    pub kind: &'static str,
    pub data: Arc<Value>,
}

impl InvEvent {
    pub fn is_terminal(&self) -> bool {
        matches!(self.kind, "result" | "error" | "cancelled")
    }
}

/// An invocation, in progress or finished.
pub struct Invocation {
    pub req_id: String,
    pub agent_id: String,
    pub tool: String,
    pub timeout_ms: u64,
    arguments: Value,
    session: String,
    started: Instant,
    inner: Mutex<InvInner>,
    tx: broadcast::Sender<InvEvent>,
}

struct InvInner {
    kept: Vec<InvEvent>,
    /// Bytes of output kept (at most [`KEPT_BYTES`]).
    kept_bytes: usize,
    done: bool,
}

/// What a client of an invocation reads: the events so far, then (while
/// it runs) the live ones.
pub struct Watch {
    pub so_far: Vec<InvEvent>,
    pub live: Option<broadcast::Receiver<InvEvent>>,
}

impl Invocation {
    /// The events so far and, unless finished, a receiver of the next ones
    /// (taken under the lock: nothing falls between).
    pub fn watch(&self) -> Watch {
        let inner = lock(&self.inner);
        Watch {
            so_far: inner.kept.clone(),
            live: (!inner.done).then(|| self.tx.subscribe()),
        }
    }

    /// Its terminal event once it ended, else a receiver of the next events
    /// (taken under the lock; nothing is copied).
    pub fn end_or_live(&self) -> Result<InvEvent, broadcast::Receiver<InvEvent>> {
        let inner = lock(&self.inner);
        match inner.kept.last().filter(|_| inner.done) {
            Some(e) => Ok(e.clone()),
            None => Err(self.tx.subscribe()),
        }
    }

    /// The kind of its terminal event (`result`, `error`, `cancelled`);
    /// none while it runs.
    pub fn ended_as(&self) -> Option<&'static str> {
        let inner = lock(&self.inner);
        inner.kept.last().filter(|_| inner.done).map(|e| e.kind)
    }

    /// The instance an invocation was relayed to (its agent's), if any.
    pub fn relayed_to(&self) -> Option<&str> {
        self.session.strip_prefix(RELAYED)
    }

    /// Milliseconds since it started.
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// An agent as listed.
pub struct AgentView {
    pub id: String,
    pub name: String,
    pub online: bool,
    pub tools: Arc<Vec<Tool>>,
}

/// An agent online on another instance, as the fleet's registry says.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RemoteAgent {
    pub instance: String,
    pub name: String,
    pub tools: Vec<Tool>,
    pub seen_ms: u64,
}

/// What the hub asks of the other instances: the relay
/// (`crate::bridge::relay`) registers itself once connected ([`set_peers`]);
/// without it this instance is alone.
pub trait Peers: Send + Sync {
    /// A local lifecycle event, for the other instances.
    fn announce(&self, e: &Event);
    /// An agent online on another live instance.
    fn remote(&self, agent_id: &str) -> Option<RemoteAgent>;
    /// Every agent online elsewhere.
    fn remotes(&self) -> Vec<(String, RemoteAgent)>;
    /// A message for another instance (`invoke`, `cancel`).
    fn send(&'static self, instance: &str, msg: Value);
    /// The agents online here changed: publish them now.
    fn agents_changed(&'static self);
    /// An agent's tunnel here closed.
    fn forget(&'static self, agent_id: &str);
}

static PEERS: OnceLock<&'static dyn Peers> = OnceLock::new();

/// Registers the other instances' side (once).
pub fn set_peers(p: &'static dyn Peers) {
    let _ = PEERS.set(p);
}

fn peers() -> Option<&'static dyn Peers> {
    PEERS.get().copied()
}

/// The session of an invocation relayed to another instance: this and
/// that instance's id.
const RELAYED: &str = "relay:";

/// The static name of a lifecycle event kind.
pub fn event_kind(kind: &str) -> Option<&'static str> {
    [
        "agent.online",
        "agent.offline",
        "invocation.started",
        "invocation.finished",
    ]
    .into_iter()
    .find(|k| *k == kind)
}

/// The error code and status of a refusal.
pub fn refusal(e: &InvokeError) -> (&'static str, u16) {
    match e {
        InvokeError::UnknownAgent => ("agent_not_found", 404),
        InvokeError::Offline => ("agent_offline", 503),
        InvokeError::UnknownTool => ("tool_not_found", 404),
        InvokeError::InvalidArguments(_) => ("invalid_arguments", 400),
        InvokeError::Conflict => ("req_id_conflict", 409),
        InvokeError::Busy => ("bridge_busy", 503),
        InvokeError::Congested => ("agent_congested", 503),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(agent_id: &str, req_id: &str) -> String {
    format!("{agent_id}\0{req_id}")
}

/// The error event of an invocation: code, message, who failed, the status
/// a JSON client gets.
pub fn error_data(code: &str, message: &str, source: &str, status: u16) -> Value {
    json!({"code": code, "message": message, "source": source, "status": status})
}

impl Hub {
    fn new() -> Hub {
        let epoch = format!("{:x}", crate::clock::wall_ms());
        Hub {
            settings: Mutex::new(BridgeSettings::default()),
            state: Mutex::new(State::default()),
            events: Mutex::new(EventLog::new(epoch, 600_000, 100_000)),
            live: broadcast::channel(READER_QUEUE).0,
        }
    }

    /// Applies the settings that matter to the hub (the event window).
    pub fn configure(&self, s: &BridgeSettings) {
        lock(&self.events).set_retention(s.retention_s.saturating_mul(1_000));
        *lock(&self.settings) = s.clone();
    }

    /// The settings of the config applied last.
    pub fn settings(&self) -> BridgeSettings {
        lock(&self.settings).clone()
    }

    fn log(&self, agent_id: &str, kind: &'static str, data: Value) {
        let e = self.log_at(crate::clock::wall_ms(), agent_id, kind, data);
        if let Some(r) = peers() {
            r.announce(&e);
        }
    }

    /// Records an event that happened at `at_ms` (another instance's, or
    /// this one's).
    pub fn log_at(
        &self,
        at_ms: u64,
        agent_id: &str,
        kind: &'static str,
        data: Value,
    ) -> Arc<Event> {
        let e = lock(&self.events).push(at_ms, agent_id, kind, data);
        let _ = self.live.send(e.clone());
        e
    }

    /// The agents online here: id, name, tools.
    pub fn local_agents(&self) -> Vec<(String, String, Arc<Vec<Tool>>)> {
        let st = lock(&self.state);
        st.online
            .keys()
            .filter_map(|id| {
                let k = st.known.get(id)?;
                Some((id.clone(), k.name.clone(), k.tools.clone()))
            })
            .collect()
    }

    /// Opens a tunnel for `agent_id` (its token's SHA-256 is `token`),
    /// replacing the agent's previous tunnel on this instance.
    pub fn connect(
        &self,
        agent_id: &str,
        name: &str,
        tools: Vec<Tool>,
        token: [u8; 32],
        s: &BridgeSettings,
    ) -> Result<Tunnel, ConnectError> {
        if tools.len() > s.max_tools {
            return Err(ConnectError::Invalid(format!(
                "{} tools announced; at most {} (bridge.max_tools)",
                tools.len(),
                s.max_tools
            )));
        }
        let mut schemas = HashMap::new();
        for t in &tools {
            if !valid_name(&t.name) {
                return Err(ConnectError::Invalid(format!(
                    "tool name {:?}: 1 to 128 characters of letters, digits, _ - . /",
                    t.name
                )));
            }
            let schema = ArgSchema::compile(&t.input_schema).map_err(|e| {
                ConnectError::Invalid(format!("tool {:?}: input_schema: {e}", t.name))
            })?;
            if schemas.insert(t.name.clone(), Arc::new(schema)).is_some() {
                return Err(ConnectError::Invalid(format!(
                    "tool {:?} announced twice",
                    t.name
                )));
            }
        }
        let (tx, frames) = mpsc::channel(TUNNEL_QUEUE);
        let kick = Arc::new(Kick::default());
        let mut st = lock(&self.state);
        if !st.online.contains_key(agent_id) && st.online.len() >= s.max_agents {
            return Err(ConnectError::Full);
        }
        st.sessions += 1;
        let session = format!("{}-{}", crate::fleet::id(), st.sessions);
        if let Some(old) = st.online.insert(
            agent_id.to_string(),
            Agent {
                session: session.clone(),
                token,
                schemas,
                tx,
                kick: kick.clone(),
            },
        ) {
            old.kick.fire("replaced");
            // Its invocations were sent on the old tunnel.
            let lost = sent_on(&st, agent_id, &old.session);
            drop(st);
            self.lose(
                lost,
                "the agent reconnected; the invocation was lost with its previous tunnel",
            );
            st = lock(&self.state);
        }
        st.know(agent_id, name, Arc::new(tools));
        metrics().f.bridge_agents.set(st.online.len() as i64);
        drop(st);
        if let Some(p) = peers() {
            p.agents_changed();
        }
        self.log(
            agent_id,
            "agent.online",
            json!({"session": session, "name": name}),
        );
        Ok(Tunnel {
            agent_id: agent_id.to_string(),
            session,
            frames,
            kick,
        })
    }

    fn disconnect(&self, agent_id: &str, session: &str) {
        let mut st = lock(&self.state);
        if st.online.get(agent_id).is_none_or(|a| a.session != session) {
            return;
        }
        st.online.remove(agent_id);
        metrics().f.bridge_agents.set(st.online.len() as i64);
        if let Some(r) = peers() {
            r.forget(agent_id);
        }
        let lost = sent_on(&st, agent_id, session);
        drop(st);
        self.lose(lost, "the agent's tunnel closed before the tool finished");
        self.log(agent_id, "agent.offline", json!({"session": session}));
    }

    /// Closes the tunnels whose token is no longer valid (a reset, an
    /// expiry): called when a config applies.
    pub fn revalidate(&self, valid: &dyn Fn(&str, &[u8; 32]) -> bool) {
        let st = lock(&self.state);
        for (id, a) in &st.online {
            if !valid(id, &a.token) {
                a.kick.fire("token_revoked");
            }
        }
    }

    /// Every known agent, online ones with their live tools.
    pub fn agents(&self) -> Vec<AgentView> {
        let mut by_id: HashMap<String, AgentView> = HashMap::new();
        {
            let st = lock(&self.state);
            for (id, k) in &st.known {
                by_id.insert(
                    id.clone(),
                    AgentView {
                        id: id.clone(),
                        name: k.name.clone(),
                        online: st.online.contains_key(id),
                        tools: k.tools.clone(),
                    },
                );
            }
        }
        // Agents online on other instances (their tools as announced there).
        for (id, r) in peers().map(|r| r.remotes()).unwrap_or_default() {
            if by_id.get(&id).is_some_and(|a| a.online) {
                continue;
            }
            by_id.insert(
                id.clone(),
                AgentView {
                    id,
                    name: r.name,
                    online: true,
                    tools: Arc::new(r.tools),
                },
            );
        }
        let mut out: Vec<AgentView> = by_id.into_values().collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Remembers an agent online on another instance, so it is listed as
    /// offline once it goes.
    pub fn remember(&self, id: &str, name: &str, tools: &[Tool]) {
        let mut st = lock(&self.state);
        let same = st
            .known
            .get(id)
            .is_some_and(|k| k.name == name && k.tools.as_slice() == tools);
        // Renewed every second: nothing is copied while nothing changed.
        if !st.online.contains_key(id) && !same {
            st.know(id, name, Arc::new(tools.to_vec()));
        }
    }

    /// One agent, if known.
    pub fn agent(&self, id: &str) -> Option<AgentView> {
        let local = {
            let st = lock(&self.state);
            st.known.get(id).map(|k| AgentView {
                id: id.to_string(),
                name: k.name.clone(),
                online: st.online.contains_key(id),
                tools: k.tools.clone(),
            })
        };
        if local.as_ref().is_some_and(|a| a.online) {
            return local;
        }
        match peers().and_then(|r| r.remote(id)) {
            Some(r) => Some(AgentView {
                id: id.to_string(),
                name: r.name,
                online: true,
                tools: Arc::new(r.tools),
            }),
            None => local,
        }
    }

    /// Whether the tunnel `session` is still `agent_id`'s live one.
    pub fn is_live(&self, agent_id: &str, session: &str) -> bool {
        lock(&self.state)
            .online
            .get(agent_id)
            .is_some_and(|a| a.session == session)
    }

    /// For `/metrics/summary`: the agents and each tool's figures.
    pub fn summary(&self) -> Value {
        let agents = self.agents();
        let st = lock(&self.state);
        let tools: Vec<Value> = agents
            .iter()
            .flat_map(|a| {
                a.tools.iter().map(|t| {
                    let f = st
                        .figures
                        .get(&(a.id.clone(), t.name.clone()))
                        .copied()
                        .unwrap_or_default();
                    json!({
                        "agent": a.id,
                        "agent_name": a.name,
                        "online": a.online,
                        "tool": t.name,
                        "calls": f.calls,
                        "errors": f.errors,
                        "avg_ms": f.total_ms.checked_div(f.calls).unwrap_or(0),
                    })
                })
            })
            .collect();
        json!({
            "agents_online": agents.iter().filter(|a| a.online).count(),
            "agents_known": agents.len(),
            "running": st.running,
            "tools": tools,
        })
    }

    /// An invocation by agent and `req_id`.
    pub fn invocation(&self, agent_id: &str, req_id: &str) -> Option<Arc<Invocation>> {
        lock(&self.state)
            .invocations
            .get(&key(agent_id, req_id))
            .cloned()
    }

    /// The lifecycle events a reader presenting `last_id` gets first
    /// (`gap`: it cannot resume there), and the receiver of the next ones.
    pub fn events(
        &self,
        last_id: Option<&str>,
    ) -> (bool, Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let log = lock(&self.events);
        let rx = self.live.subscribe();
        let now = crate::clock::wall_ms();
        let (gap, backlog) = match log.resume(last_id, now) {
            Resume::Live => (false, Vec::new()),
            Resume::Gap => (true, log.after(0, now)),
            Resume::After(seq) => (false, log.after(seq, now)),
        };
        (gap, backlog, rx)
    }
}

/// The invocations in progress that went out on `session`.
fn sent_on(st: &State, agent_id: &str, session: &str) -> Vec<Arc<Invocation>> {
    st.invocations
        .values()
        .filter(|i| i.agent_id == agent_id && i.session == session && !lock(&i.inner).done)
        .cloned()
        .collect()
}

/// A tool or agent name: 1–128 of letters, digits, `_ - . /`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
}
