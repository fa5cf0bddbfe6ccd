/*!
`portable-service-builder verify IMAGE [--base BASE] [--report FILE]`:
proves from the image file alone that nothing was lost, that the image
holds exactly its closure as the kernel will read it, and that portabled
will take it.

The image's form (`squashfs::check::canonical`, after the reader's own
checks): only images that no two readers can take two ways pass (see
`squashfs::reader` and `squashfs::check` for what is mirrored of the
kernel). The rules (`rules`, on the image's facts alone):
- every store path the manifest records is in the image, once, and no
  store path is there that it does not record, nor anything else in the
  store directory; nothing in the image a NAR cannot see (owners, modes
  other than the store's, devices, setuid bits);
- a full image's store is where the layout puts it, and `/nix` is
  exactly the link to it, so that `/nix/store/...` in a unit leads to
  what was hashed; an extension holds no store path its base holds
  (systemd would lay the extension's copy over the base's);
- the closure is complete: every reference of every path is in the image,
  or, for an extension, left to its base (and, with `--base`, held by it);
- portabled's rules: the release data (os-release with `ID` and
  `PORTABLE_PREFIXES` holding the image's prefix; for an extension, its
  release file, matching the base's `ID` and `SYSEXT_LEVEL`), the files
  and directories it mounts over, at least one non-empty unit it attaches,
  and each such unit readable.

The contents (`contents`, reading the image): the NAR hash and size of
every store path are the recorded ones (hashing stops past the recorded
size), and every `/nix/store/...` path a unit names, and every symlink
outside the store points at, exists (each directory's listing read once,
however many paths it serves).

Each finding is one line, `PATH: what is wrong`, with control characters
escaped; the exit status is 0 only when there is none.
*/

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::ddi::signature::{Certificate, Openssl};
use crate::ddi::Ddi;
use crate::image::nar;
use crate::image::survey::{self, EntryType, Facts, ImageKind, Opened};
use crate::layout::layout;
use crate::nix::nar::hash::parse_sha256;
use crate::nix::store_path::{StorePath, NIX_STORE_DIR};
use crate::squashfs::{self, EntryKind, Image};
use crate::text;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub problem: String,
}

/// One line, control characters escaped (names come from the image).
impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", text::line(&self.path), text::line(&self.problem))
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

/// The rules and the contents, for an image and its base (when given);
/// for a disk image, its hash tree and partition table too, and with
/// `certificate` its signature.
pub fn verify(
    image: &Opened,
    base: Option<&Opened>,
    certificate: Option<&Certificate>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some(ddi) = &image.ddi {
        findings.extend(disk(ddi, &image.facts.image, certificate));
    } else if certificate.is_some() {
        findings.push(Finding {
            path: image.facts.image.clone(),
            problem: "is a squashfs image, which carries no signature: \
                      build it with format = \"ddi\" and sign it"
                .into(),
        });
    }
    findings.extend(squashfs(image, base));
    findings
}

/// What `verify` checks of the squashfs image (a disk image's is in its
/// root partition): its canonical form, the rules and the contents.
pub fn squashfs(image: &Opened, base: Option<&Opened>) -> Vec<Finding> {
    let mut findings: Vec<Finding> = squashfs::check::canonical(&image.image)
        .into_iter()
        .map(|p| Finding { path: p.at, problem: p.what })
        .collect();
    findings.extend(rules(&image.facts, base.map(|b| &b.facts)));
    findings.extend(contents(image, base));
    findings
}

/// A disk image's hash tree (every block of the squashfs and of the hash
/// partition), partition table and, with `certificate`, signature.
fn disk(
    ddi: &Ddi,
    name: &str,
    certificate: Option<&Certificate>,
) -> Vec<Finding> {
    let finding = |problem: String| Finding { path: name.into(), problem };
    let mut findings: Vec<Finding> = match ddi.verify() {
        Ok(found) => found.iter().map(|f| finding(f.to_string())).collect(),
        Err(err) => vec![finding(format!("cannot be verified: {err}"))],
    };
    if let Some(certificate) = certificate {
        match ddi.check_signature(&Openssl::default(), certificate) {
            Ok(found) => {
                findings.extend(found.iter().map(|f| finding(f.to_string())))
            }
            Err(err) => findings
                .push(finding(format!("cannot check the signature: {err}"))),
        }
    }
    findings
}

