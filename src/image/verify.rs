/*!
`portable-service-builder verify IMAGE [--base BASE] [--report FILE]`:
proves from the image file alone that nothing was lost, and that
portabled will take it.

- Every store path the closure description records is in the image, and
  the NAR hash and size of what the image holds are the recorded ones; no
  store path is in the image that the description does not record.
- The closure is complete: every reference of every path is in the image,
  or, for an extension, left to its base (and, with `--base`, held by it).
- portabled's rules: the release data (os-release with `ID` and
  `PORTABLE_PREFIXES` holding the image's prefix; for an extension, its
  release file, matching the base's `ID` and `SYSEXT_LEVEL`), the files
  and directories it mounts over, at least one non-empty unit it attaches.
- Every `/nix/store/...` path a unit names (in `ExecStart=` or anywhere
  else) exists.

Each finding is one line, `PATH: what is wrong`; the exit status is 0
only when there is none.
*/

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::image::reader::EntryKind;
use crate::layout::layout;
use crate::nix::nar;
use crate::nix::store_path::{StorePath, NIX_STORE_DIR};
use crate::image::survey::{Kind, Survey};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub problem: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(
        &mut self,
        path: impl std::fmt::Display,
        problem: impl Into<String>,
    ) {
        self.0
            .push(Finding { path: path.to_string(), problem: problem.into() });
    }
}

pub fn verify(image: &Survey, base: Option<&Survey>) -> Vec<Finding> {
    let mut findings = Findings::default();
    store(&mut findings, image, base);
    match image.kind {
        Kind::PortableService => portable_service_rules(&mut findings, image),
        Kind::Extension => extension_rules(&mut findings, image, base),
    }
    units(&mut findings, image, base);
    findings.0
}

/// The store paths against the closure description.
fn store(findings: &mut Findings, image: &Survey, base: Option<&Survey>) {
    let manifest = match &image.manifest {
        Ok(manifest) => manifest,
        Err(why) => {
            findings.add(&layout().manifest, why.clone());
            return;
        }
    };
    let held = manifest.store_paths();
    let in_image: BTreeSet<&StorePath> = image.store_paths.iter().collect();
    let present: Vec<_> =
        manifest.paths.iter().filter(|i| in_image.contains(&i.path)).collect();
    for info in manifest.paths.iter().filter(|i| !in_image.contains(&i.path)) {
        findings.add(
            &info.path,
            "is recorded in the closure description, but not in the image",
        );
    }
    let image_paths: Vec<PathBuf> =
        present.iter().map(|i| image.image_path_of(&i.path)).collect();
    let digests = image.image.nar_digests(&image_paths);
    for (info, digest) in present.iter().zip(digests) {
        match (digest, nar::hash::parse_sha256(&info.nar_hash)) {
            (Err(err), _) => {
                findings.add(&info.path, format!("cannot be read: {err:#}"))
            }
            (_, Err(err)) => findings.add(
                &info.path,
                format!("has a bad recorded narHash: {err:#}"),
            ),
            (Ok(digest), Ok(recorded)) => {
                if digest.sha256 != recorded || digest.size != info.nar_size {
                    findings.add(
                        &info.path,
                        format!(
                            "the image holds {}, but the closure description \
                             records {} ({} bytes)",
                            digest, info.nar_hash, info.nar_size
                        ),
                    );
                }
            }
        }
    }
    for path in image.store_paths.iter().filter(|p| !held.contains(*p)) {
        findings
            .add(path, "is in the image, but not in its closure description");
    }

    let left_to_base: BTreeSet<&StorePath> =
        manifest.base.iter().flat_map(|b| &b.paths).collect();
    for info in &manifest.paths {
        for reference in &info.references {
            if !in_image.contains(reference)
                && !left_to_base.contains(reference)
            {
                findings.add(
                    &info.path,
                    format!(
                        "refers to {reference}, which the image does not hold"
                    ),
                );
            }
        }
    }
    let (Some(recorded), Some(base)) = (&manifest.base, base) else {
        return;
    };
    let base_held = match &base.manifest {
        Ok(d) => d.store_paths(),
        Err(why) => {
            findings.add(
                &base.file_name,
                format!("is no base this image can be checked against: {why}"),
            );
            return;
        }
    };
    for path in recorded.paths.iter().filter(|p| !base_held.contains(*p)) {
        findings.add(
            path,
            format!(
                "is left to the base, but {} does not hold it",
                base.file_name
            ),
        );
    }
}

