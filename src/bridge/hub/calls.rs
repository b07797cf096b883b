//! The invocations of the hub: started (here or relayed to the agent's
//! instance), fed by the agent's messages, cancelled, timed out, finished
//! (metrics, figures, the lifecycle event), forgotten after the retention
//! window.

use super::*;

impl Hub {
    /// Starts (or, for a `req_id` already used with the same tool and
    /// arguments, finds) an invocation.
    pub fn invoke(
        &self,
        req_id: &str,
        agent_id: &str,
        tool: &str,
        arguments: Value,
        timeout_ms: u64,
        s: &BridgeSettings,
    ) -> Result<Arc<Invocation>, InvokeError> {
        let k = key(agent_id, req_id);
        let mut st = lock(&self.state);
        expire_finished(&mut st, s.retention_s);
        if let Some(inv) = st.invocations.get(&k) {
            return if inv.tool == tool && inv.arguments == arguments {
                Ok(inv.clone())
            } else {
                Err(InvokeError::Conflict)
            };
        }
        let Some(agent) = st.online.get(agent_id) else {
            if let Some((relay, remote)) = peers().and_then(|r| Some((r, r.remote(agent_id)?))) {
                let def = remote
                    .tools
                    .iter()
                    .find(|t| t.name == tool)
                    .ok_or(InvokeError::UnknownTool)?;
                ArgSchema::compile(&def.input_schema)
                    .and_then(|schema| schema.check(&arguments))
                    .map_err(InvokeError::InvalidArguments)?;
                if st.running >= s.max_invocations {
                    return Err(InvokeError::Busy);
                }
                let msg = json!({"op": "invoke", "from": crate::fleet::id(), "req_id": req_id,
                    "agent_id": agent_id, "tool": tool, "arguments": arguments,
                    "timeout_ms": timeout_ms});
                let inv = self.register(
                    &mut st,
                    req_id,
                    agent_id,
                    tool,
                    arguments,
                    timeout_ms,
                    format!("{RELAYED}{}", remote.instance),
                );
                drop(st);
                relay.send(&remote.instance, msg);
                return Ok(inv);
            }
            return Err(if st.known.contains_key(agent_id) {
                InvokeError::Offline
            } else {
                InvokeError::UnknownAgent
            });
        };
        let Some(schema) = agent.schemas.get(tool) else {
            return Err(InvokeError::UnknownTool);
        };
        schema
            .check(&arguments)
            .map_err(InvokeError::InvalidArguments)?;
        if st.running >= s.max_invocations {
            return Err(InvokeError::Busy);
        }
        let frame = Down::Invoke {
            req_id,
            tool,
            arguments: &arguments,
            timeout_ms,
        }
        .line();
        if agent.tx.try_send(frame).is_err() {
            return Err(InvokeError::Congested);
        }
        let session = agent.session.clone();
        let inv = self.register(
            &mut st, req_id, agent_id, tool, arguments, timeout_ms, session,
        );
        drop(st);
        self.log(
            agent_id,
            "invocation.started",
            json!({"req_id": req_id, "tool_name": tool, "timeout_ms": timeout_ms}),
        );
        Ok(inv)
    }

