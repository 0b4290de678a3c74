//! The lag of the assigned partitions, from librdkafka's cached watermarks (over FFI, no
//! network round trip): for the status line, the idle stop and the metrics.

use rdkafka::Offset;
use rdkafka::consumer::Consumer;

use super::LakeConsumer;
use crate::metrics::PartitionPosition;

impl LakeConsumer {
    /// Lag per assigned partition: cached high watermark minus librdkafka's fetch position
    /// (None while either is unknown, e.g. before the first fetch response).
    fn partition_lags(&self) -> Vec<Option<i64>> {
        self.positions().into_iter().map(|p| p.lag).collect()
    }

    /// Each assigned partition's lag and the offset after the last one the lake holds.
    fn positions(&self) -> Vec<PartitionPosition> {
        let positions = self.consumer.position().ok();
        let state = self.inner.shared.lock();
        let topic = std::ffi::CString::new(self.inner.opts.topic.as_str()).unwrap_or_default();
        state
            .slots
            .iter()
            .map(|(p, s)| {
                let (mut low, mut high) = (-1i64, -1i64);
                // SAFETY: valid handle and C string; librdkafka answers from its cached
                // watermarks without a network round trip.
                let err = unsafe {
                    rdkafka_sys::rd_kafka_get_watermark_offsets(
                        self.consumer.client().native_ptr(),
                        topic.as_ptr(),
                        *p,
                        &mut low,
                        &mut high,
                    )
                };
                let fetched = positions
                    .as_ref()
                    .and_then(|tpl| tpl.find_partition(&self.inner.opts.topic, *p))
                    .and_then(|e| match e.offset() {
                        Offset::Offset(n) => Some(n),
                        _ => None,
                    });
                let position = fetched.unwrap_or(s.position).max(s.position);
                let lag = (err == rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                    && high >= 0)
                    .then(|| (high - position).max(0));
                PartitionPosition {
                    partition: *p,
                    lag,
                    lake_next: s.lake_next,
                }
            })
            .collect()
    }

    /// Updates the lag of the statistics, and the metrics when they are kept.
    pub(super) fn update_lag(&mut self) {
        let positions = self.positions();
        self.inner.stats.lag = positions.iter().filter_map(|p| p.lag).sum();
        if let Some(m) = &self.inner.metrics {
            m.report_totals(&self.inner.stats.totals());
            m.report_partitions(&positions, self.inner.buffered_events);
        }
    }

    /// Every assigned partition read to its end (as far as librdkafka's cached watermarks say).
    pub(super) fn caught_up(&self) -> bool {
        let lags = self.partition_lags();
        !lags.is_empty() && lags.iter().all(|l| *l == Some(0))
    }
}
