//! The crate's layers, checked from its source text: the core never imports the command line
//! (clap, indicatif, `cli`, `cmd`, the signal globals), no module imports from a floor above its
//! own, and the only import cycles among `src/` files are inside one module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Floors, top to bottom: a module may import its own floor (if no file cycle results) and the
/// floors below. `main.rs` is the binary, above them all.
const FLOORS: &[&[&str]] = &[
    &["cmd"],
    &["repl"],
    &["cli", "settings", "script", "error"],
    &[
        "catalog", "compare", "engine", "kafka", "lake", "print", "source", "sync",
    ],
    &["aws", "signal", "metrics"],
    &["report", "tick", "memory"],
];

/// The core: what these modules import must not know of a command line.
const CORE: &[&str] = &[
    "tick", "source", "kafka", "lake", "engine", "compare", "catalog", "sync", "aws", "print",
    "report", "metrics", "memory",
];

/// What the core must not name (a `clap::ValueEnum` derive on a leaf enum is allowed).
const FORBIDDEN_IN_CORE: &[&str] = &[
    "crate::cli",
    "crate::cmd",
    "crate::signal",
    "crate::settings",
    "crate::error",
    "crate::Error",
    "indicatif",
    "use clap",
    "clap::Parser",
    "clap::Args",
    "clap::Subcommand",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without comments and without the items under `#[cfg(test)]` (tests may
/// reach anywhere); code after a test module is still read.
fn code_of(text: &str) -> String {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        // Skip the item: up to its `;`, or its `{ … }` block.
        let mut depth = 0usize;
        let mut end = rest.len();
        for (j, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = j + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// `src/engine/athena/mod.rs` -> ["engine", "athena"].
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).expect("under src/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Every `crate::a::b::…` path the code names, as segments (`use crate::{a, b::c}` included).
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let segs = segments(item.trim());
                if !segs.is_empty() {
                    out.push(segs);
                }
            }
        } else {
            out.push(segments(rest));
        }
    }
    out
}

fn segments(s: &str) -> Vec<String> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    s[..end]
        .split("::")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn floor_of(module: &str) -> usize {
    FLOORS
        .iter()
        .position(|f| f.contains(&module))
        .unwrap_or_else(|| panic!("src/{module}: add the module to a floor in tests/layers.rs"))
}

/// The files of the crate, by module path, and the files each one imports.
fn file_graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let me = module_path(file);
        if me.is_empty() || me == ["main"] {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(file).expect("read source"));
        let mut targets = BTreeSet::new();
        for mut path in crate_paths(&code) {
            if path.first().is_some_and(|p| p == "Error") {
                path = vec!["error".into()];
            }
            // The longest prefix of the path that is a file of the crate.
            while !path.is_empty() && !modules.contains(&path) {
                path.pop();
            }
            if !path.is_empty() && path != me {
                targets.insert(path);
            }
        }
        graph.insert(me, targets);
    }
    graph
}

#[test]
fn the_core_knows_nothing_of_the_command_line() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut offences = Vec::new();
    for file in &files {
        let module = module_path(file);
        if !module.first().is_some_and(|m| CORE.contains(&m.as_str())) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(file).expect("read source"));
        for bad in FORBIDDEN_IN_CORE {
            if code.contains(bad) {
                offences.push(format!("{} names {bad}", file.display()));
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

#[test]
fn no_module_imports_from_a_floor_above_its_own() {
    let mut offences = Vec::new();
    for (from, targets) in file_graph() {
        for to in targets {
            if floor_of(&to[0]) < floor_of(&from[0]) {
                offences.push(format!("{} -> {}", from.join("::"), to.join("::")));
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

#[test]
fn import_cycles_stay_inside_one_module() {
    let graph = file_graph();
    // A file reaches another when a chain of imports leads there; two files that reach each
    // other are on a cycle.
    let reach = |start: &Vec<String>| -> BTreeSet<Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start.clone()];
        while let Some(f) = todo.pop() {
            for t in graph.get(&f).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    todo.push(t.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<_, _> = graph.keys().map(|f| (f.clone(), reach(f))).collect();
    let mut offences = BTreeSet::new();
    for (a, from_a) in &reaches {
        for b in from_a {
            if a[0] != b[0] && reaches.get(b).is_some_and(|r| r.contains(a)) {
                let (x, y) = if a < b { (a, b) } else { (b, a) };
                offences.insert(format!("{} <-> {}", x.join("::"), y.join("::")));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "import cycles across modules:\n{}",
        offences.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_checks_see_imports() {
    // The parser finds what the checks rely on, so an empty graph cannot pass them silently.
    let g = file_graph();
    let cmd_sql = g.get(&vec!["cmd".to_string(), "sql".to_string()]).unwrap();
    assert!(cmd_sql.contains(&vec!["script".to_string()]), "{cmd_sql:?}");
    let code = code_of(
        "use crate::x;\n#[cfg(test)]\nmod tests {\n use crate::y;\n}\nfn f() { crate::z(); }",
    );
    assert_eq!(
        crate_paths(&code),
        vec![vec!["x".to_string()], vec!["z".to_string()]]
    );
    assert_eq!(
        crate_paths("use crate::{a::b, c};\nlet x = crate::d::e(1);"),
        vec![
            vec!["a".to_string(), "b".to_string()],
            vec!["c".to_string()],
            vec!["d".to_string(), "e".to_string()],
        ]
    );
}