fn portable_service_rules(findings: &mut Findings, image: &Survey) {
    let os_release = image.release_path.display();
    let Some(fields) = &image.release else {
        findings.add(
            os_release,
            "is missing, and portabled refuses an image without os-release",
        );
        return;
    };
    release_fields(findings, image, fields);
    for file in &layout().empty_files {
        match image.image.entry(Path::new(file)).map(|e| e.kind) {
            Ok(EntryKind::File { .. }) => {}
            _ => findings.add(
                file,
                "is not a file in the image; portabled's profiles bind-mount over it, \
                 and a read-only image cannot create it",
            ),
        }
    }
    for (dir, _) in layout().mount_points() {
        match image.image.entry(Path::new(dir)).map(|e| e.kind) {
            Ok(EntryKind::Directory) => {}
            _ => findings.add(
                dir,
                "is not a directory in the image; the service's mounts need it, \
                 and a read-only image cannot create it",
            ),
        }
    }
}

fn extension_rules(
    findings: &mut Findings,
    image: &Survey,
    base: Option<&Survey>,
) {
    let release_file = image.release_path.display();
    let Some(fields) = &image.release else {
        findings.add(
            release_file,
            "is missing: systemd matches an extension image to its base by this file, named \
             after the image file",
        );
        return;
    };
    release_fields(findings, image, fields);
    if let Some(scope) = fields.get("SYSEXT_SCOPE") {
        if !scope.split_whitespace().any(|s| s == "portable") {
            findings.add(
                &release_file,
                format!("has SYSEXT_SCOPE={scope}, without 'portable'"),
            );
        }
    }
    let usr_os_release = &layout().usr_os_release;
    if image.image.entry(Path::new(usr_os_release)).is_ok() {
        findings.add(
            usr_os_release,
            "is in an extension image, which systemd 254 and later refuse",
        );
    }
    let Some(base) = base else {
        return;
    };
    let Some(base_fields) = &base.release else {
        findings
            .add(&base.file_name, "has no os-release, so it cannot be a base");
        return;
    };
    for key in ["ID", "SYSEXT_LEVEL"] {
        let (ours, theirs) = (fields.get(key), base_fields.get(key));
        if ours != theirs {
            findings.add(
                &release_file,
                format!(
                    "has {key}={}, but the base {} has {key}={}: systemd refuses to attach it there",
                    ours.map_or("", String::as_str),
                    base.file_name,
                    theirs.map_or("", String::as_str)
                ),
            );
        }
    }
}

/// What portabled reads from both kinds of release data.
fn release_fields(
    findings: &mut Findings,
    image: &Survey,
    fields: &std::collections::BTreeMap<String, String>,
) {
    let release_file = image.release_path.display();
    if fields.get("ID").is_none_or(|id| id.is_empty()) {
        findings.add(
            &release_file,
            "has no ID=, which portabled requires (systemd 251 and later)",
        );
    }
    match fields.get("PORTABLE_PREFIXES") {
        None => findings.add(
            &release_file,
            "has no PORTABLE_PREFIXES=, so systemd-dissect does not call the image a portable service",
        ),
        Some(prefixes) if !prefixes.split_whitespace().any(|p| p == image.prefix) => findings.add(
            &release_file,
            format!(
                "has PORTABLE_PREFIXES={prefixes}, without the image's prefix '{}', so \
                 portabled refuses to attach it with that prefix",
                image.prefix
            ),
        ),
        Some(_) => {}
    }
}