/// What the facts alone show.
pub fn rules(image: &Facts, base: Option<&Facts>) -> Vec<Finding> {
    let mut findings = Findings::default();
    store(&mut findings, image, base);
    for stray in &image.store_strays {
        findings.add(
            stray.display(),
            "is in the store directory, but is not a store path",
        );
    }
    for oddity in &image.oddities {
        findings.add(oddity.path.display(), oddity.what.clone());
    }
    match image.kind {
        ImageKind::PortableService => {
            portable_service_rules(&mut findings, image)
        }
        ImageKind::Extension => extension_rules(&mut findings, image, base),
    }
    for unit in image.attached_units() {
        if let Some(why) = &unit.unreadable {
            findings.add(
                unit.path.display(),
                format!("cannot be read, as portabled must: {why}"),
            );
        }
    }
    if image.attached_units().next().is_none() {
        let unit_dir = match image.kind {
            ImageKind::PortableService => &layout().unit_dir,
            ImageKind::Extension => &layout().extension_unit_dir,
        };
        findings.add(
            unit_dir,
            format!(
                "no unit file that portabled would attach with the prefix \
                 '{}' (non-empty, of type service, socket, target, timer or \
                 path, named after the prefix)",
                image.prefix
            ),
        );
    }
    findings.0
}

/// The store paths against the manifest.
fn store(findings: &mut Findings, image: &Facts, base: Option<&Facts>) {
    let manifest = match &image.manifest {
        Ok(manifest) => manifest,
        Err(why) => {
            findings.add(&layout().manifest, why.clone());
            return;
        }
    };
    let recorded = manifest.store_paths();
    if recorded.len() < manifest.paths.len() {
        let mut seen = BTreeSet::new();
        for info in &manifest.paths {
            if !seen.insert(&info.path) {
                findings.add(
                    &info.path,
                    "is recorded more than once in the manifest",
                );
            }
        }
    }
    for info in manifest.paths.iter().filter(|i| !image.holds(&i.path)) {
        findings.add(
            &info.path,
            "is recorded in the manifest, but not in the image",
        );
    }
    for path in
        image.store_paths.iter().filter(|p| !recorded.contains(&p.path))
    {
        findings.add(&path.path, "is in the image, but not in its manifest");
    }

    let left_to_base: BTreeSet<&StorePath> =
        manifest.base.iter().flat_map(|b| &b.paths).collect();
    for path in image.store_paths.iter().map(|p| &p.path) {
        let in_base = base.is_some_and(|b| b.holds(path));
        if left_to_base.contains(path) || in_base {
            findings.add(
                path,
                "is in this extension image and in its base: systemd would \
                 lay the extension's copy over the base's",
            );
        }
    }
    for info in &manifest.paths {
        for reference in &info.references {
            if !image.holds(reference) && !left_to_base.contains(reference) {
                findings.add(
                    &info.path,
                    format!(
                        "refers to {reference}, which the image does not hold"
                    ),
                );
            }
        }
    }
    let (Some(left), Some(base)) = (&manifest.base, base) else {
        return;
    };
    let base_holds = match &base.manifest {
        Ok(m) => m.store_paths(),
        Err(why) => {
            findings.add(
                &base.image,
                format!("is no base this image can be checked against: {why}"),
            );
            return;
        }
    };
    for path in left.paths.iter().filter(|p| !base_holds.contains(*p)) {
        findings.add(
            path,
            format!(
                "is left to the base, but {} does not hold it",
                base.image
            ),
        );
    }
}

fn portable_service_rules(findings: &mut Findings, image: &Facts) {
    let release_file = image.release_file.display();
    let fields = match &image.release {
        Ok(fields) => fields,
        Err(why) => {
            findings.add(
                &release_file,
                format!(
                    "{why}, and portabled refuses an image without \
                     os-release"
                ),
            );
            return;
        }
    };
    release_fields(findings, image, fields);
    let layout = layout();
    store_link(findings, image);
    for file in &layout.empty_files {
        if image.outside_store.get(file) != Some(&EntryType::File) {
            findings.add(
                file,
                "is not a file in the image; portabled's profiles bind-mount \
                 over it, and a read-only image cannot create it",
            );
        }
    }
    for (dir, _) in layout.mount_points() {
        if image.outside_store.get(dir) != Some(&EntryType::Directory) {
            findings.add(
                dir,
                "is not a directory in the image; the service's mounts need \
                 it, and a read-only image cannot create it",
            );
        }
    }
}

