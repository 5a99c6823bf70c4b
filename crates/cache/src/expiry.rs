//! How time-to-live settings are handed to Redis.

use std::time::Duration;

/// Longest TTL set, about a century: Redis refuses expiry times that
/// overflow when added to its clock.
const MAX_TTL_MS: u64 = 100 * 365 * 24 * 60 * 60 * 1_000;

/// `ttl` in whole milliseconds for `PX`/`PEXPIRE`: at least 1, since
/// `PEXPIRE key 0` deletes the key, and at most [`MAX_TTL_MS`].
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_TTL_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_whole_milliseconds_never_zero_and_never_overflowing() {
        assert_eq!(ttl_millis(Duration::from_millis(1_500)), 1_500);
        assert_eq!(ttl_millis(Duration::from_micros(2_999)), 2);
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::MAX), MAX_TTL_MS);
    }
}
