//! The lag of the assigned partitions, from librdkafka's cached watermarks (over FFI, no
//! network round trip): for the status line and the idle stop.

use rdkafka::Offset;
use rdkafka::consumer::Consumer;

use super::LakeConsumer;

impl LakeConsumer {
    /// Lag per assigned partition: cached high watermark minus librdkafka's fetch position
    /// (None while either is unknown, e.g. before the first fetch response).
    fn partition_lags(&self) -> Vec<Option<i64>> {
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
                (err == rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
                    .then(|| (high - position).max(0))
            })
            .collect()
    }

    pub(super) fn update_lag(&mut self) {
        self.inner.stats.lag = self.partition_lags().into_iter().flatten().sum();
    }

    /// Every assigned partition read to its end (as far as librdkafka's cached watermarks say).
    pub(super) fn caught_up(&self) -> bool {
        let lags = self.partition_lags();
        !lags.is_empty() && lags.iter().all(|l| *l == Some(0))
    }
}
