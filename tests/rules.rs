//! The argument rules exist twice: in `nix/rules.nix`, checked at
//! evaluation time, and in the builder, for what only the build sees (and
//! for a builder run by hand). `tests/data/argument-rules.json` holds the
//! cases: each side must accept and refuse the same values, with the same
//! words. Every row is checked and every disagreement reported at once.
//! The image layout, which both sides read from `nix/layout.json`, gets
//! the same treatment: the Nix view of what an image always has must be
//! what the planner lays out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use portable_service::builder::attrs::Attrs;
use portable_service::builder::base::BaseImage;
use portable_service::builder::compression::{parse_block_size, Compression};
use portable_service::builder::config::{text_field, Config};
use portable_service::builder::format::ImageFormat;
use portable_service::builder::plan;
use portable_service::builder::tree::Node;
use portable_service::builder::units::{self, Unit};
use portable_service::nix::store_path::StorePath;
use portable_service::systemd::{image_name, unit_name};
use serde_json::{json, Value};

use crate::util::*;

const UNIT: &str = "/nix/store/5nfb4995bpj54nsc3abjm3z60f0nfwgf-demo.service";

struct Row {
    argument: String,
    value: Value,
    /// None when the value must be accepted.
    message: Option<String>,
}

fn rows() -> Vec<Row> {
    let path = repo().join("tests/data/argument-rules.json");
    let rows: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    rows.into_iter()
        .map(|row| {
            let accepted = row["accepted"].as_bool().unwrap();
            let message = row["message"].as_str().map(str::to_string);
            assert_eq!(accepted, message.is_none(), "{row}");
            Row {
                argument: row["argument"].as_str().unwrap().to_string(),
                value: row["value"].clone(),
                message,
            }
        })
        .collect()
}

