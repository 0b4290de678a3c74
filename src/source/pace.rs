//! Pacing: how fast events leave. Flat out, a fixed delay between events (the tutorial's 1 s),
//! a fixed rate, or event time replayed at a multiple of wall-clock speed.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// As fast as the broker takes them.
    FlatOut,
    /// Sleep this long between two events.
    Delay(Duration),
    /// This many events per second, on average, without drift.
    Rate(f64),
    /// Event time runs this many times faster than wall time (86400: one day per second).
    ReplaySpeed(f64),
}

/// Tells the sender how long to wait before each event.
pub struct Pacer {
    pacing: Pacing,
    start: Option<(Instant, i64)>,
    sent: u64,
}

impl Pacer {
    pub fn new(pacing: Pacing) -> Self {
        Pacer {
            pacing,
            start: None,
            sent: 0,
        }
    }

    pub fn is_flat_out(&self) -> bool {
        self.pacing == Pacing::FlatOut
    }

    /// How long to wait, from `now`, before sending the event with this event time.
    pub fn wait_before(&mut self, event_time: i64, now: Instant) -> Duration {
        let (start, first_time) = *self.start.get_or_insert((now, event_time));
        let n = self.sent;
        self.sent += 1;
        let due = match self.pacing {
            Pacing::FlatOut => return Duration::ZERO,
            Pacing::Delay(d) => {
                if n == 0 {
                    return Duration::ZERO;
                }
                return d;
            }
            Pacing::Rate(rate) => start + Duration::from_secs_f64(n as f64 / rate),
            Pacing::ReplaySpeed(speed) => {
                let event_ms = (event_time - first_time).max(0) as f64;
                start + Duration::from_secs_f64(event_ms / 1000.0 / speed)
            }
        };
        due.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_replay_schedule_without_drift() {
        let now = Instant::now();
        let mut p = Pacer::new(Pacing::Rate(4.0));
        assert_eq!(p.wait_before(0, now), Duration::ZERO);
        assert_eq!(p.wait_before(0, now), Duration::from_millis(250));
        assert_eq!(
            p.wait_before(0, now + Duration::from_millis(600)),
            Duration::ZERO
        );

        let day = crate::tick::MS_PER_DAY;
        let mut p = Pacer::new(Pacing::ReplaySpeed(86_400.0));
        assert_eq!(p.wait_before(10 * day, now), Duration::ZERO);
        assert_eq!(p.wait_before(13 * day, now), Duration::from_secs(3));

        let mut p = Pacer::new(Pacing::Delay(Duration::from_secs(1)));
        assert_eq!(p.wait_before(0, now), Duration::ZERO);
        assert_eq!(p.wait_before(0, now), Duration::from_secs(1));
    }
}
