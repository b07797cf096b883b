//! Time, named for what it measures. Two clocks, never mixed:
//! - [`mono_ms`]: monotonic milliseconds since the process started, for
//!   deadlines, ejection, cool-downs and breakers (never goes back);
//! - wall time ([`wall_ms`], [`unix_secs`], [`rfc3339`]): for timestamps
//!   people and other processes read (reports, logs, the admin API).
//!
//! The limit rules' clock is [`sluice_filters::limits::store::Clock`]
//! (epoch milliseconds shared with Redis), injected so tests use a fake.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic milliseconds since the process started.
pub fn mono_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Wall-clock seconds since the Unix epoch.
pub fn unix_secs() -> u64 {
    wall_ms() / 1000
}

/// Wall-clock nanoseconds since the Unix epoch (seeds, unique names).
pub fn wall_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// `unix_secs` as an RFC 3339 UTC timestamp (`2026-12-05T01:02:03Z`).
pub fn rfc3339(unix_secs: u64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(unix_secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `t` as an RFC 3339 UTC timestamp with milliseconds
/// (`2026-12-05T01:02:03.456Z`).
pub fn rfc3339_millis(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks() {
        let a = mono_ms();
        assert!(mono_ms() >= a);
        assert!(unix_secs() > 1_700_000_000);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_900_000), "2025-12-05T02:00:00Z");
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_764_900_000_042);
        assert_eq!(rfc3339_millis(t), "2025-12-05T02:00:00.042Z");
    }
}
