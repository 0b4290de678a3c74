//! The integration tests, one binary: one module per capability, all sharing [`harness`] (the
//! embedded broker, the `stocklake` binary in a clean environment, moto, lake readers, goldens).

mod harness;
mod layers;

mod athena;
mod audit;
mod bench;
mod catalog;
mod compact;
mod compare;
mod compare_ties;
mod compare_values;
mod consume;
mod consume_s3;
mod corrupt;
mod crash;
mod csv_layouts;
mod database;
mod delta_log;
mod delta_read;
mod demo;
mod faults_broker;
mod faults_disk;
mod faults_s3;
mod fencing;
mod fuzz;
mod hostile;
mod metrics;
mod notebooks;
mod pinned;
mod produce;
mod produce_stream;
mod queries;
mod rebalance;
mod repl;
mod scan_order;
mod secrets;
mod snapshots;
mod sql;
mod sync;
mod upgrade;
mod watch;