/// A full image's store is where the layout puts it, behind the link
/// units' `/nix/store/...` paths go through, and that link is exactly the
/// layout's: anything else would lead them to what was not hashed.
fn store_link(findings: &mut Findings, image: &Facts) {
    let layout = layout();
    let link = &layout.store_link;
    let target =
        image.symlinks.iter().find(|s| s.path == Path::new(&link.path));
    match (image.outside_store.get(&link.path), target) {
        (Some(EntryType::Symlink), Some(s))
            if s.target == Path::new(&link.target) => {}
        (Some(EntryType::Symlink), Some(s)) => findings.add(
            &link.path,
            format!(
                "links to {}, not {}: /nix/store/... would lead elsewhere \
                 than {}",
                text::path(&s.target),
                link.target,
                layout.store_dir
            ),
        ),
        (found, _) => findings.add(
            &link.path,
            format!(
                "is {}, not a symlink to {}: /nix/store/... would not lead \
                 to {}",
                match found {
                    None => "missing",
                    Some(EntryType::Directory) => "a directory",
                    Some(_) => "not a symlink",
                },
                link.target,
                layout.store_dir
            ),
        ),
    }
    if image.store_dir != Path::new(&layout.store_dir) || !image.has_store_dir
    {
        findings.add(
            &layout.store_dir,
            "is not a directory in the image; the layout keeps the store \
             there",
        );
    }
}

fn extension_rules(
    findings: &mut Findings,
    image: &Facts,
    base: Option<&Facts>,
) {
    let release_file = image.release_file.display();
    let fields = match &image.release {
        Ok(fields) => fields,
        Err(why) => {
            findings.add(
                &release_file,
                format!(
                    "{why}: systemd matches an extension image to its base \
                     by this file, named after the image file"
                ),
            );
            return;
        }
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
    if image.outside_store.contains_key(usr_os_release) {
        findings.add(
            usr_os_release,
            "is in an extension image, which systemd 254 and later refuse",
        );
    }
    let Some(base) = base else {
        return;
    };
    let Ok(base_fields) = &base.release else {
        findings.add(&base.image, "has no os-release, so it cannot be a base");
        return;
    };
    for key in ["ID", "SYSEXT_LEVEL"] {
        let (ours, theirs) = (fields.get(key), base_fields.get(key));
        if ours != theirs {
            findings.add(
                &release_file,
                format!(
                    "has {key}={}, but the base {} has {key}={}: systemd \
                     refuses to attach it there",
                    ours.map_or("", String::as_str),
                    base.image,
                    theirs.map_or("", String::as_str)
                ),
            );
        }
    }
}

/// What portabled reads from both kinds of release data.
fn release_fields(
    findings: &mut Findings,
    image: &Facts,
    fields: &BTreeMap<String, String>,
) {
    let release_file = image.release_file.display();
    if fields.get("ID").is_none_or(|id| id.is_empty()) {
        findings.add(
            &release_file,
            "has no ID=, which portabled requires (systemd 251 and later)",
        );
    }
    match fields.get("PORTABLE_PREFIXES") {
        None => findings.add(
            &release_file,
            "has no PORTABLE_PREFIXES=, so systemd-dissect does not call the \
             image a portable service",
        ),
        Some(prefixes)
            if !prefixes.split_whitespace().any(|p| p == image.prefix) =>
        {
            findings.add(
                &release_file,
                format!(
                    "has PORTABLE_PREFIXES={prefixes}, without the image's \
                     prefix '{}', so portabled refuses to attach it with \
                     that prefix",
                    image.prefix
                ),
            )
        }
        Some(_) => {}
    }
}

/// What only reading the image shows: the store paths' NAR digests, and
/// the paths the units name and the symlinks point at.
pub fn contents(image: &Opened, base: Option<&Opened>) -> Vec<Finding> {
    let mut findings = Findings::default();
    nar_digests(&mut findings, image);
    named_paths(&mut findings, image, base);
    findings.0
}

/// Each store path recorded and held is hashed once, each no further
/// than its recorded NAR size.
fn nar_digests(findings: &mut Findings, image: &Opened) {
    let Ok(manifest) = &image.facts.manifest else {
        return;
    };
    let mut seen = BTreeSet::new();
    let present: Vec<_> = manifest
        .paths
        .iter()
        .filter(|i| image.facts.holds(&i.path) && seen.insert(&i.path))
        .collect();
    let paths: Vec<(PathBuf, u64)> = present
        .iter()
        .map(|i| (image.facts.image_path_of(&i.path), i.nar_size))
        .collect();
    let digests = nar::nar_digests(&image.image, &paths);
    for (info, digest) in present.iter().zip(digests) {
        match (digest, parse_sha256(&info.nar_hash)) {
            (Err(nar::Error::TooLong { limit }), _) => findings.add(
                &info.path,
                format!(
                    "the image holds more than the {limit} bytes of NAR the \
                     manifest records"
                ),
            ),
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
                            "the image holds {}, but the manifest \
                             records {} ({} bytes)",
                            digest, info.nar_hash, info.nar_size
                        ),
                    );
                }
            }
        }
    }
}

