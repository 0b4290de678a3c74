//! Where ticks come from: CSV files in the common layouts (auto-detected), the synthetic
//! generator, and the ordering and pacing that make a replay look like a live feed.

pub mod csv;
pub mod error;
pub mod pace;
pub mod runs;
pub mod stream;
pub mod synthetic;

pub use self::csv::{CsvOptions, Layout, LoadReport, OnError, load_csv_files};
pub use self::error::{FilePos, SourceError};
pub use self::pace::{Pacer, Pacing};
pub use self::stream::{CsvStream, Scan, StreamFailure, StreamOptions, scan_csv_files};
pub use self::synthetic::{Synthetic, SyntheticOptions};

use crate::tick::Tick;

/// Sorts ticks into replay order: event time, then symbol. The sort is stable, so rows with the
/// same symbol and time keep their file order.
pub fn sort_for_replay(ticks: &mut [Tick]) {
    ticks.sort_by(|a, b| {
        a.event_time
            .cmp(&b.event_time)
            .then_with(|| a.symbol.cmp(&b.symbol))
    });
}

/// Replays a loaded set of ticks, once or forever. Each further pass shifts event times forward
/// by the data's span plus one bar, so a looped feed keeps moving forward in time.
pub struct Replay {
    ticks: Vec<Tick>,
    next: usize,
    looping: bool,
    shift: i64,
    pass_span: i64,
}

impl Replay {
    /// `ticks` must already be in replay order (see [`sort_for_replay`]).
    pub fn new(ticks: Vec<Tick>, looping: bool) -> Self {
        let pass_span = match (ticks.first(), ticks.last()) {
            (Some(first), Some(last)) => {
                let step = ticks
                    .windows(2)
                    .map(|w| w[1].event_time - w[0].event_time)
                    .filter(|d| *d > 0)
                    .min()
                    .unwrap_or(crate::tick::MS_PER_DAY);
                last.event_time - first.event_time + step
            }
            _ => 0,
        };
        Replay {
            ticks,
            next: 0,
            looping,
            shift: 0,
            pass_span,
        }
    }

    pub fn len(&self) -> usize {
        self.ticks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ticks.is_empty()
    }
}

impl Iterator for Replay {
    type Item = Tick;

    fn next(&mut self) -> Option<Tick> {
        if self.next == self.ticks.len() {
            if !self.looping || self.ticks.is_empty() {
                return None;
            }
            self.next = 0;
            self.shift += self.pass_span;
        }
        let mut tick = self.ticks[self.next].clone();
        self.next += 1;
        tick.event_time += self.shift;
        Some(tick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sym: &str, day: i64) -> Tick {
        Tick {
            symbol: sym.into(),
            event_time: day * crate::tick::MS_PER_DAY,
            open: None,
            high: None,
            low: None,
            close: Some(1.0),
            adj_close: None,
            volume: None,
        }
    }

    #[test]
    fn replay_orders_by_time_then_symbol_and_loops_forward() {
        let mut ticks = vec![t("MSFT", 2), t("AAPL", 2), t("MSFT", 1), t("AAPL", 3)];
        sort_for_replay(&mut ticks);
        let order: Vec<_> = ticks
            .iter()
            .map(|t| (t.symbol.as_str(), t.event_time))
            .collect();
        let d = crate::tick::MS_PER_DAY;
        assert_eq!(
            order,
            [
                ("MSFT", d),
                ("AAPL", 2 * d),
                ("MSFT", 2 * d),
                ("AAPL", 3 * d)
            ]
        );
        let looped: Vec<_> = Replay::new(ticks, true).take(6).collect();
        // Second pass starts one bar after the first pass ended.
        assert_eq!(looped[4].event_time, 4 * d);
        assert_eq!(looped[5].symbol, "AAPL");
        assert_eq!(looped[5].event_time, 5 * d);
    }
}
