/*!
Reads unit files as systemd does, and works out what a service's settings
need from a read-only root image (`RootImage=`, which portabled sets).

The rules follow systemd 252.39 and 257.13, the versions of Debian 12 and
13; `doc/services.md` cites the lines and records the runs that confirmed
them.

# Reading

`UnitFile::parse` follows `config_parse()` and `parse_line()` in systemd's
`src/shared/conf-parser.c` (the same in 252 and 257):

- lines end at `\n`, `\r`, `\r\n`, `\n\r` or NUL (`read_line()`); a byte
  order mark is dropped from the first line that starts with one;
- a line whose first non-blank character is `#` or `;` is a comment, also
  in the middle of a continuation, where it is skipped and the
  continuation goes on;
- a line ending in an odd number of backslashes continues on the next one:
  the last backslash becomes a space and the next line is appended as it is;
- the logical line is trimmed of blanks (space, tab, CR, LF); `[Name]` opens
  a section, and a header that does not end in `]` or whose name has control
  characters, quotes or backslashes makes systemd refuse the unit, so it is
  an error here;
- `Key=Value` splits at the first `=`; key and value are trimmed; lines
  without `=`, with an empty key, outside any section or not UTF-8 are
  ignored, as systemd ignores them (with a warning).

Drop-ins are not read: portabled ignores drop-in directories in images.

# What an image must hold

`requirements` reads the `[Service]` section of a `.service` unit (portabled
gives only services `RootImage=`; other units run on the host) and lists the
paths systemd mounts on, changes into or links at inside the image, each
with the setting and value that need it. `doc/services.md` has the evidence,
from systemd's source (`src/core/load-fragment.c`, `namespace.c`,
`execute.c`/`exec-invoke.c`) and from runs on systemd 252 and 257. In short:

- `StateDirectory=`, `CacheDirectory=`, `LogsDirectory=`,
  `ConfigurationDirectory=` need a directory at `/var/lib/NAME`,
  `/var/cache/NAME`, `/var/log/NAME`, `/etc/NAME`, with or without
  `DynamicUser=` (with `RootImage=` systemd binds the host's
  `/var/lib/private/NAME` onto `/var/lib/NAME`; `compile_bind_mounts()`).
  An entry below another entry of the same setting (`StateDirectory=app
  app/%i`) needs nothing: systemd creates it inside its parent's host
  directory and mounts only the parent (`exec_directory_sort()`), unless it
  has systemd 257's `:ro` flag. `NAME:LINK` needs the relative symlink
  `LINK -> NAME` in the image, which systemd otherwise tries to create;
- `BindPaths=`, `BindReadOnlyPaths=`: the destination (the source if none
  is given), of the same type as the host's source, which is unknown here;
  the `-` prefix only excuses a missing source;
- `ReadWritePaths=`, `ReadOnlyPaths=`, `InaccessiblePaths=`, `ExecPaths=`,
  `NoExecPaths=`: the path, unless prefixed with `-`; `+` changes nothing,
  as with `RootImage=` all these paths are inside the image;
- `TemporaryFileSystem=`: a directory at the path;
- `WorkingDirectory=`: a directory at the path, unless prefixed with `-`;
  `~` (the user's home) is an error, as it fails under `DynamicUser=`;
- `RuntimeDirectory=` and anything else under `/run`, `/proc`, `/sys` or
  `/dev` needs nothing: systemd mounts those file systems over the image
  (`MountAPIVFS=`, on by default with `RootImage=` and set by every
  portable profile) before it mounts into them;
- `EnvironmentFile=` is read by the service manager on the host, and
  `PrivateTmp=` needs only `/tmp` and `/var/tmp`, which every image has.

Values are split as each setting's parser splits them
(`extract_first_word()`, see `words`), with systemd 257's syntax:
`NAME[:LINK[:FLAGS]]` for the directory settings, `[-]SRC[:DST[:rbind|
norbind]]` for the bind settings, `[-][+]PATH` for the access settings,
`PATH[:OPTIONS]` for `TemporaryFileSystem=`. An empty assignment empties
the setting's list; `BindPaths=` and `BindReadOnlyPaths=` share one list, so
an empty one of either empties both (`config_parse_bind_paths()`). A value
systemd would reject or ignore is an error here, naming the unit, the
setting and the value, since the service would not get what its author
wrote.

Specifiers are resolved as `specifiers` explains. A path that keeps a
specifier only known on the host or once an instance starts (`%i` in a
template) is an error unless systemd needs no mount point for it (it is
under `/run`, or below a specifier-free entry of the same directory
setting). A mount point inside the Nix store (`/nix`, `/usr/nix`), or one
that would hide it (`/`, `/usr`), is an error: the builder adds nothing to
the store. Paths under a symlink of the image are for the builder to
refuse: it knows the image's symlinks, this module does not.
*/