/// Every store path a unit portabled attaches names is in the image, or,
/// for an extension, in its base, and so is the store path every symlink
/// outside the store points into (what it points at may be missing, as
/// the `symlinks` argument allows).
fn named_paths(
    findings: &mut Findings,
    image: &Opened,
    base: Option<&Opened>,
) {
    let left_to_base: BTreeSet<&StorePath> =
        image.facts.base.iter().flat_map(|b| b.paths.iter()).collect();
    // (who names it, the path named, whether the whole path must exist)
    let mut named: Vec<(String, &String, bool)> = Vec::new();
    for unit in image.facts.attached_units() {
        let at = unit.path.display().to_string();
        named.extend(unit.names.iter().map(|n| (at.clone(), n, true)));
    }
    let targets: Vec<(String, String)> = image
        .facts
        .symlinks
        .iter()
        .filter(|s| s.target.starts_with(NIX_STORE_DIR))
        .map(|s| {
            let target = s.target.to_string_lossy().into_owned();
            (s.path.display().to_string(), target)
        })
        .collect();
    named.extend(targets.iter().map(|(at, t)| (at.clone(), t, false)));

    // (who names it, the path named, where its holder keeps it)
    let mut lookups: [Vec<(String, &String, PathBuf)>; 2] = Default::default();
    for (at, named, whole) in named {
        let Ok((store_path, sub_path)) = StorePath::split_absolute_path(named)
        else {
            findings
                .add(&at, format!("names {named}, which is not a store path"));
            continue;
        };
        let holder = if image.facts.holds(&store_path) {
            Some((0, image))
        } else if left_to_base.contains(&store_path) {
            match base {
                Some(base) if base.facts.holds(&store_path) => Some((1, base)),
                Some(_) => None,
                // Without the base at hand, its manifest is trusted.
                None => continue,
            }
        } else {
            None
        };
        let Some((which, holder)) = holder else {
            findings
                .add(&at, format!("names {named}, which is not in the image"));
            continue;
        };
        // A path with a specifier (%i) is only known when the unit runs.
        if !whole || sub_path.is_empty() || sub_path.contains('%') {
            continue;
        }
        let in_image = holder
            .facts
            .image_path_of(&store_path)
            .join(sub_path.trim_start_matches('/'));
        lookups[which].push((at, named, in_image));
    }
    for (lookups, holder) in lookups.iter().zip([Some(image), base]) {
        let Some(holder) = holder else { continue };
        let wanted: BTreeSet<&Path> =
            lookups.iter().map(|(_, _, p)| p.as_path()).collect();
        let found = match existing(&holder.image, &wanted) {
            Ok(found) => found,
            Err(err) => {
                findings.add(&holder.facts.image, format!("{err}"));
                continue;
            }
        };
        for (at, named, in_image) in lookups {
            if !found.contains(in_image.as_path()) {
                findings.add(
                    at,
                    format!("names {named}, which is not in the image"),
                );
            }
        }
    }
}

