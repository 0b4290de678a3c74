//! Batch routing: each event taken into its partition's batch and, within it, into the file
//! of its partition directory (or into the rejects), and the flush policy.

use std::collections::HashMap;
use std::time::Instant;

use super::Inner;
use super::state::State;
use crate::lake::TableLayout;
use crate::lake::rejects::Reject;
use crate::tick::{MS_PER_DAY, TickBatchBuilder, TickRef};

/// The largest row capacity a batch builder starts with.
const MAX_BUILDER_CAPACITY: usize = 1 << 20;

/// Events of one Kafka partition waiting for the next flush.
pub(super) struct Batch {
    pub(super) first_offset: i64,
    pub(super) last_offset: i64,
    /// One file per partition directory: (directory, rows).
    pub(super) files: Vec<(String, TickBatchBuilder)>,
    /// Each file's partition values in Delta's form (same index as `files`).
    pub(super) values: Vec<Vec<(String, String)>>,
    /// File index by directory.
    by_dir: HashMap<String, usize>,
    /// File index by symbol and day, so that most events find their file without building the
    /// directory name: the last day seen and its file, then every day seen.
    by_symbol: HashMap<String, SymbolFiles>,
    pub(super) rejects: Vec<Reject>,
    pub(super) events: usize,
    /// Expected rows per directory (see `Slot::sizes`).
    sizes: HashMap<String, usize>,
}

struct SymbolFiles {
    day: i64,
    file: usize,
    days: HashMap<i64, usize>,
}

impl Batch {
    fn new(offset: i64, sizes: HashMap<String, usize>) -> Self {
        Batch {
            sizes,
            first_offset: offset,
            last_offset: offset,
            files: Vec::new(),
            values: Vec::new(),
            by_dir: HashMap::new(),
            by_symbol: HashMap::new(),
            rejects: Vec::new(),
            events: 0,
        }
    }

    /// The builder of the tick's partition directory. `day` is the tick's UTC day, or 0 when
    /// the layout has no time key (then the symbol alone decides).
    fn builder(
        &mut self,
        layout: &TableLayout,
        tick: &TickRef<'_>,
        day: i64,
    ) -> &mut TickBatchBuilder {
        let cached = match self.by_symbol.get_mut(tick.symbol.as_ref()) {
            Some(s) if s.day == day => Some(s.file),
            Some(s) => s.days.get(&day).copied().inspect(|&f| {
                s.day = day;
                s.file = f;
            }),
            None => None,
        };
        let file = match cached {
            Some(f) => f,
            None => {
                let dir = layout.partition_dir(&tick.symbol, tick.event_time);
                let file = match self.by_dir.get(&dir) {
                    Some(&f) => f,
                    None => {
                        let f = self.files.len();
                        self.by_dir.insert(dir.clone(), f);
                        let rows = self.sizes.get(&dir).copied().unwrap_or(0);
                        let capacity = rows.clamp(1024, MAX_BUILDER_CAPACITY);
                        self.files.push((
                            dir,
                            TickBatchBuilder::new(layout.symbol_in_file(), capacity),
                        ));
                        self.values.push(crate::lake::delta::partition_values(
                            layout,
                            &tick.symbol,
                            tick.event_time,
                        ));
                        f
                    }
                };
                let s = self
                    .by_symbol
                    .entry(tick.symbol.to_string())
                    .or_insert_with(|| SymbolFiles {
                        day,
                        file,
                        days: HashMap::new(),
                    });
                s.day = day;
                s.file = file;
                s.days.insert(day, file);
                file
            }
        };
        &mut self.files[file].1
    }
}

impl Inner {
    /// Takes one event polled from the consumer queue (locks the state for it).
    pub(super) fn take(
        &mut self,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) {
        let shared = self.shared.clone();
        self.take_into(&mut shared.lock(), partition, offset, key, value);
    }

