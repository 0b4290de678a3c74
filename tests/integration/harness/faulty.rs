//! A mock cluster to fail: librdkafka's (`rdkafka::mocking`, plus the few calls of its C API
//! that rdkafka does not wrap), one broker and one topic, with request errors pushed per API
//! (and counted as they are taken), the broker set down and up, and added round-trip time.

use std::ffi::CStr;
use std::os::raw::c_int;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, DefaultProducerContext, Producer as _};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka_sys as rdsys;

use super::unique;

/// The one broker of the mock cluster (ids start at 1).
const BROKER: i32 = 1;

/// A one-broker mock cluster with one topic, and the faults a test sets on it.
pub struct Faulty {
    /// The client that owns the cluster (`test.mock.num.brokers`); the cluster lives as long.
    owner: BaseProducer,
    pub topic: String,
    pub partitions: i32,
}

impl Faulty {
    pub fn new(partitions: i32) -> Faulty {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .set("log_level", "0")
            .create()
            .expect("a client owning a mock cluster");
        let f = Faulty {
            owner,
            topic: unique("faults"),
            partitions,
        };
        // SAFETY: the cluster belongs to `owner`, which lives as long as `f`.
        unsafe { rdsys::rd_kafka_mock_group_initial_rebalance_delay_ms(f.raw(), 0) };
        f.mock()
            .create_topic(&f.topic, partitions, 1)
            .expect("topic created");
        f
    }

    fn mock(&self) -> MockCluster<'_, DefaultProducerContext> {
        self.owner
            .client()
            .mock_cluster()
            .expect("the mock cluster")
    }

    fn raw(&self) -> *mut rdsys::rd_kafka_mock_cluster_t {
        // SAFETY: `owner` is a live client handle.
        let raw = unsafe { rdsys::rd_kafka_handle_mock_cluster(self.owner.client().native_ptr()) };
        assert!(!raw.is_null(), "no mock cluster");
        raw
    }

    pub fn bootstrap(&self) -> String {
        self.mock().bootstrap_servers()
    }

    pub fn down(&self) {
        self.mock().broker_down(BROKER).expect("broker down");
    }

    pub fn up(&self) {
        self.mock().broker_up(BROKER).expect("broker up");
    }

    pub fn rtt(&self, ms: u64) {
        self.mock()
            .broker_round_trip_time(BROKER, Duration::from_millis(ms))
            .expect("rtt set");
    }

    /// Pushes the errors `names` (see [`error_codes`]) for the next requests of `api`, one
    /// request each, in order.
    pub fn push(&self, api: RDKafkaApiKey, names: &str) {
        for e in error_codes(names) {
            // SAFETY: a live cluster; the variadic arguments are one (error, rtt in ms) pair,
            // as `cnt` says, with C's types (an enum and an int).
            let err = unsafe {
                rdsys::rd_kafka_mock_broker_push_request_error_rtts(
                    self.raw(),
                    BROKER,
                    api as i16,
                    1,
                    e,
                    0 as c_int,
                )
            };
            assert_eq!(err, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR, "{e:?}");
        }
    }

    /// How many pushed errors of `api` no request has taken yet.
    pub fn left(&self, api: RDKafkaApiKey) -> usize {
        let mut n = 0usize;
        // SAFETY: a live cluster and a valid out pointer.
        unsafe {
            rdsys::rd_kafka_mock_broker_error_stack_cnt(self.raw(), BROKER, api as i16, &mut n)
        };
        n
    }
}

/// The error codes of `names`, separated by spaces: librdkafka's names without the
/// `RD_KAFKA_RESP_ERR_` prefix (`NOT_COORDINATOR`, `_TRANSPORT` for a local one).
pub fn error_codes(names: &str) -> Vec<RDKafkaRespErr> {
    let mut descs = std::ptr::null();
    let mut n = 0;
    // SAFETY: librdkafka points `descs` at its static table of `n` entries.
    let descs = unsafe {
        rdsys::rd_kafka_get_err_descs(&mut descs, &mut n);
        std::slice::from_raw_parts(descs, n)
    };
    let named = |d: &&rdsys::rd_kafka_err_desc, name: &str| {
        // SAFETY: a non-null name in the table is a static C string.
        !d.name.is_null() && unsafe { CStr::from_ptr(d.name) }.to_bytes() == name.as_bytes()
    };
    names
        .split_whitespace()
        .map(|name| {
            descs
                .iter()
                .find(|d| named(d, name))
                .map(|d| d.code)
                .unwrap_or_else(|| panic!("librdkafka has no error named {name}"))
        })
        .collect()
}