/// Which of `paths` are in `image` (as entries of any kind, symlinks not
/// followed). Each directory's listing is read once, matched against the
/// sorted names sought in it, however many paths lead through it.
fn existing<'a>(
    image: &Image,
    paths: &BTreeSet<&'a Path>,
) -> squashfs::Result<BTreeSet<&'a Path>> {
    #[derive(Default)]
    struct Wanted<'a> {
        /// The path that ends here, if one does.
        ends: Option<&'a Path>,
        below: BTreeMap<OsString, Wanted<'a>>,
    }
    let mut root = Wanted::default();
    for path in paths {
        let mut node = &mut root;
        for part in path.iter().skip(1) {
            node = node.below.entry(part.to_os_string()).or_default();
        }
        node.ends = Some(path);
    }
    let mut found = BTreeSet::new();
    let mut pending = vec![(image.root()?, root)];
    while let Some((dir, wanted)) = pending.pop() {
        if wanted.below.is_empty() {
            continue;
        }
        let mut wanted = wanted.below.into_iter().peekable();
        for child in image.children(&dir)? {
            let child = child?;
            let name = child.path.file_name().unwrap_or_default();
            while wanted
                .peek()
                .is_some_and(|(w, _)| w.as_bytes() < name.as_bytes())
            {
                wanted.next();
            }
            let Some((_, node)) = wanted.next_if(|(w, _)| w == name) else {
                if wanted.peek().is_none() {
                    break;
                }
                continue;
            };
            found.extend(node.ends);
            if child.kind() == EntryKind::Directory {
                pending.push((child, node));
            }
        }
    }
    Ok(found)
}

