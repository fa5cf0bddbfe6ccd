/*!
What a service's settings need from its read-only root image; the module
doc of `unit_file` says what and why.
*/

use std::fmt;

use super::error::{Error, ErrorKind, Problem};
use super::parse::{Assignment, UnitFile};
use super::specifiers::{self, SpecifierError, UnitName, MARKER};
use super::words::{self, Cursor, Flags, WHITESPACE};
use crate::systemd::unit_name;

/// What the image must hold at `path` for a unit's setting to work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPoint {
    /// Absolute and normalized, as the unit sees it inside the image.
    pub path: String,
    pub kind: Kind,
    /// What the setting does at the path, which decides where it may be.
    pub mounts: Mounts,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// systemd mounts a directory (or a tmpfs) on it, or changes into it:
    /// an empty directory does.
    Directory,
    /// A bind mount's destination: its type must be the type of the host's
    /// source, which is only known on the host. An empty directory does
    /// for a directory; a file needs an empty file.
    BindTarget,
    /// It must exist, of any type; systemd only changes its mount flags or
    /// hides it. An empty directory does.
    Existing,
    /// A symlink with this relative target, which systemd would otherwise
    /// try to create (`NAME:LINK` of the directory settings).
    Symlink { target: String },
}

/// Where a requirement comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub unit: String,
    pub setting: &'static str,
    /// The element of the setting's value, as written.
    pub value: String,
    pub line: usize,
}

/// `unit 'U', line N: Setting=value`, as messages name a requirement.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Origin { unit, setting, value, line } = self;
        write!(f, "unit '{unit}', line {line}: {setting}={value}")
    }
}

/// A setting that works in systemd 257 but not, or not the same way, in
/// older versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub origin: Origin,
    pub kind: WarningKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// Before 257 (which added `NAME:LINK:ro`), the tuple splits
    /// differently: systemd 252 joins runs of `:` and reads two fields, so
    /// `NAME::ro` is a symlink called `ro`, which it fails to create in a
    /// read-only image (measured).
    SplitBefore257 { name: String, link: Option<String> },
    /// Before 257, `:ro` is ignored and the directory is writable.
    ReadOnlyIgnoredBefore257,
    /// A specifier that systemd 252 does not know (`%D`): it ignores the
    /// whole value.
    SpecifierAddedIn257(char),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.origin)?;
        match &self.kind {
            WarningKind::SplitBefore257 { name, link } => match link {
                Some(link) => write!(
                    f,
                    "systemd before 257 reads this as '{name}' with a symlink \
                     '{link}' to it, which it cannot create in the read-only \
                     image, so the service fails there"
                ),
                None => write!(
                    f,
                    "systemd before 257 reads this as '{name}' without a \
                     symlink"
                ),
            },
            WarningKind::ReadOnlyIgnoredBefore257 => write!(
                f,
                "systemd before 257 ignores ':ro' and mounts the directory \
                 writable"
            ),
            WarningKind::SpecifierAddedIn257(c) => write!(
                f,
                "systemd before 257 does not know '%{c}' and ignores this \
                 value"
            ),
        }
    }
}

/// The paths a unit needs in the image, and what works differently on
/// older systemd.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirements {
    pub mount_points: Vec<MountPoint>,
    pub warnings: Vec<Warning>,
}

/// The directory settings, in systemd's `ExecDirectoryType` order, with
/// the root each one's names are relative to.
const DIRECTORY_SETTINGS: [(&str, &str); 5] = [
    ("RuntimeDirectory", "/run"),
    ("StateDirectory", "/var/lib"),
    ("CacheDirectory", "/var/cache"),
    ("LogsDirectory", "/var/log"),
    ("ConfigurationDirectory", "/etc"),
];

const BIND_SETTINGS: [&str; 2] = ["BindPaths", "BindReadOnlyPaths"];

/// The settings of `config_parse_namespace_path_strv()`.
const ACCESS_SETTINGS: [&str; 5] = [
    "ReadWritePaths",
    "ReadOnlyPaths",
    "InaccessiblePaths",
    "ExecPaths",
    "NoExecPaths",
];