    /// Takes one event into its partition's batch, with the state already locked (once for a
    /// whole fetched batch). Events of a partition arrive in offset order, so a batch covers
    /// `first_offset..=last_offset` of its partition. `value` is None for a null payload (a
    /// tombstone), which is quarantined like an empty one but keeps no value text.
    pub(super) fn take_into(
        &mut self,
        state: &mut State,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) {
        if self.stats.first_event_at.is_none() {
            let now = Instant::now();
            self.stats.first_event_at = Some(now);
            tracing::debug!(
                "first event {:.0?} after the assignment",
                now - state.assigned_at
            );
        }
        let Some(slot) = state.slots.get_mut(&partition) else {
            return; // not ours (any more): the owner reads it
        };
        if slot.rewind {
            return; // dropped until the loop seeks back (see below)
        }
        slot.position = offset + 1;
        if slot.lake_next.is_some_and(|next| offset < next) {
            self.stats.already_in_lake += 1;
            return;
        }
        // Offsets of a partition only grow. One that does not (an offset reset, a broker that
        // went back) drops the batch, and the loop seeks back to what the lake holds.
        if let Some(b) = &slot.batch
            && offset <= b.last_offset
        {
            tracing::warn!(
                "partition {partition}: offset {offset} after {}; dropping the batch {}..={} and reading again from the lake's position",
                b.last_offset,
                b.first_offset,
                b.last_offset
            );
            self.stats.events -= b.events as u64;
            self.buffered_events = self.buffered_events.saturating_sub(b.events);
            slot.batch = None;
            slot.rewind = true;
            return;
        }
        let batch = slot
            .batch
            .get_or_insert_with(|| Batch::new(offset, std::mem::take(&mut slot.sizes)));
        batch.last_offset = offset;
        batch.events += 1;
        self.stats.events += 1;
        self.buffered_events += 1;
        let (is_null, value) = (value.is_none(), value.unwrap_or_default());
        self.buffered_bytes += value.len();
        self.oldest.get_or_insert_with(Instant::now);
        let decoded = if is_null {
            Err("empty: a null payload (a Kafka tombstone)".to_string())
        } else if value.is_empty() {
            Err("empty: a value of 0 bytes".to_string())
        } else if value.len() > self.opts.max_event_bytes {
            Err(format!(
                "oversized: {} bytes, the limit is {}",
                value.len(),
                self.opts.max_event_bytes
            ))
        } else {
            TickRef::decode_json(value).map_err(|e| e.to_string())
        };
        match decoded {
            Ok(tick) => {
                let day = if self.time_partitioned {
                    tick.event_time.div_euclid(MS_PER_DAY)
                } else {
                    0
                };
                batch
                    .builder(&self.layout, &tick, day)
                    .push_ref(&tick, partition, offset);
            }
            Err(reason) => {
                let mut reject =
                    Reject::new(&self.opts.topic, partition, offset, reason, key, value);
                if is_null {
                    // Neither text nor base64: there was no value at all.
                    reject.value_text = None;
                }
                batch.rejects.push(reject);
            }
        }
    }

    /// How many more events the loop may take before it must flush or stop.
    pub(super) fn room(&self) -> usize {
        let to_flush = self.opts.flush_rows.saturating_sub(self.buffered_events);
        match self.opts.max_events {
            Some(max) => {
                let read = self.stats.events + self.stats.already_in_lake;
                to_flush.min(usize::try_from(max.saturating_sub(read)).unwrap_or(usize::MAX))
            }
            None => to_flush,
        }
    }

    pub(super) fn should_flush(&self) -> bool {
        self.buffered_events > 0
            && (self.buffered_events >= self.opts.flush_rows
                || self.buffered_bytes >= self.opts.flush_bytes
                || self
                    .oldest
                    .is_some_and(|t| t.elapsed() >= self.opts.flush_interval))
    }

    /// Whether `max_events` events were read (taken, or found already in the lake).
    pub(super) fn read_enough(&self) -> bool {
        self.opts
            .max_events
            .is_some_and(|max| self.stats.events + self.stats.already_in_lake >= max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::PartitionKey;

    /// Takes events, (symbol, day since 1970-01-01) each, into the builders as `take_into`
    /// does, and returns each file's directory and row count.
    fn route(layout: &TableLayout, events: &[(&str, i64)]) -> Vec<(String, usize)> {
        let sizes = HashMap::from([("symbol=AAPL/dt=1970-01-01".to_string(), 5)]);
        let mut batch = Batch::new(0, sizes);
        let time_partitioned = layout.partition_by != [PartitionKey::Symbol];
        for (offset, (symbol, day)) in events.iter().enumerate() {
            let json = format!(
                r#"{{"symbol":"{symbol}","event_time":"1970-01-{:02}T00:00:01.000Z","close":1.0}}"#,
                day + 1
            );
            let tick = TickRef::decode_json(json.as_bytes()).unwrap();
            let day = if time_partitioned {
                tick.event_time.div_euclid(MS_PER_DAY)
            } else {
                0
            };
            batch
                .builder(layout, &tick, day)
                .push_ref(&tick, 0, offset as i64);
        }
        batch
            .files
            .iter()
            .map(|(d, b)| (d.clone(), b.len()))
            .collect()
    }

    #[test]
    fn events_find_the_file_of_their_symbol_and_day() {
        let layout = TableLayout {
            partition_by: vec![PartitionKey::Symbol, PartitionKey::Date],
        };
        let events = [("AAPL", 0), ("MSFT", 0), ("AAPL", 1), ("AAPL", 0)];
        let files = route(&layout, &events);
        let expected = [
            ("symbol=AAPL/dt=1970-01-01", 2),
            ("symbol=MSFT/dt=1970-01-01", 1),
            ("symbol=AAPL/dt=1970-01-02", 1),
        ];
        assert_eq!(files, expected.map(|(d, n)| (d.to_string(), n)));
    }

    #[test]
    fn without_a_time_key_the_symbol_alone_decides() {
        let files = route(
            &TableLayout::default(),
            &[("IBM", 0), ("IBM", 1), ("IBM", 2)],
        );
        assert_eq!(files, [("symbol=IBM".to_string(), 3)]);
    }
}
