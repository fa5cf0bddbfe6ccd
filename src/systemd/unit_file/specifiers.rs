/*!
Resolving `%` specifiers in a path at build time, for a unit of the system
manager whose file name is known.

systemd resolves them when it loads the unit on the host, with
`unit_full_printf_full()` (`src/core/unit-printf.c`; `unit_path_printf()`
is the same with a `PATH_MAX` limit) over `specifier_printf()`
(`src/shared/specifier.c`), 252 and 257 alike but for `%D`, which 257 added.
They fall in three groups (see `doc/services.md`):

- fixed for the system manager: `%%`, the directory roots `%S %C %L %E %t`
  (`manager->prefix[]`: /var/lib, /var/cache, /var/log, /etc, /run),
  `%T %V` (/tmp, /var/tmp, unless PID 1 runs with `$TMPDIR`), `%D`
  (/usr/share), and `%u %U %g %G`, the manager's own user and group, which
  is root (`specifier_user_name()` in `src/shared/specifier.c` looks up UID
  0 for the system scope);
- from the unit's name (`%n %N %p %P %i %I %j %J %f`, and `%d`, which is
  `/run/credentials/%n`): known here, except that in a template unit
  (`app@.service`) `%n %N %i %I %f %d` depend on the instance;
- from the host, its boot or the attached copy of the unit (`%a %A %b %B
  %H %l %q %m %M %o %v %w %W %h %s %y %Y %c %r %R`): unknown here.

An unknown value is kept as a marker, NUL and the specifier's letter, so
that a path can still be compared and told apart by where the unknown part
sits; a NUL cannot come from a unit file, as the escapes refuse it. Any
other letter or digit after `%` is an error in systemd (`-EBADSLT`, and the
value is ignored); any other character keeps the `%`.
*/

/// Starts an unresolved specifier in a resolved path; its letter follows.
pub const MARKER: char = '\0';

/// What is known about the unit a value belongs to.
#[derive(Clone, Debug)]
pub struct UnitName {
    /// The whole name, `app@x.service`.
    id: String,
    /// Before the `@`, or before the type suffix.
    prefix: String,
    /// `None` for a plain unit; `Some("")` for a template.
    instance: Option<String>,
}

impl UnitName {
    /// `name` must be a valid unit name (`unit_name::is_valid`).
    pub fn new(name: &str) -> UnitName {
        let (stem, _) = name.rsplit_once('.').unwrap_or((name, ""));
        let (prefix, instance) = match stem.split_once('@') {
            Some((prefix, instance)) => {
                (prefix.to_owned(), Some(instance.to_owned()))
            }
            None => (stem.to_owned(), None),
        };
        UnitName { id: name.to_owned(), prefix, instance }
    }

    /// The whole name.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn is_template(&self) -> bool {
        self.instance.as_deref() == Some("")
    }
}

/// A specifier-resolving failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecifierError {
    /// A letter or digit systemd does not know: it ignores the value.
    Unknown(char),
    /// A name-derived specifier whose unescaping systemd refuses.
    BadName(char),
}

/// Whether `%c` is only added by systemd 257 (systemd 252 refuses it).
pub fn added_in_257(c: char) -> bool {
    c == 'D'
}

/// Why a specifier's value is unknown at build time.
pub fn unknown_because(c: char) -> &'static str {
    match c {
        'i' | 'I' => "the instance name, known only when an instance starts",
        'n' | 'N' | 'f' | 'd' => {
            "derived from the instance name, known only when an instance \
             starts"
        }
        'y' | 'Y' => {
            "the path of the attached unit file, which depends on how it is \
             attached"
        }
        'h' | 's' => "the service manager's home directory or shell",
        'c' | 'r' | 'R' => "a cgroup path (deprecated)",
        _ => "a property of the host or of its boot",
    }
}

/// Resolves the specifiers of `text` for `unit`. Unknown values become
/// `MARKER` followed by the specifier's letter.
pub fn resolve(text: &str, unit: &UnitName) -> Result<String, SpecifierError> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            // "If string ended with a stray %, also end with %"
            out.push('%');
            break;
        };
        match value(spec, unit)? {
            Value::Known(v) => out.push_str(&v),
            Value::Unknown => {
                out.push(MARKER);
                out.push(spec);
            }
            Value::Literal => {
                out.push('%');
                out.push(spec);
            }
        }
    }
    Ok(out)
}

enum Value {
    Known(String),
    Unknown,
    Literal,
}