const TMPFS_SETTING: &str = "TemporaryFileSystem";
const WORKING_DIRECTORY: &str = "WorkingDirectory";

/// What the image must provide for `unit`'s service settings.
pub fn requirements(unit: &UnitFile) -> Result<Requirements, Error> {
    if unit_name::unit_type(&unit.name) != Some("service") {
        return Ok(Requirements::default());
    }
    let mut state = State::new(&unit.name);
    let service = unit.assignments.iter().filter(|a| a.section == "Service");
    for assignment in service {
        state.apply(assignment).map_err(|(problem, value)| Error {
            unit: unit.name.clone(),
            kind: ErrorKind::Value {
                setting: setting_name(&assignment.key),
                value,
                line: assignment.line,
                problem: Box::new(problem),
            },
        })?;
    }
    state.finish()
}

fn value_error(origin: &Origin, problem: Problem) -> Error {
    Error {
        unit: origin.unit.clone(),
        kind: ErrorKind::Value {
            setting: origin.setting,
            value: origin.value.clone(),
            line: origin.line,
            problem: Box::new(problem),
        },
    }
}

fn setting_name(key: &str) -> &'static str {
    DIRECTORY_SETTINGS
        .iter()
        .map(|(name, _)| *name)
        .chain(BIND_SETTINGS)
        .chain(ACCESS_SETTINGS)
        .chain([TMPFS_SETTING, WORKING_DIRECTORY])
        .find(|name| *name == key)
        .unwrap_or("?")
}

/// An entry of a directory setting.
struct DirectoryItem {
    /// Relative, normalized; may hold specifier markers.
    path: String,
    links: Vec<String>,
    read_only: bool,
    origin: Origin,
}

struct Bind {
    destination: String,
    origin: Origin,
}

struct PathEntry {
    path: String,
    origin: Origin,
}

/// The settings' lists as systemd builds them while loading the unit.
struct State {
    unit: UnitName,
    directories: [Vec<DirectoryItem>; 5],
    binds: Vec<Bind>,
    access: [Vec<PathEntry>; 5],
    tmpfs: Vec<PathEntry>,
    working_directory: Option<PathEntry>,
    warnings: Vec<Warning>,
}

/// A problem with one element of a value, and that element.
type ValueError = (Problem, String);

impl State {
    fn new(name: &str) -> State {
        State {
            unit: UnitName::new(name),
            directories: Default::default(),
            binds: Vec::new(),
            access: Default::default(),
            tmpfs: Vec::new(),
            working_directory: None,
            warnings: Vec::new(),
        }
    }

    fn origin(
        &self,
        setting: &'static str,
        value: &str,
        line: usize,
    ) -> Origin {
        Origin {
            unit: self.unit.id().to_owned(),
            setting,
            value: value.to_owned(),
            line,
        }
    }

    fn apply(&mut self, a: &Assignment) -> Result<(), ValueError> {
        let key = a.key.as_str();
        if let Some(index) =
            DIRECTORY_SETTINGS.iter().position(|(n, _)| *n == key)
        {
            return self.directory(index, a);
        }
        if BIND_SETTINGS.contains(&key) {
            return self.bind(a);
        }
        if let Some(index) = ACCESS_SETTINGS.iter().position(|n| *n == key) {
            return self.access(index, a);
        }
        match key {
            TMPFS_SETTING => self.tmpfs(a),
            WORKING_DIRECTORY => self.working_directory(a),
            _ => Ok(()),
        }
    }

