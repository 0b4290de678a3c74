//! `stocklake broker`: the embedded Kafka-protocol broker, for running `produce` and `consume`
//! in two terminals with nothing installed.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::cli::BrokerArgs;
use crate::error::Error;
use crate::kafka::{BrokerOptions, EmbeddedBroker};

pub fn run(args: &BrokerArgs) -> Result<(), Error> {
    if args.partitions < 1 {
        return Err(Error::Usage("--partitions must be at least 1".into()));
    }
    let broker = EmbeddedBroker::start(BrokerOptions {
        topics: vec![(args.topic.clone(), args.partitions)],
        fixed_port: (args.port != 0).then_some(args.port),
        ..Default::default()
    })?;
    // The address goes to stdout (scripts read it); the advice to stderr.
    println!("{}", broker.bootstrap_servers());
    eprintln!(
        "embedded Kafka broker on {} (topic {} with {} partitions; in memory only)\n\
         in another terminal:\n  stocklake produce data/stocks.csv --brokers {} --delay 1s\n\
         Ctrl-C stops it.",
        broker.bootstrap_servers(),
        args.topic,
        args.partitions,
        broker.bootstrap_servers()
    );
    while !crate::signal::stop_flag().load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("stopping the broker");
    Ok(())
}
