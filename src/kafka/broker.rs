//! The embedded broker: librdkafka's mock cluster, a Kafka-protocol broker on real TCP ports in
//! this process. Producers and consumers in this or other processes connect to it like to Kafka.
//!
//! Limits (librdkafka's, not ours): everything is in memory; only librdkafka-based clients are
//! known to work; each partition keeps at most 5 MiB or 100,000 batches and silently drops the
//! oldest beyond that, so keep test streams compressed and spread over partitions.
//!
//! The mock cluster handle is not `Send`, so it lives on a thread of its own; [`EmbeddedBroker`]
//! talks to that thread through a channel and is itself `Send`.

use std::ffi::{CStr, CString};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka_sys as rdsys;

use super::error::KafkaError;

/// What each partition of the embedded broker keeps at most, in bytes (librdkafka's mock
/// cluster; it drops the oldest message sets beyond that).
pub const PARTITION_RETENTION_BYTES: u64 = 5 << 20;

#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Number of mock brokers.
    pub brokers: i32,
    /// Topics to create up front, with their partition counts.
    pub topics: Vec<(String, i32)>,
    /// How long a new consumer group waits for more members before the first assignment.
    /// Kafka's default is 3 s; 0 makes tests and the demo start at once.
    pub group_initial_rebalance_delay: Duration,
    /// Also accept bootstrap connections on this fixed port (e.g. 9092) and forward them to the
    /// mock broker, whose own port is random. `None`: only the random port.
    pub fixed_port: Option<u16>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            brokers: 1,
            topics: Vec::new(),
            group_initial_rebalance_delay: Duration::ZERO,
            fixed_port: None,
        }
    }
}

enum Command {
    CreateTopic(String, i32, mpsc::Sender<Result<(), KafkaError>>),
    Stop,
}

/// A running mock cluster. Dropping it stops the cluster.
pub struct EmbeddedBroker {
    bootstrap: String,
    mock_bootstrap: String,
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    pub fn start(opts: BrokerOptions) -> Result<Self, KafkaError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("mock-kafka".into())
            .spawn(move || broker_thread(opts, ready_tx, cmd_rx))
            .map_err(|e| KafkaError::Broker(format!("cannot start its thread: {e}")))?;
        let (bootstrap, mock_bootstrap) = ready_rx
            .recv()
            .map_err(|_| KafkaError::Broker("its thread ended during start-up".into()))??;
        Ok(EmbeddedBroker {
            bootstrap,
            mock_bootstrap,
            commands: cmd_tx,
            thread: Some(thread),
        })
    }

    /// The address clients should use as `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// The mock cluster's own listener list (random ports).
    pub fn mock_bootstrap_servers(&self) -> &str {
        &self.mock_bootstrap
    }

    /// Creates a topic (the mock does not support the admin API's CreateTopics).
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), KafkaError> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(Command::CreateTopic(name.to_string(), partitions, tx))
            .map_err(|_| KafkaError::Broker("it has stopped".into()))?;
        rx.recv()
            .map_err(|_| KafkaError::Broker("it has stopped".into()))?
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Ready = Result<(String, String), KafkaError>;

