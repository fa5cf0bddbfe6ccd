//! The crate's layers, as `src/lib.rs` lists them: each top-level module
//! imports only modules its doc lists before it, so there are no cycles
//! and the list stays true.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// The top-level modules (`pub mod NAME;` in `src/lib.rs`), in the order
/// in which the crate's doc first names each one in backquotes.
fn layers(lib: &str) -> Vec<String> {
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
        .collect();
    let doc = lib.split("*/").next().unwrap();
    let mut order = Vec::new();
    for quoted in doc.split('`').skip(1).step_by(2) {
        if modules.contains(&quoted) && !order.iter().any(|m| m == quoted) {
            order.push(quoted.to_string());
        }
    }
    for module in &modules {
        assert!(
            order.iter().any(|m| m == module),
            "src/lib.rs's doc does not name the module `{module}`"
        );
    }
    order
}

/// Every `crate::NAME` in the module's files, with one file that uses it.
fn imports(src: &Path, module: &str) -> BTreeMap<String, String> {
    let mut files = Vec::new();
    let single = src.join(format!("{module}.rs"));
    if single.exists() {
        files.push(single);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "no source of module `{module}`");
    let mut found = BTreeMap::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.entry(name).or_insert_with(|| file.display().to_string());
        }
    }
    found
}

#[test]
fn modules_import_only_the_layers_before_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let order = layers(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut wrong = Vec::new();
    for (position, module) in order.iter().enumerate() {
        for (name, file) in imports(&src, module) {
            match order.iter().position(|m| *m == name) {
                Some(p) if p >= position && name != *module => wrong
                    .push(format!("{file}: `{module}` uses `crate::{name}`")),
                _ => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "modules that use a module src/lib.rs lists after them \
         (the order is {order:?}):\n{}",
        wrong.join("\n")
    );
}