/// Reports every row whose verdict is not the table's.
#[track_caller]
fn assert_agrees(side: &str, verdicts: Vec<(Row, Option<String>)>) {
    let wrong: Vec<String> = verdicts
        .iter()
        .filter(|(row, verdict)| row.message != *verdict)
        .map(|(row, verdict)| {
            format!(
                "{} = {}\n  table: {:?}\n  {side}: {:?}",
                row.argument, row.value, row.message, verdict
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} rows disagree with {side}:\n{}",
        wrong.len(),
        verdicts.len(),
        wrong.join("\n")
    );
}

fn err(result: anyhow::Result<impl Sized>) -> Option<String> {
    result.err().map(|e| format!("{e:#}"))
}

fn text(value: &Value) -> String {
    value.as_str().unwrap().to_string()
}

/// The settings of image `demo_1.0.raw` with one unit and `symlinks`, as
/// the builder reads them from `.attrs.json`; for an extension, the base
/// too.
fn config(
    symlinks: &Value,
    mount_points: &Value,
    extension: bool,
) -> (anyhow::Result<Config>, Option<BaseImage>) {
    let mut closure = vec![UNIT.to_string()];
    for symlink in symlinks.as_array().unwrap() {
        let object = symlink["object"].as_str().unwrap();
        if let Ok((path, _)) = StorePath::split_absolute_path(object) {
            closure.push(path.to_string());
        }
    }
    closure.sort();
    closure.dedup();
    let closure: Vec<Value> = closure
        .iter()
        .map(|p| json!({ "path": p, "narHash": "", "narSize": 1, "references": [] }))
        .collect();
    let base = json!({ "image": "/base/runtime_1.0.raw", "pname": "runtime" });
    let attrs = json!({
        "attrsVersion": 3,
        "pname": "demo",
        "version": "1.0",
        "units": [{ "name": "demo.service", "path": UNIT, "explicitName": false }],
        "symlinks": symlinks,
        "mountPoints": mount_points,
        "description": null,
        "homepage": null,
        "squashCompression": "xz",
        "squashBlockSize": "1M",
        "format": "squashfs",
        "hostSystem": "x86_64-linux",
        "mksquashfs": "/bin/mksquashfs",
        "closure": closure,
        "roots": [UNIT],
        "packageMeta": [],
        "outputs": { "out": "/nix/store/6nfb4995bpj54nsc3abjm3z60f0nfwgf-out" },
        "base": if extension { base } else { Value::Null },
    });
    let config =
        Config::from_attrs(serde_json::from_value::<Attrs>(attrs).unwrap());
    let base = extension.then(|| BaseImage {
        image_file_name: "runtime_1.0.raw".into(),
        sysext_level: "0".into(),
        paths: BTreeSet::new(),
        units: vec![],
        entries: BTreeMap::new(),
    });
    (config, base)
}

fn plan_of(
    symlinks: &Value,
    mount_points: &Value,
    extension: bool,
) -> anyhow::Result<portable_service::builder::tree::Tree> {
    let (config, base) = config(symlinks, mount_points, extension);
    let units = [Unit {
        name: "demo.service".into(),
        source: UNIT.into(),
        mount_points: vec![],
        warnings: vec![],
    }];
    plan::plan(&config?, &units, base.as_ref())
}

fn rust_verdict(row: &Row) -> Option<String> {
    let value = &row.value;
    match row.argument.as_str() {
        "pname" => err(image_name::check_pname(&text(value))),
        "version" => err(image_name::check_version(&text(value))),
        "pname and version" => err(image_name::file_name(
            &text(&value["pname"]),
            &text(&value["version"]),
        )),
        "unit name" => err(unit_name::check_portable(
            &text(&value["name"]),
            &text(&value["prefix"]),
        )),
        "units" => {
            let units: Vec<(String, PathBuf)> = value
                .as_array()
                .unwrap()
                .iter()
                .map(|u| (text(&u["name"]), PathBuf::from(text(&u["path"]))))
                .collect();
            err(units::check_unique(
                units.iter().map(|(n, p)| (n.as_str(), p)),
            ))
        }
        field @ ("description" | "homepage") => {
            err(text_field(field, Some(text(value))))
        }
        "squash-compression" => err(Compression::parse(&text(value))),
        "squash-block-size" => err(parse_block_size(&text(value))),
        "format" => err(ImageFormat::parse(&text(value), "x86_64-linux")),
        "symlinks" => err(plan_of(
            &value["symlinks"],
            &json!([]),
            value["extension"].as_bool().unwrap(),
        )),
        "mountPoints" => err(plan_of(
            &value["symlinks"],
            &value["mountPoints"],
            value["extension"].as_bool().unwrap(),
        )),
        other => panic!("the table names an unknown argument '{other}'"),
    }
}

#[test]
fn the_builder_follows_the_table() {
    let verdicts = rows()
        .into_iter()
        .map(|row| {
            let verdict = rust_verdict(&row);
            (row, verdict)
        })
        .collect();
    assert_agrees("the builder", verdicts);
}

/// Every row through `nix/rules.nix` in one evaluation: objects of
/// symlinks get the string context a real store object has.
#[test]
fn the_nix_function_follows_the_table() {
    let expr = format!(
        r#"
        let
          rules = import {repo}/nix/rules.nix;
          layout = import {repo}/nix/layout.nix;
          rows = builtins.fromJSON (builtins.readFile {repo}/tests/data/argument-rules.json);
          first = builtins.foldl' (found: m: if found != null then found else m) null;
          scaffold = v: layout.scaffold {{ inherit (v) extension; imageFileName = "demo_1.0.raw"; }};
          withContext = s:
            let m = builtins.match "(/nix/store/[0-9a-df-np-sv-z]{{32}}-[^/]+).*" s.object;
            in if m == null then s
               else s // {{ object = builtins.appendContext s.object {{ ${{builtins.head m}} = {{ path = true; }}; }}; }};
          verdict = row: let v = row.value; in
            if row.argument == "pname" then rules.pname v
            else if row.argument == "version" then rules.version v
            else if row.argument == "pname and version" then
              first [ (rules.pname v.pname) (rules.version v.version) (rules.fileName "${{v.pname}}_${{v.version}}.raw") ]
            else if row.argument == "unit name" then rules.unitName v.prefix v.name
            else if row.argument == "units" then rules.units v
            else if row.argument == "description" || row.argument == "homepage" then rules.text row.argument v
            else if row.argument == "squash-compression" then rules.compression v
            else if row.argument == "squash-block-size" then rules.blockSize v
            else if row.argument == "format" then rules.format v
            else if row.argument == "symlinks" then
              let links = map withContext v.symlinks; in
              first (map (rules.symlink v.extension) links
                ++ [ (rules.symlinkCollisions (scaffold v) links) ])
            else if row.argument == "mountPoints" then
              first (map (rules.mountPoint v.extension) v.mountPoints
                ++ [ (rules.mountPointCollisions (scaffold v) v.symlinks v.mountPoints) ])
            else throw "unknown argument ${{row.argument}}";
        in
        map verdict rows
        "#,
        repo = repo().display()
    );
    let output = run(Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E"])
        .arg(expr));
    assert!(output.status.success(), "{}", stderr(&output));
    let verdicts: Vec<Option<String>> =
        serde_json::from_slice(&output.stdout).unwrap();
    let rows = rows();
    assert_eq!(verdicts.len(), rows.len());
    assert_agrees("nix/rules.nix", rows.into_iter().zip(verdicts).collect());
}

/// What `nix/layout.nix` says every image has (which user symlinks may not
/// replace) is what the planner lays out, for both kinds of image.
#[test]
fn the_nix_layout_is_the_planners() {
    for extension in [false, true] {
        let expr = format!(
            "(import {}/nix/layout.nix).scaffold {{ extension = {extension}; \
             imageFileName = \"demo_1.0.raw\"; }}",
            repo().display()
        );
        let output = run(Command::new("nix-instantiate")
            .args(["--eval", "--strict", "--json", "-E"])
            .arg(expr));
        assert!(output.status.success(), "{}", stderr(&output));
        let scaffold: Value = serde_json::from_slice(&output.stdout).unwrap();
        let set = |key: &str| -> BTreeSet<String> {
            scaffold[key].as_array().unwrap().iter().map(text).collect()
        };

        let tree = plan_of(&json!([]), &json!([]), extension).unwrap();
        let (mut dirs, mut files, mut links) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for (path, node) in tree.iter() {
            let path = path.to_string();
            match node {
                Node::Dir { .. } => dirs.insert(path),
                Node::File { .. } if !path.contains("/systemd/system/") => {
                    files.insert(path)
                }
                Node::Symlink { .. } => links.insert(path),
                _ => false,
            };
        }
        assert_eq!(set("dirs"), dirs, "extension: {extension}");
        assert_eq!(set("files"), files, "extension: {extension}");
        assert_eq!(set("symlinks"), links, "extension: {extension}");
    }
}