    /// `config_parse_exec_directories()`.
    fn directory(
        &mut self,
        index: usize,
        a: &Assignment,
    ) -> Result<(), ValueError> {
        let (setting, _) = DIRECTORY_SETTINGS[index];
        if a.value.is_empty() {
            self.directories[index].clear();
            return Ok(());
        }
        let outer =
            Flags { unquote: true, retain_escape: true, ..Flags::default() };
        let tuples = words::split(&a.value, WHITESPACE, outer)
            .map_err(|e| (Problem::Syntax(e), a.value.clone()))?;
        for tuple in tuples {
            let fail = |p: Problem| (p, tuple.clone());
            let inner = Flags {
                cunescape: true,
                unescape_separators: true,
                ..Flags::default()
            };
            let v257 = words::many(
                &tuple,
                3,
                b":",
                Flags { dont_coalesce: true, ..inner },
            )
            .map_err(|e| fail(Problem::Syntax(e)))?;
            let v252 = words::many(&tuple, 2, b":", inner)
                .map_err(|e| fail(Problem::Syntax(e)))?;
            let field = |v: &[String], i: usize| {
                v.get(i).filter(|s| !s.is_empty()).cloned()
            };
            let name = v257.first().cloned().unwrap_or_default();
            let link = field(&v257, 1);
            let flag = field(&v257, 2);
            // What systemd 252 makes of it: runs of ':' joined, two fields.
            let old = (field(&v252, 0), field(&v252, 1));
            let split_differently = old != (field(&v257, 0), link.clone());

            let path = self.relative(&name).map_err(fail)?;
            if path == "private" || path.starts_with("private/") {
                return Err(fail(Problem::Private));
            }
            if link.is_some() && setting == "ConfigurationDirectory" {
                return Err(fail(Problem::ConfigurationLink));
            }
            let link =
                link.map(|l| self.relative(&l)).transpose().map_err(fail)?;
            let read_only = match flag.as_deref() {
                None => false,
                Some("ro") => true,
                Some(other) => {
                    return Err(fail(Problem::BadFlags(other.to_owned())))
                }
            };

            let origin = self.origin(setting, &tuple, a.line);
            if split_differently {
                let (name, link) = old;
                let name = name.unwrap_or_default();
                let kind = WarningKind::SplitBefore257 { name, link };
                self.warn(&origin, kind);
            } else if read_only {
                self.warn(&origin, WarningKind::ReadOnlyIgnoredBefore257);
            }
            self.note_specifiers(&origin, &tuple);

            // exec_directory_add(): the same path again adds its link and
            // flags to the first entry.
            let items = &mut self.directories[index];
            if let Some(item) = items.iter_mut().find(|i| i.path == path) {
                item.links.extend(link);
                item.read_only |= read_only;
            } else {
                items.push(DirectoryItem {
                    path,
                    links: link.into_iter().collect(),
                    read_only,
                    origin,
                });
            }
        }
        Ok(())
    }

    /// `config_parse_bind_paths()`.
    fn bind(&mut self, a: &Assignment) -> Result<(), ValueError> {
        if a.value.is_empty() {
            self.binds.clear();
            return Ok(());
        }
        let setting = setting_name(&a.key);
        let separators = b": \t\n\r";
        let flags =
            Flags { unquote: true, dont_coalesce: true, ..Flags::default() };
        let mut cursor = Cursor::new(&a.value);
        loop {
            let start = cursor.offset();
            let syntax = |e| (Problem::Syntax(e), a.value.clone());
            let Some(source) =
                cursor.next_word(separators, flags).map_err(syntax)?
            else {
                break;
            };
            // Two separators in a row: systemd warns that the empty path
            // is not absolute and goes on with the next word.
            if source.is_empty() {
                continue;
            }
            let source =
                self.resolve(&source).map_err(|p| (p, source.clone()))?;
            let source =
                source.strip_prefix('-').unwrap_or(&source).to_owned();
            let source =
                absolute(&source).map_err(|p| (p, display(&source)))?;
            let destination = if cursor.after(b':') {
                let destination =
                    cursor.next_word(separators, flags).map_err(syntax)?;
                let destination =
                    destination.filter(|d| !d.is_empty()).ok_or((
                        Problem::MissingDestination,
                        raw(&a.value, start, cursor.offset()),
                    ))?;
                let destination = self
                    .resolve(&destination)
                    .map_err(|p| (p, destination.clone()))?;
                let destination = absolute(&destination)
                    .map_err(|p| (p, display(&destination)))?;
                if cursor.after(b':') {
                    let options = cursor.next_word(
                        WHITESPACE,
                        Flags { unquote: true, ..Flags::default() },
                    );
                    let options = options.map_err(syntax)?.unwrap_or_default();
                    if !matches!(options.as_str(), "" | "rbind" | "norbind") {
                        return Err((
                            Problem::BadBindOption(options),
                            raw(&a.value, start, cursor.offset()),
                        ));
                    }
                }
                destination
            } else {
                source
            };
            let value = raw(&a.value, start, cursor.offset());
            let origin = self.origin(setting, &value, a.line);
            self.note_specifiers(&origin, &value);
            self.binds.push(Bind { destination, origin });
        }
        Ok(())
    }

