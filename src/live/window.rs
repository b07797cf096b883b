//! Per-minute history of one entity (a namespace, a route, a key): requests,
//! errors, denials, tokens, peak concurrency and a latency histogram per
//! minute, kept for 24 hours in a ring of minute slots. Feeds `/stats`,
//! `/metrics/summary`, `/metrics/ui` and the admin usage/monitoring
//! endpoints. Written twice per request (start, end) under an uncontended
//! per-entity mutex; read by those endpoints only.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

/// Minutes of history kept (24 h).
pub const MINUTES: usize = 24 * 60;

/// Upper bounds (ms) of the per-minute latency buckets; a last, open bucket
/// follows.
pub const LATENCY_MS: [u32; 13] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];

/// One minute of one entity.
#[derive(Clone, Copy, Default, Debug)]
pub struct Slot {
    /// Minutes since the Unix epoch this slot holds (0 = never used).
    pub minute: u64,
    pub requests: u64,
    /// Responses with a 5xx status (or none at all).
    pub errors: u64,
    pub denials: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// Cost from the catalog's prices, in millionths of the price unit.
    pub cost_micros: u64,
    /// Most requests in flight at once during the minute.
    pub peak: u64,
    pub latency: [u32; LATENCY_MS.len() + 1],
}

impl Slot {
    fn merge(&mut self, o: &Slot) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.denials += o.denials;
        self.tokens_in += o.tokens_in;
        self.tokens_out += o.tokens_out;
        self.cost_micros += o.cost_micros;
        self.peak = self.peak.max(o.peak);
        for (a, b) in self.latency.iter_mut().zip(o.latency.iter()) {
            *a += b;
        }
    }

    /// The p95 latency in ms (upper bound of its bucket; the open bucket
    /// reports the last bound), 0 without requests.
    pub fn p95_ms(&self) -> u64 {
        let total: u64 = self.latency.iter().map(|c| u64::from(*c)).sum();
        if total == 0 {
            return 0;
        }
        let want = (total * 95).div_ceil(100);
        let mut seen = 0;
        for (i, c) in self.latency.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= want {
                return u64::from(LATENCY_MS[i.min(LATENCY_MS.len() - 1)]);
            }
        }
        u64::from(LATENCY_MS[LATENCY_MS.len() - 1])
    }
}

/// The current minute since the epoch.
pub fn now_minute() -> u64 {
    crate::clock::unix_secs() / 60
}

/// The history of one entity.
pub struct Series {
    /// Requests in flight now.
    current: AtomicI64,
    ring: Mutex<Vec<Slot>>,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            current: AtomicI64::new(0),
            // Allocated on the first request (about 160 KiB): entities
            // without traffic cost nothing.
            ring: Mutex::new(Vec::new()),
        }
    }
}

impl Series {
    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        // A poisoned ring only means a panic elsewhere mid-update; the
        // counts are still usable.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn slot(ring: &mut Vec<Slot>, minute: u64) -> &mut Slot {
        if ring.is_empty() {
            ring.resize(MINUTES, Slot::default());
        }
        let s = &mut ring[(minute % MINUTES as u64) as usize];
        if s.minute != minute {
            *s = Slot {
                minute,
                ..Slot::default()
            };
        }
        s
    }

    /// A request of this entity started.
    pub fn started(&self, minute: u64) {
        let now = self.current.fetch_add(1, Relaxed) + 1;
        let mut ring = self.lock();
        let s = Self::slot(&mut ring, minute);
        s.peak = s.peak.max(now.max(0) as u64);
    }

    /// A request started with [`Series::started`] ended.
    pub fn ended(&self) {
        self.current.fetch_sub(1, Relaxed);
    }

    /// A request finished (started or not: denied requests are counted too).
    pub fn finished(&self, minute: u64, f: &Finished) {
        let mut ring = self.lock();
        let s = Self::slot(&mut ring, minute);
        s.requests += 1;
        s.errors += u64::from(f.error);
        s.denials += u64::from(f.denied);
        s.tokens_in += f.tokens_in;
        s.tokens_out += f.tokens_out;
        s.cost_micros += f.cost_micros;
        let i = LATENCY_MS
            .iter()
            .position(|b| f.latency_ms <= u64::from(*b))
            .unwrap_or(LATENCY_MS.len());
        s.latency[i] += 1;
    }

    /// Requests in flight now.
    pub fn current(&self) -> i64 {
        self.current.load(Relaxed).max(0)
    }

    /// The last `n` minutes up to `minute` (oldest first); minutes without
    /// traffic are empty slots.
    pub fn minutes(&self, minute: u64, n: usize) -> Vec<Slot> {
        let n = n.min(MINUTES);
        let ring = self.lock();
        (0..n as u64)
            .rev()
            .map(|back| {
                let m = minute.saturating_sub(back);
                match ring.get((m % MINUTES as u64) as usize) {
                    Some(s) if s.minute == m => *s,
                    _ => Slot {
                        minute: m,
                        ..Slot::default()
                    },
                }
            })
            .collect()
    }

    /// The last `n` minutes up to `minute`, summed (peak = the highest).
    pub fn total(&self, minute: u64, n: usize) -> Slot {
        let mut sum = Slot {
            minute,
            ..Slot::default()
        };
        for s in self.minutes(minute, n) {
            sum.merge(&s);
        }
        sum
    }
}

/// What a finished request adds to its entities' minute.
#[derive(Debug, Default, Clone, Copy)]
pub struct Finished {
    pub latency_ms: u64,
    pub error: bool,
    pub denied: bool,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_micros: u64,
}

/// Which kind of entity a series belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Every request of the process (one series, named "").
    Process,
    Namespace,
    Route,
    Key,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_roll_and_sum() {
        let s = Series::default();
        s.started(100);
        s.started(100);
        s.ended();
        let f = Finished {
            latency_ms: 30,
            tokens_in: 5,
            tokens_out: 7,
            ..Default::default()
        };
        s.finished(100, &f);
        s.finished(101, &f);
        s.finished(100 + MINUTES as u64, &f); // overwrites minute 100's slot
        let last = s.minutes(101, 2);
        assert_eq!(last[0].minute, 100);
        assert_eq!(last[0].requests, 0, "minute 100 was overwritten");
        assert_eq!(last[1].requests, 1);
        let sum = s.total(100 + MINUTES as u64, 60);
        assert_eq!(sum.requests, 1);
        assert_eq!(sum.tokens_out, 7);
        assert_eq!(sum.p95_ms(), 50);
        assert_eq!(s.current(), 1);
        assert_eq!(s.minutes(101, 5).len(), 5);
    }
}
