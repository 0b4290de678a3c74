//! The Jupyter notebooks in notebooks/: they run headlessly (nbclient, in the test venv) against
//! a lake written by the real binary and a saved Athena result computed independently (pandas,
//! from data/stocks.csv), every chart lands as a non-blank PNG, the cross-check notebook fails
//! on a result that differs, and the committed notebooks carry no outputs.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

use crate::harness::cmd::{BIN, venv};
use crate::harness::{cmd, python, repo, sample_csv, text};

/// The charts the notebooks save in $STOCKLAKE_FIGURES.
const FIGURES: [&str; 5] = [
    "01_close_prices.png",
    "01_moving_average.png",
    "01_daily_returns.png",
    "01_volume.png",
    "02_differences.png",
];

/// Fails the test unless the venv can run the notebooks (scripts/python-env.sh makes it).
fn check_venv() {
    let ok = python(&[
        "-c",
        "import nbclient, ipykernel, pandas, pyarrow, deltalake, matplotlib, PIL",
    ])
    .output()
    .status
    .success();
    assert!(
        ok,
        "{} cannot run the notebooks (nbclient, ipykernel, pandas, pyarrow, deltalake, \
         matplotlib): run \
         `bash scripts/python-env.sh` (or set STOCKLAKE_VENV to a venv made from requirements.txt)",
        venv().join("bin/python").display()
    );
}

/// The lake `stocklake demo` writes (broker, produce, consume, saved queries), in `dir/lake`:
/// the Delta table the notebooks read.
/// The demo runs outside the repository (in the harness's empty working directory), so it also
/// proves its built-in copy of the data and of the saved queries.
fn build_lake(dir: &Path) -> PathBuf {
    let lake = dir.join("lake");
    cmd(&["demo", "--lake"]).arg(&lake).arg("-q").output_ok();
    lake
}

/// Writes the saved Athena result of queries/daily_summary.sql (tests/py/athena_fixture.py).
fn saved_athena_result(out: &Path, perturb: Option<&str>) {
    let o = python(&[
        repo().join("tests/py/athena_fixture.py"),
        sample_csv(),
        repo().join("queries/daily_summary.sql"),
        out.to_path_buf(),
    ])
    .args(
        perturb
            .map(|column| ["--perturb", column])
            .into_iter()
            .flatten(),
    )
    .output();
    assert!(o.status.success(), "athena_fixture.py: {}", text(&o.stderr));
}

/// scripts/run_notebooks.py on `notebooks` (all when empty) with the notebooks' inputs.
/// Every other `STOCKLAKE_*` variable (STOCKLAKE_QUERY, _SYMBOL, _RTOL…) is unset: defaults.
fn run_notebooks(lake: &Path, saved: &Path, figures: &Path, notebooks: &[&str]) -> Output {
    python(&[repo().join("scripts/run_notebooks.py")])
        .args(notebooks.iter().map(|n| repo().join("notebooks").join(n)))
        .env("STOCKLAKE_LAKE", lake)
        .env("STOCKLAKE_BIN", BIN)
        .env("STOCKLAKE_SAVED", saved)
        .env("STOCKLAKE_FIGURES", figures)
        .env("STOCKLAKE_QUERIES", repo().join("queries"))
        .env_remove("MPLBACKEND") // the kernel picks the inline backend
        .output()
}

/// (width, height) from a PNG's signature and IHDR chunk; Err says what is wrong.
fn png_size(bytes: &[u8]) -> Result<(u32, u32), String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 33 || &bytes[..8] != SIGNATURE {
        return Err("no PNG signature".into());
    }
    if &bytes[12..16] != b"IHDR" {
        return Err("first chunk is not IHDR".into());
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Ok((be(&bytes[16..20]), be(&bytes[20..24])))
}

#[test]
fn notebooks_run_on_a_lake_and_draw_their_charts() {
    check_venv();
    let dir = tempfile::tempdir().expect("temp dir");
    let t = Instant::now();
    let lake = build_lake(dir.path());
    eprintln!("lake built in {:.1?}", t.elapsed());
    let saved = dir.path().join("athena");
    saved_athena_result(&saved, None);
    let figures = dir.path().join("figures");

    let t = Instant::now();
    let out = run_notebooks(&lake, &saved, &figures, &[]);
    let report = text(&out.stdout);
    eprintln!("notebooks ran in {:.1?}:\n{report}", t.elapsed());
    assert!(
        out.status.success(),
        "run_notebooks.py: {}\n{report}\n{}",
        out.status,
        text(&out.stderr)
    );
    for nb in ["01_explore_lake.ipynb", "02_cross_check.ipynb"] {
        assert!(
            report.contains(&format!("notebook {nb} ok")),
            "{nb} did not run:\n{report}"
        );
    }

    for name in FIGURES {
        let path = figures.join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (w, h) = png_size(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(w > 100 && h > 100, "{name}: {w}x{h}");
        assert!(bytes.len() > 5_000, "{name}: only {} bytes", bytes.len());
        // The runner measured the pixels: not one flat colour.
        let line = report
            .lines()
            .find(|l| l.starts_with(&format!("png {name} ")))
            .unwrap_or_else(|| panic!("no measurement of {name}:\n{report}"));
        assert!(line.ends_with(" ok"), "{line}");
    }
}

#[test]
fn cross_check_notebook_fails_on_a_differing_athena_result() {
    check_venv();
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = build_lake(dir.path());
    let saved = dir.path().join("athena");
    saved_athena_result(&saved, Some("avg_close"));
    let figures = dir.path().join("figures");
    let out = run_notebooks(&lake, &saved, &figures, &["02_cross_check.ipynb"]);
    let report = text(&out.stdout);
    assert!(
        !out.status.success(),
        "a 0.1 % difference passed:\n{report}"
    );
    assert!(
        report.contains("notebook 02_cross_check.ipynb FAILED"),
        "{report}"
    );
    assert!(
        report.contains("differing columns: avg_close (1)"),
        "the failure names the column:\n{report}"
    );
    // The chart is drawn before the verdict.
    assert!(figures.join("02_differences.png").is_file());
}

#[test]
fn committed_notebooks_have_no_outputs() {
    let dir = repo().join("notebooks");
    let mut notebooks: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("notebooks/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ipynb"))
        .collect();
    notebooks.sort();
    let names: Vec<_> = notebooks
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"01_explore_lake.ipynb".into())
            && names.contains(&"02_cross_check.ipynb".into()),
        "{names:?}"
    );
    let mut dirty = Vec::new();
    for path in &notebooks {
        let name = path.file_name().unwrap().to_string_lossy();
        let nb: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
        assert_eq!(nb["nbformat"], 4, "{name}: nbformat");
        let cells = nb["cells"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no cells"));
        for (i, cell) in cells.iter().enumerate() {
            if cell["cell_type"] != "code" {
                continue;
            }
            if cell["metadata"].get("execution").is_some() {
                dirty.push(format!(
                    "{name} cell {i}: execution timings in the metadata"
                ));
            }
            let outputs = cell["outputs"].as_array().map_or(0, Vec::len);
            if outputs > 0 || !cell["execution_count"].is_null() {
                dirty.push(format!(
                    "{name} cell {i}: {outputs} outputs, execution_count {}",
                    cell["execution_count"]
                ));
            }
        }
        if nb["metadata"].get("widgets").is_some() {
            dirty.push(format!("{name}: widget state in the metadata"));
        }
    }
    assert!(
        dirty.is_empty(),
        "notebooks are committed without outputs; clear them with \
         `.venv/bin/python scripts/run_notebooks.py --strip`:\n{}",
        dirty.join("\n")
    );
}