    /// `config_parse_namespace_path_strv()`.
    fn access(
        &mut self,
        index: usize,
        a: &Assignment,
    ) -> Result<(), ValueError> {
        if a.value.is_empty() {
            self.access[index].clear();
            return Ok(());
        }
        let setting = ACCESS_SETTINGS[index];
        let flags = Flags { unquote: true, ..Flags::default() };
        let paths = words::split(&a.value, WHITESPACE, flags)
            .map_err(|e| (Problem::Syntax(e), a.value.clone()))?;
        for word in paths {
            let fail = |p: Problem| (p, word.clone());
            let rest = word.strip_prefix('-');
            let optional = rest.is_some();
            let rest = rest.unwrap_or(&word);
            let rest = rest.strip_prefix('+').unwrap_or(rest);
            let path =
                absolute(&self.resolve(rest).map_err(fail)?).map_err(fail)?;
            let origin = self.origin(setting, &word, a.line);
            self.note_specifiers(&origin, &word);
            // A missing optional path is skipped (`m->ignore`).
            if !optional {
                self.access[index].push(PathEntry { path, origin });
            }
        }
        Ok(())
    }

    /// `config_parse_temporary_filesystems()`.
    fn tmpfs(&mut self, a: &Assignment) -> Result<(), ValueError> {
        if a.value.is_empty() {
            self.tmpfs.clear();
            return Ok(());
        }
        let flags = Flags { unquote: true, ..Flags::default() };
        let items = words::split(&a.value, WHITESPACE, flags)
            .map_err(|e| (Problem::Syntax(e), a.value.clone()))?;
        for word in items {
            let fail = |p: Problem| (p, word.clone());
            let split = Flags { dont_coalesce: true, ..Flags::default() };
            let path = Cursor::new(&word)
                .next_word(b":", split)
                .map_err(|e| fail(Problem::Syntax(e)))?
                .unwrap_or_default();
            let path =
                absolute(&self.resolve(&path).map_err(fail)?).map_err(fail)?;
            let origin = self.origin(TMPFS_SETTING, &word, a.line);
            self.note_specifiers(&origin, &word);
            self.tmpfs.push(PathEntry { path, origin });
        }
        Ok(())
    }

    /// `config_parse_working_directory()`: the value is not unquoted, and
    /// the last assignment wins.
    fn working_directory(&mut self, a: &Assignment) -> Result<(), ValueError> {
        let value = a.value.as_str();
        let (optional, rest) = match value.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        if value.is_empty() || value == "-~" {
            self.working_directory = None;
            return Ok(());
        }
        // The user's home: systemd 257 refuses it with DynamicUser=, which
        // the portable profiles set, 252 fails to change into it, and for
        // another user it is a path of the host's user database (measured).
        if rest == "~" {
            return Err((Problem::HomeDirectory, value.to_owned()));
        }
        let fail = |p: Problem| (p, value.to_owned());
        let path =
            absolute(&self.resolve(rest).map_err(fail)?).map_err(fail)?;
        let origin = self.origin(WORKING_DIRECTORY, value, a.line);
        self.note_specifiers(&origin, value);
        self.working_directory =
            (!optional).then_some(PathEntry { path, origin });
        Ok(())
    }

    fn resolve(&self, text: &str) -> Result<String, Problem> {
        specifiers::resolve(text, &self.unit).map_err(|e| match e {
            SpecifierError::Unknown(c) => Problem::UnknownSpecifier(c),
            SpecifierError::BadName(c) => Problem::BadNameSpecifier(c),
        })
    }

