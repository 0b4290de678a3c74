//! Kafka client settings: safe defaults for the producer and the consumer, and the `-X key=value`
//! pass-through for any librdkafka property (SASL/SSL for MSK, tuning).

use rdkafka::ClientConfig;

use super::error::KafkaError;

/// Where the cluster is and what to pass through to librdkafka.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// `-X key=value` properties, applied last so they override every default.
    pub properties: Vec<(String, String)>,
}

/// Parses one `key=value` librdkafka property.
pub fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

/// Property names whose values are secrets and must never be printed or logged.
pub fn is_secret_property(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k.contains("secret") || k.ends_with(".key.pem") || k.contains("token")
}

impl KafkaSettings {
    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        // librdkafka drops log lines above this level itself; let through what the tracing
        // filter may want (see `log_librdkafka`).
        use rdkafka::config::RDKafkaLogLevel as L;
        use tracing::level_filters::LevelFilter;
        c.set_log_level(match LevelFilter::current() {
            LevelFilter::TRACE | LevelFilter::DEBUG => L::Debug,
            LevelFilter::INFO => L::Info,
            LevelFilter::WARN => L::Warning,
            LevelFilter::ERROR => L::Error,
            _ => L::Emerg,
        });
        c
    }

    fn apply_overrides(&self, c: &mut ClientConfig) {
        for (k, v) in &self.properties {
            c.set(k, v);
        }
    }

    /// Producer defaults: idempotent (so retries neither duplicate nor reorder), `acks=all`, lz4,
    /// Java-compatible key hashing (so other clients agree on partitions), and large batches.
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("message.timeout.ms", "60000");
        self.apply_overrides(&mut c);
        c
    }

    /// Consumer defaults: manual offset commits (stocklake commits only after data is durable),
    /// no automatic offset store, start from the earliest offset for a new group.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("partition.assignment.strategy", "cooperative-sticky")
            // librdkafka waits 1 s before fetching again once its queue is full or a fetch
            // errs; stocklake drains the queue quickly, so a long pause only costs throughput
            // (measured: 170k events/s with the defaults, 700k+ with these).
            .set("fetch.queue.backoff.ms", "10")
            .set("fetch.error.backoff.ms", "50");
        self.apply_overrides(&mut c);
        c
    }

    /// The settings as `key=value` lines with secret values masked, for logs and `--help` output.
    pub fn describe(config: &ClientConfig) -> String {
        let map = config.config_map();
        let mut pairs: Vec<_> = map.iter().collect();
        pairs.sort();
        pairs
            .into_iter()
            .map(|(k, v)| {
                if is_secret_property(k) {
                    format!("{k}=***")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Maps an rdkafka error to ours with a context string.
pub fn client_err(
    context: impl Into<String>,
) -> impl FnOnce(rdkafka::error::KafkaError) -> KafkaError {
    let context = context.into();
    move |e| KafkaError::client(context, e)
}

/// librdkafka's log lines (including what `-X debug=...` asks for) as tracing events under the
/// target `librdkafka`, so that they reach stderr with the rest of the log. rdkafka's default
/// sends them to the `log` crate, which nothing here listens to.
pub fn log_librdkafka(level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
    use rdkafka::config::RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            tracing::error!(target: "librdkafka", "{facility}: {message}")
        }
        L::Warning => tracing::warn!(target: "librdkafka", "{facility}: {message}"),
        L::Notice | L::Info => tracing::info!(target: "librdkafka", "{facility}: {message}"),
        L::Debug => tracing::debug!(target: "librdkafka", "{facility}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_override_defaults_and_secrets_are_masked() {
        let s = KafkaSettings {
            brokers: "b:1".into(),
            properties: vec![
                parse_property("compression.type=zstd").unwrap(),
                parse_property("sasl.password=hunter2").unwrap(),
            ],
        };
        let c = s.producer_config();
        assert_eq!(c.get("compression.type"), Some("zstd"));
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        let shown = KafkaSettings::describe(&c);
        assert!(shown.contains("sasl.password=***"));
        assert!(!shown.contains("hunter2"));
        assert!(parse_property("novalue").is_err());
        assert_eq!(parse_property("a=b=c").unwrap(), ("a".into(), "b=c".into()));
    }
}
