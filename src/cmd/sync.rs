//! `stocklake sync s3://bucket/lake ./lake`: mirror an S3 lake locally with a progress bar.

use crate::Error;
use crate::aws::{S3Url, s3_store, sdk_config};
use crate::cli::SyncArgs;
use crate::sync::{SyncEvent, sync};

pub fn run(args: &SyncArgs, quiet: bool) -> Result<(), Error> {
    let src = S3Url::parse(&args.source).map_err(|e| Error::Usage(e.to_string()))?;
    super::runtime(None)?.block_on(async {
        let config = sdk_config().await;
        let store = s3_store(&config, &src.bucket)?;
        let bar = super::progress_bar(
            quiet,
            Some(0),
            "{spinner} {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}",
        );
        let mut on_event = |e: SyncEvent<'_>| match e {
            SyncEvent::Plan { bytes, .. } => bar.set_length(bytes),
            SyncEvent::Copied { key, bytes } => {
                bar.inc(bytes);
                bar.set_message(key.to_string());
            }
        };
        let report = sync(
            store,
            &src.path(),
            &src.join(""),
            &args.dest,
            args.force,
            crate::signal::stop_flag(),
            &mut on_event,
        )
        .await?;
        bar.finish_and_clear();
        for key in &report.skipped {
            tracing::warn!("skipped {key}: not a safe local file name");
        }
        for key in &report.empty {
            tracing::info!("skipped {key}: an empty object (an S3 folder marker)");
        }
        if !quiet {
            eprintln!(
                "{} objects upstream: {} copied ({} bytes), {} unchanged, {} deleted locally",
                report.listed, report.copied, report.copied_bytes, report.unchanged, report.deleted
            );
        }
        if report.interrupted {
            return Err(crate::sync::SyncError::Interrupted.into());
        }
        Ok(())
    })
}
