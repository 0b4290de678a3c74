//! A queue of fetched messages read in batches, for the consumer's hot loop.
//!
//! rdkafka's `BaseConsumer::poll` hands out one message per call, and each call reads the
//! clock three times, takes the queue lock and allocates an event: about 0.2 µs of the
//! consumer thread per message (measured with `bench consume`, 1M events). librdkafka can hand
//! out many messages per call (`rd_kafka_consume_batch_queue`), but not on the consumer queue
//! that rdkafka uses for rebalance events: served in a batch, a rebalance would be answered
//! with a forced unassign. So each partition's messages are routed to a queue of their own
//! (this one) while rebalances, errors and commit results stay on the consumer queue that
//! `poll` serves.
//!
//! Routing happens before librdkafka starts fetching a newly assigned partition (in the
//! pre-rebalance callback), so every message of the partition arrives here, in offset order.
//! librdkafka's forwarding set by the application survives its own fetch start, and is
//! cleared by its fetch stop on revocation, which is why each assignment routes again.
//! Messages still queued for a partition that was revoked carry an old version and are
//! dropped by librdkafka when served.

use std::ffi::CString;
use std::ptr::NonNull;
use std::time::Duration;

use rdkafka_sys as rdsys;

/// A librdkafka queue owned by the application. It must be dropped before the client it was
/// made from is destroyed.
pub struct FetchQueue {
    queue: NonNull<rdsys::rd_kafka_queue_t>,
}

// SAFETY: librdkafka queues are thread-safe; the handle is only a pointer to one.
unsafe impl Send for FetchQueue {}
unsafe impl Sync for FetchQueue {}

/// One fetched message, borrowed from librdkafka for the duration of a callback.
pub struct Fetched<'a> {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    /// None for a null payload (a tombstone), unlike an empty one.
    pub payload: Option<&'a [u8]>,
}

impl FetchQueue {
    /// A new, empty queue of the client `rk`.
    ///
    /// # Safety
    /// `rk` must be a live consumer handle that outlives the queue.
    pub unsafe fn new(rk: *mut rdsys::rd_kafka_t) -> Option<FetchQueue> {
        // SAFETY: the caller guarantees `rk` is live.
        NonNull::new(unsafe { rdsys::rd_kafka_queue_new(rk) }).map(|queue| FetchQueue { queue })
    }

    /// Routes the messages of one partition here. Call it before the partition is assigned.
    /// False when librdkafka does not know the topic name (its messages then stay on the
    /// consumer queue).
    ///
    /// # Safety
    /// `rk` must be the live consumer handle this queue was made from.
    pub unsafe fn route(&self, rk: *mut rdsys::rd_kafka_t, topic: &str, partition: i32) -> bool {
        let Ok(topic) = CString::new(topic) else {
            return false;
        };
        // SAFETY: `rk` is live; the partition queue handle is released right after use, the
        // forwarding it sets lives in librdkafka's partition object.
        unsafe {
            let pq = rdsys::rd_kafka_queue_get_partition(rk, topic.as_ptr(), partition);
            if pq.is_null() {
                return false;
            }
            rdsys::rd_kafka_queue_forward(pq, self.queue.as_ptr());
            rdsys::rd_kafka_queue_destroy(pq);
        }
        true
    }

    /// Waits up to `timeout` for messages and hands up to `max` of them to `take`, in queue
    /// order; partition errors go to `on_error`. Returns how many messages were handed over.
    pub fn consume(
        &self,
        timeout: Duration,
        max: usize,
        buf: &mut Vec<*mut rdsys::rd_kafka_message_t>,
        mut take: impl FnMut(Fetched<'_>),
        mut on_error: impl FnMut(i32, String),
    ) -> usize {
        if max == 0 {
            return 0;
        }
        if buf.len() < max {
            buf.resize(max, std::ptr::null_mut());
        }
        let timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `buf` has room for `max` pointers; librdkafka fills the first `n`.
        let n = unsafe {
            rdsys::rd_kafka_consume_batch_queue(
                self.queue.as_ptr(),
                timeout_ms,
                buf.as_mut_ptr(),
                max,
            )
        };
        let n = usize::try_from(n).unwrap_or(0);
        let mut taken = 0;
        for &m in &buf[..n] {
            // SAFETY: each pointer is a message librdkafka handed over; its key and payload
            // live until it is destroyed, which is after the callback returns.
            unsafe {
                let msg = &*m;
                if msg.err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    let text = std::ffi::CStr::from_ptr(rdsys::rd_kafka_err2str(msg.err))
                        .to_string_lossy()
                        .into_owned();
                    on_error(msg.partition, text);
                } else {
                    let bytes = |p: *mut std::ffi::c_void, len: usize| -> Option<&[u8]> {
                        (!p.is_null()).then(|| std::slice::from_raw_parts(p as *const u8, len))
                    };
                    take(Fetched {
                        partition: msg.partition,
                        offset: msg.offset,
                        key: bytes(msg.key, msg.key_len),
                        payload: bytes(msg.payload, msg.len),
                    });
                    taken += 1;
                }
                rdsys::rd_kafka_message_destroy(m);
            }
        }
        taken
    }
}

impl Drop for FetchQueue {
    fn drop(&mut self) {
        // SAFETY: the handle came from rd_kafka_queue_new and is destroyed once; partitions
        // still routed here keep librdkafka's own reference and drop what arrives.
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue.as_ptr()) }
    }
}