pub fn run(
    image: &Path,
    base: Option<&Path>,
    certificate: Option<&Path>,
    report: Option<&Path>,
) -> Result<bool> {
    // A file that is there but cannot be read as an image is a finding,
    // as damage inside it would be; a certificate that cannot be read is
    // an error, as the image is not at fault.
    fs::metadata(image)
        .with_context(|| format!("reading {}", image.display()))?;
    let certificate = certificate.map(Certificate::read).transpose()?;
    let base = base.map(survey::open).transpose()?;
    let (findings, verified) = match survey::open(image) {
        Ok(opened) => {
            let findings =
                verify(&opened, base.as_ref(), certificate.as_ref());
            let facts = &opened.facts;
            let verified = format!(
                "{}: verified {} and {}\n",
                facts.image,
                plural(facts.store_paths.len(), "store path"),
                plural(facts.attached_units().count(), "unit"),
            );
            (findings, verified)
        }
        Err(err) => {
            let path = image.file_name().unwrap_or_default();
            let finding = Finding {
                path: path.to_string_lossy().into_owned(),
                problem: format!("cannot be read as an image: {err:#}"),
            };
            (vec![finding], String::new())
        }
    };
    let mut text = String::new();
    for finding in &findings {
        text.push_str(&format!("{finding}\n"));
    }
    if findings.is_empty() {
        text.push_str(&verified);
    }
    print!("{text}");
    if let Some(report) = report {
        fs::write(report, &text)
            .with_context(|| format!("writing {}", report.display()))?;
    }
    Ok(findings.is_empty())
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::survey::{fixture, StorePathFacts, UnitFile};

    const RELEASE: &str = "ID=nixos\nPORTABLE_PREFIXES=demo\n";
    const A: &str = "/nix/store/11111111111111111111111111111111-a";
    const B: &str = "/nix/store/21111111111111111111111111111111-b";

    fn manifest(references_of_a: &[&str]) -> Vec<u8> {
        let refs: Vec<String> =
            references_of_a.iter().map(|r| format!("\"{r}\"")).collect();
        format!(
            r#"{{"closureVersion":1,"paths":[{{"path":"{A}","narHash":"sha256:0","narSize":1,"references":[{}]}}]}}"#,
            refs.join(",")
        )
        .into_bytes()
    }

    fn lines(findings: Vec<Finding>) -> Vec<String> {
        findings.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_good_image_has_no_finding() {
        let facts = fixture::facts(RELEASE, &manifest(&[A]));
        assert_eq!(lines(rules(&facts, None)), Vec::<String>::new());
    }

    #[test]
    fn release_data_portabled_refuses() {
        let facts = fixture::facts("PORTABLE_PREFIXES=demo\n", &manifest(&[]));
        assert_eq!(
            lines(rules(&facts, None)),
            ["/etc/os-release: has no ID=, which portabled requires \
              (systemd 251 and later)"]
        );
        let facts = fixture::facts(
            "ID=nixos\nPORTABLE_PREFIXES=other\n",
            &manifest(&[]),
        );
        assert_eq!(
            lines(rules(&facts, None)),
            ["/etc/os-release: has PORTABLE_PREFIXES=other, without the \
              image's prefix 'demo', so portabled refuses to attach it with \
              that prefix"]
        );
        let mut facts = fixture::facts(RELEASE, &manifest(&[]));
        facts.release = Err("/etc/os-release is missing".into());
        assert_eq!(
            lines(rules(&facts, None)),
            ["/etc/os-release: /etc/os-release is missing, and portabled \
              refuses an image without os-release"]
        );
    }

    #[test]
    fn missing_mount_points_and_units() {
        let mut facts = fixture::facts(RELEASE, &manifest(&[]));
        facts.outside_store.remove("/var/tmp");
        facts
            .outside_store
            .insert("/etc/machine-id".into(), EntryType::Directory);
        facts.units[0].ignored_because = Some("empty".into());
        assert_eq!(
            lines(rules(&facts, None)),
            [
                "/etc/machine-id: is not a file in the image; portabled's \
                 profiles bind-mount over it, and a read-only image cannot \
                 create it",
                "/var/tmp: is not a directory in the image; the service's \
                 mounts need it, and a read-only image cannot create it",
                "/etc/systemd/system: no unit file that portabled would \
                 attach with the prefix 'demo' (non-empty, of type service, \
                 socket, target, timer or path, named after the prefix)",
            ]
        );
    }

    #[test]
    fn store_paths_against_the_manifest() {
        let mut facts = fixture::facts(RELEASE, &manifest(&[B]));
        facts.store_paths = vec![StorePathFacts {
            path: StorePath::from_absolute_path(B).unwrap(),
            nar_size: None,
        }];
        assert_eq!(
            lines(rules(&facts, None)),
            [
                format!(
                    "{A}: is recorded in the manifest, but not in the image"
                ),
                format!("{B}: is in the image, but not in its manifest"),
            ]
        );
        let facts = fixture::facts(RELEASE, &manifest(&[B]));
        assert_eq!(
            lines(rules(&facts, None)),
            [format!("{A}: refers to {B}, which the image does not hold")]
        );
    }

    #[test]
    fn an_extension_against_its_base() {
        let extension_manifest = format!(
            r#"{{"closureVersion":1,"paths":[{{"path":"{A}","narHash":"sha256:0","narSize":1,"references":[{B:?}]}}],"base":{{"imageFileName":"base_1.raw","sysextLevel":"x","paths":[{B:?}]}}}}"#
        );
        let mut extension = fixture::facts(
            "ID=nixos\nPORTABLE_PREFIXES=demo\nSYSEXT_LEVEL=x\nSYSEXT_SCOPE=system\n",
            extension_manifest.as_bytes(),
        );
        extension.kind = ImageKind::Extension;
        extension.release_file =
            PathBuf::from(layout().extension_release("demo_1.0.raw"));
        extension.outside_store = BTreeMap::from([(
            layout().usr_os_release.clone(),
            EntryType::File,
        )]);
        extension.units = vec![UnitFile {
            path: PathBuf::from(&layout().extension_unit_dir)
                .join("demo.service"),
            ..extension.units[0].clone()
        }];
        let mut base =
            fixture::facts("ID=nixos\nSYSEXT_LEVEL=y\n", &manifest(&[]));
        base.image = "base_1.raw".into();
        let release = layout().extension_release("demo_1.0.raw");
        assert_eq!(
            lines(rules(&extension, Some(&base))),
            [
                format!(
                    "{A}: is in this extension image and in its base: systemd \
                     would lay the extension's copy over the base's"
                ),
                format!("{B}: is left to the base, but base_1.raw does not hold it"),
                format!("{release}: has SYSEXT_SCOPE=system, without 'portable'"),
                "/usr/lib/os-release: is in an extension image, which systemd \
                 254 and later refuse"
                    .to_string(),
                format!(
                    "{release}: has SYSEXT_LEVEL=x, but the base base_1.raw \
                     has SYSEXT_LEVEL=y: systemd refuses to attach it there"
                ),
            ]
        );
    }
}