    fn relative(&self, name: &str) -> Result<String, Problem> {
        let path = self.resolve(name)?;
        if path.starts_with('/') {
            return Err(Problem::NotRelative(display(&path)));
        }
        normalize(&path)
    }

    fn warn(&mut self, origin: &Origin, kind: WarningKind) {
        self.warnings.push(Warning { origin: origin.clone(), kind });
    }

    fn note_specifiers(&mut self, origin: &Origin, text: &str) {
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some(s) if specifiers::added_in_257(s) => {
                        self.warn(origin, WarningKind::SpecifierAddedIn257(s));
                    }
                    _ => {}
                }
            }
        }
    }

    fn finish(self) -> Result<Requirements, Error> {
        let mut out = Vec::new();
        for (index, (_, root)) in DIRECTORY_SETTINGS.iter().enumerate() {
            let items = &self.directories[index];
            for item in items {
                // exec_directory_sort(): below another entry, systemd only
                // creates it (EXEC_DIRECTORY_ONLY_CREATE) and mounts it only
                // to make it read-only.
                let parent = items
                    .iter()
                    .any(|other| is_strictly_below(&item.path, &other.path));
                let path = format!("{root}/{}", item.path);
                if !parent || item.read_only {
                    let kind = Kind::Directory;
                    let fix = specifier_free_parent(&item.path)
                        .map(|f| display(&format!("{f} {}", item.path)));
                    place(
                        &path,
                        kind,
                        &item.origin,
                        Mounts::Yes,
                        fix,
                        &mut out,
                    )?;
                }
                for link in &item.links {
                    let link_path = format!("{root}/{link}");
                    let target = relative_link(link, &item.path);
                    let kind = Kind::Symlink { target: target.clone() };
                    if target.contains(MARKER) {
                        let specifier = first_marker(&target).unwrap_or('?');
                        let problem = Problem::Unresolvable {
                            path: display(&link_path),
                            specifier,
                            parent: None,
                        };
                        if !api_vfs(&link_path) {
                            return Err(value_error(&item.origin, problem));
                        }
                    }
                    place(
                        &link_path,
                        kind,
                        &item.origin,
                        Mounts::Yes,
                        None,
                        &mut out,
                    )?;
                }
            }
        }
        for bind in &self.binds {
            place(
                &bind.destination,
                Kind::BindTarget,
                &bind.origin,
                Mounts::Yes,
                None,
                &mut out,
            )?;
        }
        for (index, entries) in self.access.iter().enumerate() {
            // InaccessiblePaths= mounts an inaccessible node over the path.
            let mounts = if ACCESS_SETTINGS[index] == "InaccessiblePaths" {
                Mounts::Hides
            } else {
                Mounts::No
            };
            for entry in entries {
                place(
                    &entry.path,
                    Kind::Existing,
                    &entry.origin,
                    mounts,
                    None,
                    &mut out,
                )?;
            }
        }
        for entry in &self.tmpfs {
            place(
                &entry.path,
                Kind::Directory,
                &entry.origin,
                Mounts::Yes,
                None,
                &mut out,
            )?;
        }
        if let Some(entry) = &self.working_directory {
            place(
                &entry.path,
                Kind::Directory,
                &entry.origin,
                Mounts::No,
                None,
                &mut out,
            )?;
        }
        Ok(Requirements { mount_points: out, warnings: self.warnings })
    }
}

/// What a setting does at its path. The builder decides from it where the
/// path may be: it knows where the image keeps its store, this module
/// does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mounts {
    /// It mounts something on the path.
    Yes,
    /// It hides the path's content, but needs it to exist.
    Hides,
    /// It only changes flags or the working directory.
    No,
}