mod specifiers;
mod words;

use std::fmt;

use specifiers::{SpecifierError, UnitName, MARKER};
use words::{Cursor, Flags, SyntaxError, WHITESPACE};

use crate::systemd::unit_name;

// ------------------------------------------------------------ reading

/// A unit file: its name and its assignments, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitFile {
    name: String,
    assignments: Vec<Assignment>,
}

/// One `Key=Value` line, after continuation lines are joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub section: String,
    pub key: String,
    pub value: String,
    /// The line it starts on, counting from 1.
    pub line: usize,
}

const COMMENTS: &[u8] = b"#;";
const BOM: &[u8] = b"\xef\xbb\xbf";

impl UnitFile {
    /// Reads the unit file called `name` (its file name, such as
    /// `app@.service`) with content `text`.
    pub fn parse(name: &str, text: &[u8]) -> Result<UnitFile, Error> {
        if !unit_name::is_valid(name) {
            return Err(Error {
                unit: name.to_owned(),
                kind: ErrorKind::UnitName,
            });
        }
        let mut reader =
            Reader { unit: name, section: None, assignments: Vec::new() };
        let mut continuation: Option<(Vec<u8>, usize)> = None;
        let mut bom_seen = false;
        for (index, raw) in physical_lines(text).into_iter().enumerate() {
            let number = index + 1;
            let first = raw.iter().position(|b| !WHITESPACE.contains(b));
            if first.is_some_and(|i| COMMENTS.contains(&raw[i])) {
                continue;
            }
            let mut line = raw;
            if !bom_seen {
                if let Some(rest) = line.strip_prefix(BOM) {
                    line = rest;
                    bom_seen = true;
                }
            }
            let (mut logical, start) = match continuation.take() {
                Some((mut joined, start)) => {
                    joined.extend_from_slice(line);
                    (joined, start)
                }
                None => (line.to_vec(), number),
            };
            if ends_escaped(&logical) {
                *logical.last_mut().expect("ends in a backslash") = b' ';
                continuation = Some((logical, start));
                continue;
            }
            reader.line(&logical, start)?;
        }
        if let Some((logical, start)) = continuation {
            reader.line(&logical, start)?;
        }
        Ok(UnitFile { name: name.to_owned(), assignments: reader.assignments })
    }

    pub fn assignments(&self) -> &[Assignment] {
        &self.assignments
    }

    /// The assignments of `key` in `section`, in order.
    pub fn get<'a>(
        &'a self,
        section: &'a str,
        key: &'a str,
    ) -> impl Iterator<Item = &'a Assignment> + 'a {
        self.assignments
            .iter()
            .filter(move |a| a.section == section && a.key == key)
    }
}

struct Reader<'a> {
    unit: &'a str,
    section: Option<String>,
    assignments: Vec<Assignment>,
}

impl Reader<'_> {
    /// `parse_line()`.
    fn line(&mut self, logical: &[u8], number: usize) -> Result<(), Error> {
        let Ok(text) = std::str::from_utf8(logical) else {
            return Ok(());
        };
        let text = trim(text);
        if text.is_empty() {
            return Ok(());
        }
        if text.starts_with('[') {
            let name = text.strip_suffix(']').map(|t| &t[1..]);
            let safe = name.is_some_and(|n| {
                !n.chars()
                    .any(|c| c < ' ' || c == '\x7f' || "\\\"'".contains(c))
            });
            if !safe {
                return Err(Error {
                    unit: self.unit.to_owned(),
                    kind: ErrorKind::SectionHeader {
                        line: number,
                        header: text.to_owned(),
                    },
                });
            }
            self.section = name.map(str::to_owned);
            return Ok(());
        }
        let Some(section) = &self.section else {
            return Ok(());
        };
        match text.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                self.assignments.push(Assignment {
                    section: section.clone(),
                    key: trim(key).to_owned(),
                    value: trim(value).to_owned(),
                    line: number,
                });
            }
            _ => {}
        }
        Ok(())
    }
}

fn trim(text: &str) -> &str {
    text.trim_matches(|c: char| {
        c.is_ascii() && WHITESPACE.contains(&(c as u8))
    })
}

/// Splits at line ends as `read_line()` does: `\n`, `\r` and NUL each end
/// a line, and a run of them is one line end as long as no kind repeats
/// and no NUL is followed by more.
fn physical_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        let kind = |b: u8| match b {
            b'\n' => 1u8,
            b'\r' => 2,
            0 => 4,
            _ => 0,
        };
        let k = kind(text[i]);
        if k == 0 {
            i += 1;
            continue;
        }
        lines.push(&text[start..i]);
        let mut seen = k;
        i += 1;
        while i < text.len() && seen & 4 == 0 {
            let next = kind(text[i]);
            if next == 0 || seen & next != 0 {
                break;
            }
            seen |= next;
            i += 1;
        }
        start = i;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Whether the text ends in an unescaped backslash.