    /// Records a new invocation sent on `session` and arms its timeout.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn register(
        &self,
        st: &mut State,
        req_id: &str,
        agent_id: &str,
        tool: &str,
        arguments: Value,
        timeout_ms: u64,
        session: String,
    ) -> Arc<Invocation> {
        let inv = Arc::new(Invocation {
            req_id: req_id.to_string(),
            agent_id: agent_id.to_string(),
            tool: tool.to_string(),
            timeout_ms,
            arguments,
            session,
            started: Instant::now(),
            inner: Mutex::new(InvInner {
                kept: Vec::new(),
                kept_bytes: 0,
                done: false,
            }),
            tx: broadcast::channel(READER_QUEUE).0,
        });
        st.invocations.insert(key(agent_id, req_id), inv.clone());
        st.running += 1;
        metrics().f.bridge_running.set(st.running as i64);
        let watched = Arc::downgrade(&inv);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(timeout_ms)).await;
            if let Some(inv) = watched.upgrade() {
                hub().time_out(&inv);
            }
        });
        inv
    }

    /// An event of an invocation relayed to another instance, sent back
    /// from there.
    pub fn relayed(&self, agent_id: &str, req_id: &str, kind: &str, data: Value) {
        let Some(inv) = self
            .invocation(agent_id, req_id)
            .filter(|i| i.relayed_to().is_some())
        else {
            return;
        };
        match kind {
            "progress" | "output" => {
                let kind = if kind == "output" {
                    "output"
                } else {
                    "progress"
                };
                self.note(&inv, kind, data);
            }
            "result" => {
                self.finish(&inv, "result", data, "ok");
            }
            "cancelled" => {
                self.finish(&inv, "cancelled", data, "cancelled");
            }
            _ => {
                let outcome = match data["code"].as_str() {
                    Some("invocation_timeout") => "timeout",
                    Some("agent_disconnected") => "disconnected",
                    _ => "error",
                };
                self.finish(&inv, "error", data, outcome);
            }
        }
    }

    /// Ends `lost` invocations with `agent_disconnected` (502, the agent's
    /// side): why is `message`.
    pub(super) fn lose(&self, lost: Vec<Arc<Invocation>>, message: &str) {
        for inv in lost {
            let data = error_data("agent_disconnected", message, "upstream", 502);
            self.finish(&inv, "error", data, "disconnected");
        }
    }

    /// Ends the relayed invocations whose agent's instance is no longer live.
    pub fn end_orphans(&self, live: &dyn Fn(&str) -> bool) {
        let orphans: Vec<Arc<Invocation>> = lock(&self.state)
            .invocations
            .values()
            .filter(|i| i.relayed_to().is_some_and(|at| !live(at)) && !lock(&i.inner).done)
            .cloned()
            .collect();
        self.lose(orphans, "the instance holding the agent's tunnel stopped");
    }

    pub(super) fn time_out(&self, inv: &Arc<Invocation>) {
        if lock(&inv.inner).done {
            return;
        }
        self.tell_agent(inv, "timeout");
        self.finish(
            inv,
            "error",
            error_data(
                "invocation_timeout",
                &format!("the tool did not finish within {} ms", inv.timeout_ms),
                "gateway",
                504,
            ),
            "timeout",
        );
    }

    /// Sends a cancel to the invocation's agent (if its tunnel is the one
    /// the invocation went out on).
    pub(super) fn tell_agent(&self, inv: &Invocation, reason: &str) {
        if let (Some(r), Some(at)) = (peers(), inv.relayed_to()) {
            r.send(
                at,
                json!({"op": "cancel", "agent_id": inv.agent_id, "req_id": inv.req_id, "reason": reason}),
            );
            return;
        }
        let st = lock(&self.state);
        if let Some(a) = st
            .online
            .get(&inv.agent_id)
            .filter(|a| a.session == inv.session)
        {
            let _ = a.tx.try_send(
                Down::Cancel {
                    req_id: &inv.req_id,
                    reason,
                }
                .line(),
            );
        }
    }

    /// Cancels an invocation: `Some(true)` when it was running (its agent
    /// is told, its stream ends with `cancelled`), `Some(false)` when it had
    /// already finished; `None` when unknown.
    pub fn cancel(&self, agent_id: &str, req_id: &str, reason: &str) -> Option<bool> {
        let inv = lock(&self.state)
            .invocations
            .get(&key(agent_id, req_id))
            .cloned()?;
        if lock(&inv.inner).done {
            return Some(false);
        }
        self.tell_agent(&inv, reason);
        Some(self.finish(&inv, "cancelled", json!({"reason": reason}), "cancelled"))
    }

    /// Takes one message of the agent on tunnel `session`; returns whether
    /// it belonged to an invocation in progress (others are dropped: a
    /// result after a cancel or a timeout).
    pub fn deliver(&self, agent_id: &str, session: &str, msg: Up) -> bool {
        let inv = lock(&self.state)
            .invocations
            .get(&key(agent_id, msg.req_id()))
            .cloned();
        let Some(inv) = inv.filter(|i| i.session == session) else {
            return false;
        };
        match msg {
            Up::Progress {
                progress,
                total,
                message,
                ..
            } => self.note(
                &inv,
                "progress",
                json!({"progress": progress, "total": total, "message": message}),
            ),
            Up::Output { data, .. } => self.note(&inv, "output", json!({"data": data})),
            Up::Result { result, .. } => self.finish(
                &inv,
                "result",
                json!({"result": result, "duration_ms": inv.elapsed_ms()}),
                "ok",
            ),
            Up::Error { code, message, .. } => {
                let mut data = error_data(&code, &message, "upstream", 502);
                data["duration_ms"] = inv.elapsed_ms().into();
                self.finish(&inv, "error", data, "error")
            }
        }
    }

    pub(super) fn note(&self, inv: &Invocation, kind: &'static str, data: Value) -> bool {
        let ev = InvEvent {
            kind,
            data: Arc::new(data),
        };
        let mut inner = lock(&inv.inner);
        if inner.done {
            return false;
        }
        // Output is kept for late readers up to a byte budget; past it the
        // pieces still stream live.
        let size = if kind == "output" {
            ev.data.to_string().len()
        } else {
            0
        };
        if inner.kept.len() < KEPT_EVENTS && inner.kept_bytes + size <= KEPT_BYTES {
            inner.kept_bytes += size;
            inner.kept.push(ev.clone());
        }
        let _ = inv.tx.send(ev);
        true
    }

    /// Ends an invocation with its terminal event; false when it had
    /// already ended.
    pub(super) fn finish(
        &self,
        inv: &Invocation,
        kind: &'static str,
        data: Value,
        outcome: &str,
    ) -> bool {
        let ev = InvEvent {
            kind,
            data: Arc::new(data),
        };
        {
            let mut inner = lock(&inv.inner);
            if inner.done {
                return false;
            }
            inner.done = true;
            inner.kept.push(ev.clone());
            let _ = inv.tx.send(ev.clone());
        }
        let elapsed = inv.started.elapsed();
        // Counted where it runs: a relayed invocation is counted by the
        // instance holding its agent (the fleet's sum counts it once).
        let here = inv.relayed_to().is_none();
        if here {
            let labels = [inv.agent_id.as_str(), inv.tool.as_str()];
            metrics()
                .f
                .bridge_invocations
                .with_label_values(&[labels[0], labels[1], outcome])
                .inc();
            metrics()
                .f
                .bridge_seconds
                .with_label_values(&labels)
                .observe(elapsed.as_secs_f64());
        }
        let retention_s = lock(&self.settings).retention_s;
        {
            let mut st = lock(&self.state);
            if here {
                let f = st
                    .figures
                    .entry((inv.agent_id.clone(), inv.tool.clone()))
                    .or_default();
                f.calls += 1;
                f.errors += u64::from(kind == "error");
                f.total_ms += u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            }
            st.running = st.running.saturating_sub(1);
            metrics().f.bridge_running.set(st.running as i64);
            st.finished
                .push_back((Instant::now(), key(&inv.agent_id, &inv.req_id)));
            expire_finished(&mut st, retention_s);
        }
        if !here {
            return true;
        }
        let mut summary = json!({
            "req_id": inv.req_id,
            "tool_name": inv.tool,
            "outcome": outcome,
            "duration_ms": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        });
        if kind == "error" {
            summary["error"] = ev.data["code"].clone();
        }
        self.log(&inv.agent_id, "invocation.finished", summary);
        true
    }
}

/// Forgets invocations finished longer ago than the retention window
/// (`retention_s`), and the oldest beyond [`KEPT_FINISHED`].
fn expire_finished(st: &mut State, retention_s: u64) {
    let keep = Duration::from_secs(retention_s);
    while st
        .finished
        .front()
        .is_some_and(|(at, _)| at.elapsed() > keep || st.finished.len() > KEPT_FINISHED)
    {
        if let Some((_, k)) = st.finished.pop_front() {
            st.invocations.remove(&k);
        }
    }
}