/// Adds what `path` needs to `out`, unless it needs nothing; `fix` is how
/// a path with an unresolvable specifier could be written instead.
fn place(
    path: &str,
    kind: Kind,
    origin: &Origin,
    mounts: Mounts,
    fix: Option<String>,
    out: &mut Vec<MountPoint>,
) -> Result<(), Error> {
    if api_vfs(path) {
        return Ok(());
    }
    if let Some(specifier) = first_marker(path) {
        let problem = Problem::Unresolvable {
            path: display(path),
            specifier,
            parent: fix,
        };
        return Err(value_error(origin, problem));
    }
    out.push(MountPoint {
        path: path.to_owned(),
        kind,
        mounts,
        origin: origin.clone(),
    });
    Ok(())
}

/// Whether systemd mounts an API file system over the path's first
/// directory (`/run`, `/proc`, `/sys`, `/dev`) before it mounts into it.
fn api_vfs(path: &str) -> bool {
    components(path)
        .next()
        .is_some_and(|first| ["run", "proc", "sys", "dev"].contains(&first))
}

fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|p| !p.is_empty())
}

/// `path_startswith()` for a strict ancestor, compared by components; a
/// component with a specifier marker only matches the same text.
fn is_strictly_below(path: &str, ancestor: &str) -> bool {
    let path: Vec<&str> = components(path).collect();
    let ancestor: Vec<&str> = components(ancestor).collect();
    ancestor.len() < path.len() && path.starts_with(&ancestor)
}

/// The leading components of a relative path before the first one with
/// an unknown specifier, if there are any.
fn specifier_free_parent(path: &str) -> Option<String> {
    first_marker(path)?;
    let parts: Vec<&str> =
        components(path).take_while(|part| !part.contains(MARKER)).collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// `symlink_idempotent(..., make_relative=true)`: the target of a link at
/// `link` pointing to `target`, relative to the link's directory; both are
/// relative to the same root.
fn relative_link(link: &str, target: &str) -> String {
    let link: Vec<&str> = components(link).collect();
    let dir = &link[..link.len().saturating_sub(1)];
    let target: Vec<&str> = components(target).collect();
    let common = dir.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; dir.len() - common];
    parts.extend(&target[common..]);
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

fn first_marker(path: &str) -> Option<char> {
    let mut chars = path.chars();
    chars.find(|&c| c == MARKER)?;
    chars.next()
}

/// A resolved path for messages: unknown specifiers shown as `%x`.
fn display(path: &str) -> String {
    path.replace(MARKER, "%")
}

/// The part of `text` between two cursor offsets, trimmed.
fn raw(text: &str, start: Option<usize>, end: Option<usize>) -> String {
    let start = start.unwrap_or(text.len());
    let end = end.unwrap_or(text.len()).max(start);
    text[start..end]
        .trim_matches(|c: char| c == ':' || c.is_ascii_whitespace())
        .to_owned()
}

/// Checks an absolute path as `path_simplify_and_warn(PATH_CHECK_ABSOLUTE)`
/// does, and returns it simplified.
fn absolute(path: &str) -> Result<String, Problem> {
    // A specifier unknown here (`%h`) may stand for an absolute path: it is
    // refused later, if the path needs anything in the image.
    if !path.starts_with('/') && !path.starts_with(MARKER) {
        return Err(if path.is_empty() {
            Problem::Empty
        } else {
            Problem::NotAbsolute(display(path))
        });
    }
    normalize(path)
}

/// `path_simplify()` then `path_is_valid()` and `path_is_normalized()`:
/// no empty or `.` components, no `..`, each component at most 255 bytes
/// and the whole under `PATH_MAX`.
fn normalize(path: &str) -> Result<String, Problem> {
    if path.is_empty() {
        return Err(Problem::Empty);
    }
    let parts: Vec<&str> = components(path).filter(|p| *p != ".").collect();
    if parts.contains(&"..") {
        return Err(Problem::NotNormalized(display(path)));
    }
    let joined = parts.join("/");
    let simplified = if path.starts_with('/') {
        format!("/{joined}")
    } else if joined.is_empty() {
        // "." stays "." and is not normalized.
        return Err(Problem::NotNormalized(display(path)));
    } else {
        joined
    };
    if simplified.len() >= 4096 || parts.iter().any(|p| p.len() > 255) {
        return Err(Problem::TooLong(display(path)));
    }
    Ok(simplified)
}
