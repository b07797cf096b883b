//! Request coalescing: identical cacheable requests in flight at the same
//! time on this instance make one upstream call. The first becomes the
//! leader ([`Lead`]) and publishes its answer's chunks into a [`Flight`]
//! as they pass; the others follow it from the first chunk. A leader that
//! ends without a whole successful answer marks the flight failed: a
//! follower that has sent nothing yet goes upstream on its own.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// A flight's key: the cache key and whether the answer streams (a
/// follower gets the leader's bytes as they are).
pub type FlightKey = ([u8; 32], bool);

/// Where a leader's answer stands.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// The answer is successful and its chunks follow (set once its
    /// header passed).
    pub started: bool,
    pub chunks: Vec<Bytes>,
    /// Some(true) = whole; Some(false) = failed (cut, error, gone).
    pub end: Option<bool>,
}

/// One leader's answer, shared with its followers.
pub struct Flight {
    progress: Mutex<Progress>,
    changed: watch::Sender<u64>,
}

impl Flight {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Whether the answer started, the chunks from `from` on, and the end.
    pub fn read(&self, from: usize) -> (bool, Vec<Bytes>, Option<bool>) {
        let p = self.lock();
        let chunks = p
            .chunks
            .get(from..)
            .map(<[Bytes]>::to_vec)
            .unwrap_or_default();
        (p.started, chunks, p.end)
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        {
            let mut p = self.lock();
            if p.end.is_some() {
                return;
            }
            f(&mut p);
        }
        self.changed.send_modify(|v| *v += 1);
    }
}

/// The flights in progress on this instance.
#[derive(Default)]
pub struct Flights(Mutex<HashMap<FlightKey, Arc<Flight>>>);

/// What joining a flight made of a request.
pub enum Joined {
    Lead(Lead),
    Follow(Arc<Flight>),
}

impl Flights {
    /// Joins the flight of `key`, or starts one led by the caller.
    pub fn join(self: &Arc<Self>, key: FlightKey) -> Joined {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = map.get(&key) {
            return Joined::Follow(f.clone());
        }
        let flight = Arc::new(Flight {
            progress: Mutex::new(Progress::default()),
            changed: watch::channel(0).0,
        });
        map.insert(key, flight.clone());
        Joined::Lead(Lead {
            flights: self.clone(),
            key,
            flight,
        })
    }

    /// Flights in progress.
    pub fn in_progress(&self) -> usize {
        self.0.lock().map_or(0, |m| m.len())
    }

    fn remove(&self, key: &FlightKey, flight: &Arc<Flight>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            map.remove(key);
        }
    }
}

/// The leader's side of a flight. Dropped without [`Lead::finish`], the
/// flight fails.
pub struct Lead {
    flights: Arc<Flights>,
    key: FlightKey,
    flight: Arc<Flight>,
}

impl std::fmt::Debug for Lead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lead")
            .field("key", &hex::encode(self.key.0))
            .finish()
    }
}

impl Lead {
    /// The answer is successful: followers start receiving it.
    pub fn start(&self) {
        self.flight.update(|p| p.started = true);
    }

    /// One chunk of the answer.
    pub fn chunk(&self, chunk: Bytes) {
        self.flight.update(|p| {
            if p.started {
                p.chunks.push(chunk);
            }
        });
    }

    /// The answer ended: whole or not.
    pub fn finish(&self, whole: bool) {
        self.flight.update(|p| p.end = Some(whole && p.started));
        self.flights.remove(&self.key, &self.flight);
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.finish(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_see_the_leaders_answer_and_its_failure() {
        let flights = Arc::new(Flights::default());
        let Joined::Lead(lead) = flights.join(([1; 32], false)) else {
            panic!("first is the leader")
        };
        let Joined::Follow(f) = flights.join(([1; 32], false)) else {
            panic!("second follows")
        };
        assert!(matches!(flights.join(([1; 32], true)), Joined::Lead(_)));
        lead.start();
        lead.chunk(Bytes::from_static(b"a"));
        assert_eq!(f.read(0), (true, vec![Bytes::from_static(b"a")], None));
        lead.finish(true);
        assert_eq!(f.read(1).2, Some(true));
        assert_eq!(flights.in_progress(), 0);
        // A new flight after the end; its leader dropped unfinished fails it.
        let Joined::Lead(lead) = flights.join(([1; 32], false)) else {
            panic!("a new leader")
        };
        let Joined::Follow(f) = flights.join(([1; 32], false)) else {
            panic!("follows")
        };
        drop(lead);
        assert_eq!(f.read(0), (false, vec![], Some(false)));
    }
}