fn broker_thread(
    opts: BrokerOptions,
    ready: mpsc::Sender<Ready>,
    commands: mpsc::Receiver<Command>,
) {
    let started = (|| -> Result<(MockHandle, String, String), KafkaError> {
        let mock = MockHandle::new(opts.brokers)?;
        mock.set_group_initial_rebalance_delay(opts.group_initial_rebalance_delay);
        for (topic, partitions) in &opts.topics {
            mock.create_topic(topic, *partitions)?;
        }
        let mock_bootstrap = mock.bootstraps();
        let bootstrap = match opts.fixed_port {
            None => mock_bootstrap.clone(),
            Some(port) => {
                let first = mock_bootstrap
                    .split(',')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                start_forwarder(port, first)?
            }
        };
        Ok((mock, bootstrap, mock_bootstrap))
    })();
    let mock = match started {
        Ok((mock, bootstrap, mock_bootstrap)) => {
            let _ = ready.send(Ok((bootstrap, mock_bootstrap)));
            mock
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    while let Ok(cmd) = commands.recv() {
        match cmd {
            Command::CreateTopic(name, partitions, reply) => {
                let _ = reply.send(mock.create_topic(&name, partitions));
            }
            Command::Stop => break,
        }
    }
    drop(mock);
}

/// The mock cluster, owned by the producer handle that created it (`test.mock.num.brokers`).
struct MockHandle {
    producer: BaseProducer,
    cluster: *mut rdsys::rd_kafka_mock_cluster_t,
}

impl MockHandle {
    fn new(brokers: i32) -> Result<Self, KafkaError> {
        let producer: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .set("log_level", "3")
            .create()
            .map_err(|e| KafkaError::client("creating the mock cluster", e))?;
        // SAFETY: the handle is valid while `producer` lives; the cluster it returns is owned by
        // that handle and destroyed with it, and `MockHandle` never outlives `producer`.
        let cluster =
            unsafe { rdsys::rd_kafka_handle_mock_cluster(producer.client().native_ptr()) };
        if cluster.is_null() {
            return Err(KafkaError::Broker(
                "librdkafka created no mock cluster".into(),
            ));
        }
        Ok(MockHandle { producer, cluster })
    }

    fn bootstraps(&self) -> String {
        // SAFETY: `cluster` is valid (see `new`); the string is owned by the cluster.
        unsafe { CStr::from_ptr(rdsys::rd_kafka_mock_cluster_bootstraps(self.cluster)) }
            .to_string_lossy()
            .into_owned()
    }

    fn set_group_initial_rebalance_delay(&self, delay: Duration) {
        let ms = delay.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `cluster` is valid (see `new`).
        unsafe { rdsys::rd_kafka_mock_group_initial_rebalance_delay_ms(self.cluster, ms) };
    }

    fn create_topic(&self, name: &str, partitions: i32) -> Result<(), KafkaError> {
        let c_name = CString::new(name)
            .map_err(|_| KafkaError::Broker(format!("topic name {name:?} contains NUL")))?;
        // SAFETY: `cluster` is valid (see `new`) and `c_name` outlives the call.
        let err = unsafe {
            rdsys::rd_kafka_mock_topic_create(self.cluster, c_name.as_ptr(), partitions, 1)
        };
        let code: rdsys::RDKafkaErrorCode = err.into();
        if code == rdsys::RDKafkaErrorCode::NoError {
            Ok(())
        } else {
            Err(KafkaError::Broker(format!(
                "creating topic {name} ({partitions} partitions): {code}"
            )))
        }
    }
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        let _ = self.producer.flush(Duration::from_millis(100));
    }
}

/// Listens on `127.0.0.1:port` and forwards every connection to `target`. Clients bootstrap
/// through it, then connect to the broker address the cluster's metadata names.
fn start_forwarder(port: u16, target: String) -> Result<String, KafkaError> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| KafkaError::Broker(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| KafkaError::Broker(e.to_string()))?;
    std::thread::Builder::new()
        .name("mock-kafka-fwd".into())
        .spawn(move || {
            for client in listener.incoming().flatten() {
                let target = target.clone();
                std::thread::spawn(move || {
                    if let Ok(server) = TcpStream::connect(&target) {
                        let _ = pipe(client, server);
                    }
                });
            }
        })
        .map_err(|e| KafkaError::Broker(e.to_string()))?;
    Ok(format!("127.0.0.1:{}", addr.port()))
}

fn pipe(a: TcpStream, b: TcpStream) -> io::Result<()> {
    let (mut a_read, mut b_write) = (a.try_clone()?, b.try_clone()?);
    let back = std::thread::spawn(move || {
        let (mut b_read, mut a_write) = (b, a);
        let _ = io::copy(&mut b_read, &mut a_write);
        let _ = a_write.shutdown(std::net::Shutdown::Write);
    });
    let _ = io::copy(&mut a_read, &mut b_write);
    let _ = b_write.shutdown(std::net::Shutdown::Write);
    let _ = back.join();
    Ok(())
}
