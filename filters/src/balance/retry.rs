//! How long a retry waits before its attempt: exponential backoff with
//! jitter, `base × 2^(k-1)` for the k-th retry, scaled by a factor drawn
//! from [0.5, 1.5) and capped. Pure: the caller passes the random draw.

/// Milliseconds to wait before the attempt that follows `attempts_made`
/// attempts (0 before the first attempt). `unit` is uniform in [0, 1).
pub fn retry_backoff_ms(base_ms: u64, attempts_made: usize, cap_ms: u64, unit: f64) -> u64 {
    if base_ms == 0 || attempts_made == 0 {
        return 0;
    }
    let exp = (attempts_made - 1).min(20) as u32;
    let raw = base_ms.saturating_mul(1u64 << exp) as f64;
    let jittered = raw * (0.5 + unit.clamp(0.0, 1.0));
    (jittered as u64).min(cap_ms)
}

#[cfg(test)]
mod tests {
    use super::retry_backoff_ms;

    #[test]
    fn grows_jitters_and_caps() {
        assert_eq!(
            retry_backoff_ms(10, 0, 2000, 0.5),
            0,
            "no wait before the first attempt"
        );
        assert_eq!(retry_backoff_ms(0, 3, 2000, 0.5), 0, "0 turns it off");
        assert_eq!(retry_backoff_ms(10, 1, 2000, 0.5), 10);
        assert_eq!(retry_backoff_ms(10, 2, 2000, 0.5), 20);
        assert_eq!(retry_backoff_ms(10, 3, 2000, 0.5), 40);
        assert_eq!(retry_backoff_ms(10, 1, 2000, 0.0), 5);
        assert_eq!(retry_backoff_ms(10, 1, 2000, 0.999), 14);
        assert_eq!(retry_backoff_ms(10, 30, 2000, 0.5), 2000);
        assert_eq!(retry_backoff_ms(u64::MAX, 30, 2000, 0.9), 2000);
    }
}