fn ends_escaped(text: &[u8]) -> bool {
    let mut escaped = false;
    for &b in text {
        escaped = !escaped && b == b'\\';
    }
    escaped
}

// ------------------------------------------------------------ requirements

/// What the image must hold at `path` for a unit's setting to work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPoint {
    /// Absolute and normalized, as the unit sees it inside the image.
    pub path: String,
    pub kind: Kind,
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
                    place(&path, kind, &item.origin, Mounts::Yes, &mut out)
                        .map_err(|mut p| {
                            if let Problem::Unresolvable { parent, .. } =
                                &mut p
                            {
                                *parent = specifier_free_parent(&item.path)
                                    .map(|f| {
                                        display(&format!("{f} {}", item.path))
                                    });
                            }
                            value_error(&item.origin, p)
                        })?;
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
                        &mut out,
                    )
                    .map_err(|p| value_error(&item.origin, p))?;
                }
            }
        }
        for bind in &self.binds {
            place(
                &bind.destination,
                Kind::BindTarget,
                &bind.origin,
                Mounts::Yes,
                &mut out,
            )
            .map_err(|p| value_error(&bind.origin, p))?;
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
                    &mut out,
                )
                .map_err(|p| value_error(&entry.origin, p))?;
            }
        }
        for entry in &self.tmpfs {
            place(
                &entry.path,
                Kind::Directory,
                &entry.origin,
                Mounts::Yes,
                &mut out,
            )
            .map_err(|p| value_error(&entry.origin, p))?;
        }
        if let Some(entry) = &self.working_directory {
            place(
                &entry.path,
                Kind::Directory,
                &entry.origin,
                Mounts::No,
                &mut out,
            )
            .map_err(|p| value_error(&entry.origin, p))?;
        }
        Ok(Requirements { mount_points: out, warnings: self.warnings })
    }
}

/// How a setting treats its path, for the Nix store checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mounts {
    /// It mounts something on the path: refused inside the store or on an
    /// ancestor of it.
    Yes,
    /// It hides the path's content but needs it to exist: refused on an
    /// ancestor of the store; inside it, the path must be in the closure.
    Hides,
    /// It only changes flags or the working directory: inside the store,
    /// the path must be in the closure.
    No,
}

/// Adds what `path` needs to `out`, unless it needs nothing.
fn place(
    path: &str,
    kind: Kind,
    origin: &Origin,
    mounts: Mounts,
    out: &mut Vec<MountPoint>,
) -> Result<(), Problem> {
    if api_vfs(path) {
        return Ok(());
    }
    if mounts != Mounts::No && hides_store(path) {
        return Err(Problem::HidesStore(display(path)));
    }
    if mounts == Mounts::Yes && is_in_store(path) {
        return Err(Problem::InStore(display(path)));
    }
    if let Some(specifier) = first_marker(path) {
        return Err(Problem::Unresolvable {
            path: display(path),
            specifier,
            parent: None,
        });
    }
    out.push(MountPoint {
        path: path.to_owned(),
        kind,
        origin: origin.clone(),
    });
    Ok(())
}

/// Whether `path` is in the image's Nix store: under `/nix` (a symlink to
/// `usr/nix`) or `/usr/nix`. A requirement there can only be met by the
/// closure.
pub fn is_in_store(path: &str) -> bool {
    let parts: Vec<&str> = components(path).take(2).collect();
    matches!(parts.as_slice(), ["nix", ..] | ["usr", "nix"])
}

