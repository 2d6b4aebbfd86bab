//! The wait between two connection attempts to a collector: exponential backoff with
//! jitter, reset once a connection has carried data. Knows nothing of sockets.
#![forbid(unsafe_code)]

use std::time::Duration;

/// Exponential backoff with jitter: each wait is drawn from [d/2, d), d doubling from `min`
/// up to `max`; reset once a connection has carried data.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    cur: Duration,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ ((std::process::id() as u64) << 32);
        Backoff {
            min,
            max: max.max(min),
            cur: min,
            rng: seed | 1,
        }
    }

    pub(crate) fn next(&mut self) -> Duration {
        // xorshift64: jitter only needs to differ between receivers started together.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let d = self.cur;
        self.cur = (self.cur * 2).min(self.max);
        let half = d / 2;
        let nanos = half.as_nanos().max(1) as u64;
        half + Duration::from_nanos(self.rng % nanos)
    }

    pub(crate) fn reset(&mut self) {
        self.cur = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let w: Vec<Duration> = (0..8).map(|_| b.next()).collect();
        assert!(w[0] >= Duration::from_millis(50) && w[0] < Duration::from_millis(100));
        assert!(w[3] >= Duration::from_millis(400) && w[3] < Duration::from_millis(800));
        for d in &w[5..] {
            assert!(
                *d >= Duration::from_millis(500) && *d < Duration::from_secs(1),
                "{d:?}"
            );
        }
        b.reset();
        assert!(b.next() < Duration::from_millis(100));
    }
}