fn value(spec: char, unit: &UnitName) -> Result<Value, SpecifierError> {
    let known = |s: &str| Ok(Value::Known(s.to_owned()));
    let template = unit.is_template();
    let instance = unit.instance.as_deref().unwrap_or("");
    match spec {
        '%' => known("%"),
        'S' => known("/var/lib"),
        'C' => known("/var/cache"),
        'L' => known("/var/log"),
        'E' => known("/etc"),
        't' => known("/run"),
        'T' => known("/tmp"),
        'V' => known("/var/tmp"),
        'D' => known("/usr/share"),
        'u' | 'g' => known("root"),
        'U' | 'G' => known("0"),
        'p' => known(&unit.prefix),
        'P' => unescape(&unit.prefix).map(Value::Known).ok_or(bad(spec)),
        'j' => known(last_component(&unit.prefix)),
        'J' => unescape(last_component(&unit.prefix))
            .map(Value::Known)
            .ok_or(bad(spec)),
        'n' | 'N' | 'i' | 'I' | 'f' | 'd' if template => Ok(Value::Unknown),
        'n' => known(&unit.id),
        'N' => known(unit.id.rsplit_once('.').map_or("", |(stem, _)| stem)),
        'i' => known(instance),
        'I' => unescape(instance).map(Value::Known).ok_or(bad(spec)),
        'f' => {
            let escaped = match &unit.instance {
                Some(instance) => instance,
                None => &unit.prefix,
            };
            path_unescape(escaped).map(Value::Known).ok_or(bad(spec))
        }
        'd' => Ok(Value::Known(format!("/run/credentials/{}", unit.id))),
        'a' | 'A' | 'b' | 'B' | 'H' | 'l' | 'q' | 'm' | 'M' | 'o' | 'v'
        | 'w' | 'W' | 'h' | 's' | 'y' | 'Y' | 'c' | 'r' | 'R' => {
            Ok(Value::Unknown)
        }
        c if c.is_ascii_alphanumeric() => Err(SpecifierError::Unknown(c)),
        _ => Ok(Value::Literal),
    }
}

fn bad(spec: char) -> SpecifierError {
    SpecifierError::BadName(spec)
}

/// `%j`: the prefix after its last dash.
fn last_component(prefix: &str) -> &str {
    prefix.rsplit_once('-').map_or(prefix, |(_, last)| last)
}

/// `unit_name_unescape()`: `-` is `/`, `\xNN` a byte.
fn unescape(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' => out.push(b'/'),
            b'\\' => {
                if bytes.get(i + 1) != Some(&b'x') {
                    return None;
                }
                let hex =
                    std::str::from_utf8(bytes.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `unit_name_path_unescape()`: `-` alone is `/`; otherwise unescaped,
/// without a leading or trailing slash or `.`/`..` parts, with a slash put
/// in front.
fn path_unescape(escaped: &str) -> Option<String> {
    if escaped.is_empty() {
        return None;
    }
    if escaped == "-" {
        return Some("/".to_owned());
    }
    let path = unescape(escaped)?;
    if path.starts_with('/') || path.ends_with('/') {
        return None;
    }
    let normalized = path
        .split('/')
        .all(|part| !part.is_empty() && part != "." && part != "..");
    normalized.then(|| format!("/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str, unit: &str) -> String {
        resolve(text, &UnitName::new(unit)).unwrap()
    }

    #[test]
    fn fixed_for_the_system_manager() {
        let u = "app.service";
        assert_eq!(
            r("%S/%C/%L/%E/%t", u),
            "/var/lib//var/cache//var/log//etc//run"
        );
        assert_eq!(r("%T %V %D", u), "/tmp /var/tmp /usr/share");
        assert_eq!(r("%u:%U:%g:%G", u), "root:0:root:0");
        assert_eq!(r("100%% %", u), "100% %");
        assert_eq!(r("a%-b%/", u), "a%-b%/");
    }

    #[test]
    fn from_a_plain_unit_name() {
        let u = "my-app.service";
        assert_eq!(
            r("%n|%N|%p|%P|%j|%J", u),
            "my-app.service|my-app|my-app|my/app|app|app"
        );
        // No instance: %i and %I are empty; %f is the prefix as a path.
        assert_eq!(r("x%i%Iy|%f", u), "xy|/my/app");
        assert_eq!(r("%d", u), "/run/credentials/my-app.service");
    }

    #[test]
    fn from_an_instance_name() {
        let u = "app@a\\x2db-c.service";
        assert_eq!(r("%i|%I|%f", u), "a\\x2db-c|a-b/c|/a-b/c");
        assert_eq!(
            r("%n|%N|%p", u),
            "app@a\\x2db-c.service|app@a\\x2db-c|app"
        );
    }

    #[test]
    fn unknown_in_a_template() {
        let u = "app@.service";
        assert_eq!(r("%p/%i", u), "app/\0i");
        assert_eq!(r("%n %N %I %f %d", u), "\0n \0N \0I \0f \0d");
        assert_eq!(r("%H-%m-%y-%h", u), "\0H-\0m-\0y-\0h");
    }

    #[test]
    fn refused() {
        let unit = UnitName::new("app.service");
        assert_eq!(resolve("%x", &unit), Err(SpecifierError::Unknown('x')));
        assert_eq!(resolve("%9", &unit), Err(SpecifierError::Unknown('9')));
        let odd = UnitName::new("app-.service");
        assert_eq!(resolve("%f", &odd), Err(SpecifierError::BadName('f')));
        let bad = UnitName::new("a\\q.service");
        assert_eq!(resolve("%P", &bad), Err(SpecifierError::BadName('P')));
    }
}
