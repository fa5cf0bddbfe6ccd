/*!
What can be wrong with a unit file: typed, so that callers can tell a bad
name from a bad value, and worded for the people who wrote the unit.
*/

use std::fmt;

use super::specifiers;
use super::words::SyntaxError;

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