/// Unit files: at least one that portabled attaches, and every store path
/// they name present.
fn units(findings: &mut Findings, image: &Survey, base: Option<&Survey>) {
    if image.attached_units().next().is_none() {
        let unit_dir = match image.kind {
            Kind::PortableService => &layout().unit_dir,
            Kind::Extension => &layout().extension_unit_dir,
        };
        findings.add(
            unit_dir,
            format!(
                "no unit file that portabled would attach with the prefix '{}' (non-empty, \
                 of type service, socket, target, timer or path, named after the prefix)",
                image.prefix
            ),
        );
    }
    let left_to_base: BTreeSet<StorePath> = match &image.manifest {
        Ok(d) => d.base.iter().flat_map(|b| b.paths.iter().cloned()).collect(),
        Err(_) => BTreeSet::new(),
    };
    let held: BTreeSet<&StorePath> = image.store_paths.iter().collect();
    for unit in image.attached_units() {
        let text = match image.image.read_file(&unit.path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => {
                findings.add(
                    unit.path.display(),
                    format!("cannot be read: {err:#}"),
                );
                continue;
            }
        };
        for named in store_paths_named(&text) {
            let Ok((store_path, sub_path)) =
                StorePath::split_absolute_path(&named)
            else {
                findings.add(
                    unit.path.display(),
                    format!("names {named}, which is not a store path"),
                );
                continue;
            };
            let holder = if held.contains(&store_path) {
                Some(image)
            } else if left_to_base.contains(&store_path) {
                match base {
                    Some(base) if base.store_paths.contains(&store_path) => {
                        Some(base)
                    }
                    Some(_) => None,
                    // Without the base at hand, its description is trusted.
                    None => continue,
                }
            } else {
                None
            };
            let Some(holder) = holder else {
                findings.add(
                    unit.path.display(),
                    format!("names {named}, which is not in the image"),
                );
                continue;
            };
            // A path with a specifier (%i) is only known when the unit runs.
            if sub_path.is_empty() || sub_path.contains('%') {
                continue;
            }
            let in_image = holder
                .image_path_of(&store_path)
                .join(sub_path.trim_start_matches('/'));
            if holder.image.entry(&in_image).is_err() {
                findings.add(
                    unit.path.display(),
                    format!("names {named}, which is not in the image"),
                );
            }
        }
    }
}

/// Every `/nix/store/...` path in `text`, up to the first character that a
/// path in a unit file would not hold.
fn store_paths_named(text: &str) -> BTreeSet<String> {
    let prefix = format!("{NIX_STORE_DIR}/");
    let mut paths = BTreeSet::new();
    for (start, _) in text.match_indices(&prefix) {
        let end = text[start..]
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || "+-._?=/@%~".contains(c))
            })
            .map_or(text.len(), |len| start + len);
        paths
            .insert(text[start..end].trim_end_matches(['.', '/']).to_string());
    }
    paths
}

pub fn run(
    image: &Path,
    base: Option<&Path>,
    report: Option<&Path>,
) -> Result<bool> {
    let survey = Survey::new(image)?;
    let base = base.map(Survey::new).transpose()?;
    let findings = verify(&survey, base.as_ref());
    let mut text = String::new();
    for finding in &findings {
        text.push_str(&format!("{finding}\n"));
    }
    if findings.is_empty() {
        text.push_str(&format!(
            "{}: verified {} store paths and {} units\n",
            survey.file_name,
            survey.store_paths.len(),
            survey.attached_units().count()
        ));
    }
    print!("{text}");
    if let Some(report) = report {
        fs::write(report, &text)
            .with_context(|| format!("writing {}", report.display()))?;
    }
    Ok(findings.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_store_paths_in_unit_text() {
        let text = "ExecStart=/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-busybox/bin/httpd \
                    -h /nix/store/5nfb4995bpj54nsc3abjm3z60f0nfwgf-www\n\
                    Environment=\"CONF=/nix/store/6nfb4995bpj54nsc3abjm3z60f0nfwgf-c/%i.conf\"\n\
                    ExecStop=/nix/store/7nfb4995bpj54nsc3abjm3z60f0nfwgf-x/bin/stop;\n";
        let paths: Vec<String> = store_paths_named(text).into_iter().collect();
        assert_eq!(
            paths,
            [
                "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-busybox/bin/httpd",
                "/nix/store/5nfb4995bpj54nsc3abjm3z60f0nfwgf-www",
                "/nix/store/6nfb4995bpj54nsc3abjm3z60f0nfwgf-c/%i.conf",
                "/nix/store/7nfb4995bpj54nsc3abjm3z60f0nfwgf-x/bin/stop",
            ]
        );
    }
}