/// Whether mounting on `path` would hide the whole store: `/`, `/usr`,
/// or the store or its parent under either name.
fn hides_store(path: &str) -> bool {
    let parts: Vec<&str> = components(path).collect();
    matches!(
        parts.as_slice(),
        [] | ["usr"]
            | ["usr", "nix"]
            | ["usr", "nix", "store"]
            | ["nix"]
            | ["nix", "store"]
    )
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

// ------------------------------------------------------------ errors

/// A unit file that cannot be read, or a setting the image cannot serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub unit: String,
    pub kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file name is not a unit name (`unit_name_is_valid()`).
    UnitName,
    /// A `[` line that is not a valid section header: systemd refuses to
    /// load the unit.
    SectionHeader { line: usize, header: String },
    /// A value of a setting.
    Value {
        setting: &'static str,
        value: String,
        line: usize,
        problem: Box<Problem>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    Syntax(SyntaxError),
    Empty,
    NotAbsolute(String),
    NotRelative(String),
    NotNormalized(String),
    TooLong(String),
    /// A directory setting's name starting with `private`, which systemd
    /// keeps for `DynamicUser=`.
    Private,
    /// `ConfigurationDirectory=NAME:LINK`: systemd takes no link there.
    ConfigurationLink,
    /// The third field of a directory setting is not `ro`.
    BadFlags(String),
    /// The third field of a bind setting is not `rbind` or `norbind`.
    BadBindOption(String),
    /// `SRC:` with nothing after the colon.
    MissingDestination,
    /// `WorkingDirectory=~`.
    HomeDirectory,
    UnknownSpecifier(char),
    /// `%P`, `%f`, ... of a unit name systemd cannot unescape.
    BadNameSpecifier(char),
    /// A mount point in the Nix store.
    InStore(String),
    /// A mount point that would hide the Nix store (`/`, `/usr`, `/nix`).
    HidesStore(String),
    /// A mount point whose name has a specifier unknown at build time;
    /// `parent` is the fix for a directory setting (`app app/%i`).
    Unresolvable {
        path: String,
        specifier: char,
        parent: Option<String>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = &self.unit;
        match &self.kind {
            ErrorKind::UnitName => write!(
                f,
                "'{unit}' is not a valid unit name: PREFIX[@[INSTANCE]].TYPE"
            ),
            ErrorKind::SectionHeader { line, header } => write!(
                f,
                "unit '{unit}', line {line}: '{header}' is not a valid \
                 section header, and systemd would refuse the unit"
            ),
            ErrorKind::Value { setting, value, line, problem } => {
                write!(f, "unit '{unit}', line {line}: {setting}={value}: ")?;
                problem.describe(f, setting)
            }
        }
    }
}

impl std::error::Error for Error {}

impl Problem {
    fn describe(
        &self,
        f: &mut fmt::Formatter<'_>,
        setting: &str,
    ) -> fmt::Result {
        match self {
            Problem::Syntax(e) => write!(f, "{}", e.describe()),
            Problem::Empty => write!(f, "the path is empty"),
            Problem::NotAbsolute(p) => {
                write!(f, "'{p}' is not an absolute path")
            }
            Problem::NotRelative(p) => write!(
                f,
                "'{p}' is absolute, but {setting}= takes names relative to \
                 its root directory"
            ),
            Problem::NotNormalized(p) => {
                write!(f, "'{p}' has '.' or '..' components")
            }
            Problem::TooLong(p) => write!(f, "'{p}' is too long for a path"),
            Problem::Private => write!(
                f,
                "names starting with 'private' are reserved by systemd for \
                 DynamicUser="
            ),
            Problem::ConfigurationLink => write!(
                f,
                "ConfigurationDirectory= takes no symlink name (NAME:LINK)"
            ),
            Problem::BadFlags(s) => write!(
                f,
                "'{s}' is not a flag systemd knows: the only one is 'ro'"
            ),
            Problem::BadBindOption(s) => write!(
                f,
                "'{s}' is not a bind option: use 'rbind' or 'norbind'"
            ),
            Problem::HomeDirectory => write!(
                f,
                "the user's home directory does not work with DynamicUser=, \
                 which the portable profiles set (systemd 257 refuses the \
                 unit, 252 fails to start it), and is not in the image for \
                 other users: use an absolute path, or '-~' to go on \
                 without it"
            ),
            Problem::MissingDestination => {
                write!(f, "nothing follows the ':'")
            }
            Problem::UnknownSpecifier(c) => write!(
                f,
                "systemd knows no specifier '%{c}' (write '%%' for a '%')"
            ),
            Problem::BadNameSpecifier(c) => {
                write!(f, "systemd cannot unescape the unit name for '%{c}'")
            }
            Problem::InStore(p) => write!(
                f,
                "the mount point {p} is inside the Nix store, which the image \
                 holds exactly as the closure: mount somewhere else"
            ),
            Problem::HidesStore(p) => write!(
                f,
                "mounting on {p} would hide the Nix store the service runs \
                 from"
            ),
            Problem::Unresolvable { path, specifier, parent } => {
                write!(
                    f,
                    "the image needs a mount point at {path}, but \
                     %{specifier} is {}, so it cannot be made at build time",
                    specifiers::unknown_because(*specifier)
                )?;
                match parent {
                    Some(fix) => write!(
                        f,
                        "; list the fixed part as its own entry \
                         ({setting}={fix}): systemd then mounts that \
                         directory and creates the rest inside it on the host"
                    ),
                    None => write!(
                        f,
                        "; use a fixed path, or one under /run, where systemd \
                         makes mount points itself"
                    ),
                }
            }
        }
    }
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

#[cfg(test)]
mod tests;
