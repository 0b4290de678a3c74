//! `stocklake lake upgrade`: converts a 0.1 lake into Delta tables and says what it did.

use crate::cli::{LakeArgs, LakeWhat, UpgradeArgs};
use crate::error::Error;
use crate::lake::upgrade::{UpgradeReport, upgrade};
use crate::settings::Settings;

pub fn run(settings: &Settings, args: &LakeArgs, quiet: bool) -> Result<(), Error> {
    match &args.what {
        LakeWhat::Upgrade(a) => run_upgrade(settings, a, quiet),
    }
}

fn run_upgrade(settings: &Settings, args: &UpgradeArgs, quiet: bool) -> Result<(), Error> {
    let lake = settings.lake_url(args.lake.as_ref());
    let report = super::runtime(Some(2))?.block_on(upgrade(&lake))?;
    if !quiet {
        eprint!("{}", describe(&lake, &report));
    }
    Ok(())
}

/// The summary on stderr.
fn describe(lake: &str, r: &UpgradeReport) -> String {
    if r.already_delta {
        return format!(
            "{lake} is a Delta lake already (no _stocklake/table.json): nothing to upgrade, nothing changed\n"
        );
    }
    let mut out = String::new();
    for b in &r.rolled_back {
        out.push_str(&format!(
            "rolled back the uncommitted batch {}..={} of {}/{} ({} objects)\n",
            b.first_offset, b.last_offset, b.topic, b.partition, b.objects
        ));
    }
    for f in &r.left_out {
        out.push_str(&format!(
            "left out {f}: no commit record covers it (not in the table; compact's vacuum removes it)\n"
        ));
    }
    if r.committed_earlier {
        out.push_str(&format!(
            "{lake}: an earlier run had committed the upgrade (ticks version {}); finished its clean-up\n",
            r.ticks_version.unwrap_or_default()
        ));
    } else {
        let rejects = match r.rejects {
            Some(n) => format!("{n} rejects"),
            None => "the rejects (committed by an earlier run)".into(),
        };
        out.push_str(&format!(
            "upgraded {lake}: {} data files ({} rows, {} bytes) recorded in ticks/ version {}, {rejects} in rejects/ version {}\n",
            r.files,
            r.rows,
            r.bytes,
            r.ticks_version.unwrap_or_default(),
            r.rejects_version.unwrap_or_default(),
        ));
    }
    for p in &r.partitions {
        out.push_str(&format!(
            "  {}/{}: offsets before {} are in the table (consumers continue there)\n",
            p.topic, p.partition, p.next_offset
        ));
    }
    out.push_str(&format!(
        "removed {} objects of the 0.1 format (_stocklake/, _rejects/, staging leftovers)\n",
        r.removed
    ));
    out
}
