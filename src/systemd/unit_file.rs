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
setting). Each path says what its setting does there (`Mounts`): the
builder refuses a mount point in the image's store or one that would hide
it, and paths under a symlink of the image: it knows the image's layout
and symlinks, this module does not.

The parts: `parse` (reading), `requirements` (what an image must hold),
`error` (what can be wrong), with `words` (splitting values) and
`specifiers` (`%n`, `%i`, ...).
*/

mod error;
mod parse;
mod requirements;
mod specifiers;
mod words;

pub use error::{Error, ErrorKind, Problem};
pub use parse::{Assignment, UnitFile};
pub use requirements::{
    requirements, Kind, MountPoint, Mounts, Origin, Requirements, Warning,
    WarningKind,
};

#[cfg(test)]
mod tests;
