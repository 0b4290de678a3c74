//! Typed settings with defaults, read from an optional `stocklake.toml`. Precedence, highest
//! first: command-line flag, `STOCKLAKE_*` environment variable, settings file, built-in default.
//!
//! ```toml
//! [kafka]
//! brokers = "b-1.msk.example:9096"
//! topic = "ticks"
//! group = "stocklake"
//! [kafka.properties]            # any librdkafka property
//! "security.protocol" = "SASL_SSL"
//! [lake]
//! url = "s3://my-bucket/stocklake"
//! [athena]
//! workgroup = "primary"
//! database = "stocklake"
//! output = "s3://my-bucket/athena-results/"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ConfigError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub kafka: KafkaSection,
    pub lake: LakeSection,
    pub athena: AthenaSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSection {
    pub brokers: String,
    pub topic: String,
    pub group: String,
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaSection {
    fn default() -> Self {
        KafkaSection {
            brokers: "localhost:9092".into(),
            topic: "ticks".into(),
            group: "stocklake".into(),
            properties: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LakeSection {
    /// Local folder, `file://` or `s3://` URL of the lake root.
    pub url: String,
}

impl Default for LakeSection {
    fn default() -> Self {
        LakeSection {
            url: "./lake".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AthenaSection {
    pub workgroup: String,
    pub database: String,
    pub catalog: String,
    /// S3 output location for query results; empty: the workgroup's setting.
    pub output: Option<String>,
}

impl Default for AthenaSection {
    fn default() -> Self {
        AthenaSection {
            workgroup: "primary".into(),
            database: "stocklake".into(),
            catalog: "AwsDataCatalog".into(),
            output: None,
        }
    }
}

impl Settings {
    /// Reads `path`, or `./stocklake.toml` when `path` is None and that file exists, or defaults.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("stocklake.toml"), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Settings::default());
            }
            Err(e) => {
                return Err(ConfigError::File {
                    path,
                    message: e.to_string(),
                });
            }
        };
        Settings::parse(&text).map_err(|message| ConfigError::File { path, message })
    }

    pub fn parse(text: &str) -> Result<Settings, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Kafka settings with the command line's overrides applied.
    pub fn kafka_settings(&self, args: &crate::cli::KafkaArgs) -> crate::kafka::KafkaSettings {
        let mut properties: Vec<(String, String)> = self
            .kafka
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        properties.extend(args.property.iter().cloned());
        crate::kafka::KafkaSettings {
            brokers: args
                .brokers
                .clone()
                .unwrap_or_else(|| self.kafka.brokers.clone()),
            properties,
        }
    }

    pub fn topic(&self, args: &crate::cli::KafkaArgs) -> String {
        args.topic
            .clone()
            .unwrap_or_else(|| self.kafka.topic.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_and_flag_overrides() {
        let s = Settings::parse(
            "[kafka]\nbrokers = \"k:1\"\n[kafka.properties]\n\"linger.ms\" = \"50\"\n",
        )
        .unwrap();
        assert_eq!(s.kafka.topic, "ticks");
        let mut args = crate::cli::KafkaArgs::default();
        assert_eq!(s.kafka_settings(&args).brokers, "k:1");
        args.brokers = Some("flag:2".into());
        args.property = vec![("linger.ms".into(), "0".into())];
        let k = s.kafka_settings(&args);
        assert_eq!(k.brokers, "flag:2");
        assert_eq!(k.producer_config().get("linger.ms"), Some("0"));
        assert!(
            Settings::parse("[kafka]\nbrokerz = 1\n")
                .unwrap_err()
                .contains("brokerz")
        );
    }
}
