//! The Bridge's lifecycle events (agents online and offline, invocations
//! started and finished), kept for a retention window so a client of
//! `GET /internal/v1/bridge/events` resumes with `Last-Event-ID`.
//!
//! An event's id is `{epoch}-{seq}`: `epoch` is fixed per process, `seq`
//! counts up. An id of another process (a restart, another instance) or
//! one older than the window cannot be resumed from: the reader is told so
//! (a gap) and gets every event still kept.

use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;

/// One lifecycle event.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: u64,
    /// What clients see (`{epoch}-{seq}`).
    pub id: String,
    pub at_ms: u64,
    pub agent_id: String,
    /// `agent.online`, `agent.offline`, `invocation.started`, `invocation.finished`.
    pub kind: &'static str,
    pub data: Value,
}

/// The kept events, oldest first.
pub struct EventLog {
    epoch: String,
    next: u64,
    items: VecDeque<Arc<Event>>,
    retention_ms: u64,
    max: usize,
}

/// Where a reader resumes.
#[derive(Debug, PartialEq, Eq)]
pub enum Resume {
    /// Every kept event after this sequence number.
    After(u64),
    /// The id cannot be resumed from: every kept event, after a gap notice.
    Gap,
    /// No id: only new events.
    Live,
}

impl EventLog {
    pub fn new(epoch: String, retention_ms: u64, max: usize) -> EventLog {
        EventLog {
            epoch,
            next: 1,
            items: VecDeque::new(),
            retention_ms,
            max: max.max(1),
        }
    }

    /// The id clients see for sequence number `seq`.
    fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// Sets the retention window (a config change).
    pub fn set_retention(&mut self, retention_ms: u64) {
        self.retention_ms = retention_ms;
    }

    /// Records an event at `now_ms`.
    pub fn push(
        &mut self,
        now_ms: u64,
        agent_id: &str,
        kind: &'static str,
        data: Value,
    ) -> Arc<Event> {
        self.trim(now_ms);
        let e = Arc::new(Event {
            seq: self.next,
            id: self.id(self.next),
            at_ms: now_ms,
            agent_id: agent_id.to_string(),
            kind,
            data,
        });
        self.next += 1;
        if self.items.len() >= self.max {
            self.items.pop_front();
        }
        self.items.push_back(e.clone());
        e
    }

    /// Where a reader presenting `last_id` resumes.
    pub fn resume(&self, last_id: Option<&str>, now_ms: u64) -> Resume {
        let Some(id) = last_id.map(str::trim).filter(|s| !s.is_empty()) else {
            return Resume::Live;
        };
        let seq = id
            .rsplit_once('-')
            .filter(|(epoch, _)| *epoch == self.epoch)
            .and_then(|(_, n)| n.parse::<u64>().ok());
        let Some(seq) = seq.filter(|s| *s < self.next) else {
            return Resume::Gap;
        };
        // Events after `seq` must all still be kept.
        let oldest = self
            .items
            .iter()
            .find(|e| now_ms.saturating_sub(e.at_ms) <= self.retention_ms)
            .map(|e| e.seq)
            .unwrap_or(self.next);
        if seq + 1 < oldest {
            Resume::Gap
        } else {
            Resume::After(seq)
        }
    }

    /// The kept events after `seq` (0 = all), within the window.
    pub fn after(&self, seq: u64, now_ms: u64) -> Vec<Arc<Event>> {
        self.items
            .iter()
            .filter(|e| e.seq > seq && now_ms.saturating_sub(e.at_ms) <= self.retention_ms)
            .cloned()
            .collect()
    }

    fn trim(&mut self, now_ms: u64) {
        while self
            .items
            .front()
            .is_some_and(|e| now_ms.saturating_sub(e.at_ms) > self.retention_ms)
        {
            self.items.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log() -> EventLog {
        EventLog::new("e1".into(), 1_000, 4)
    }

    #[test]
    fn resume_after_a_known_id_gives_the_rest() {
        let mut l = log();
        let a = l.push(0, "a", "agent.online", json!({}));
        l.push(10, "a", "invocation.started", json!({}));
        l.push(20, "a", "invocation.finished", json!({}));
        let id = a.id.clone();
        assert_eq!(id, "e1-1");
        let r = l.resume(Some(&id), 30);
        assert_eq!(r, Resume::After(1));
        let rest: Vec<u64> = l.after(1, 30).iter().map(|e| e.seq).collect();
        assert_eq!(rest, vec![2, 3]);
        assert_eq!(l.resume(Some("e1-3"), 30), Resume::After(3));
        assert!(l.after(3, 30).is_empty());
        assert_eq!(l.resume(None, 30), Resume::Live);
    }

    #[test]
    fn ids_of_another_process_or_past_the_window_are_gaps() {
        let mut l = log();
        l.push(0, "a", "agent.online", json!({}));
        l.push(500, "a", "agent.offline", json!({}));
        assert_eq!(l.resume(Some("e0-1"), 600), Resume::Gap);
        assert_eq!(l.resume(Some("e1-x"), 600), Resume::Gap);
        assert_eq!(l.resume(Some("e1-9"), 600), Resume::Gap);
        // Event 1 leaves the window at 1001: resuming after it still works,
        // resuming from before it (seq 0) does not.
        assert_eq!(l.resume(Some("e1-1"), 1_200), Resume::After(1));
        assert_eq!(l.resume(Some("e1-0"), 1_200), Resume::Gap);
        assert_eq!(l.after(0, 1_200).len(), 1);
    }

    #[test]
    fn the_log_is_bounded() {
        let mut l = log();
        for i in 0..10 {
            l.push(i, "a", "agent.online", json!({}));
        }
        assert_eq!(l.after(0, 10).len(), 4);
        assert_eq!(l.resume(Some("e1-2"), 10), Resume::Gap);
        assert_eq!(l.resume(Some("e1-6"), 10), Resume::After(6));
    }
}
