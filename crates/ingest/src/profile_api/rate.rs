//! The per-space rate limit: a token bucket of `rate_limit` requests that
//! refills at `rate_limit` per second, so a space gets its rate on average
//! and at most one second's worth in a burst.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One space's bucket.
#[derive(Debug)]
pub(crate) struct RateLimit {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub(crate) fn new(per_second: u32) -> RateLimit {
        let rate = f64::from(per_second.max(1));
        RateLimit {
            rate,
            state: Mutex::new((rate, Instant::now())),
        }
    }

    /// Takes one request's token: `Err(wait)` when none is left, `wait`
    /// being how long until one is.
    pub(crate) fn take(&self, now: Instant) -> Result<(), Duration> {
        let mut s = self.state.lock().expect("rate limit lock");
        let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
        s.0 = (s.0 + elapsed * self.rate).min(self.rate);
        s.1 = now.max(s.1);
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - s.0) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_s_worth_then_the_rate() {
        let r = RateLimit::new(100);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(r.take(t0).is_ok());
        }
        let wait = r.take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(10), "{wait:?}");
        assert!(r.take(t0 + Duration::from_millis(10)).is_ok());
        assert!(r.take(t0 + Duration::from_millis(10)).is_err());
        assert!(r.take(t0 + Duration::from_secs(5)).is_ok());
    }
}
