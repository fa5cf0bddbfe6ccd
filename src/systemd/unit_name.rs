/*!
Unit file names, by systemd's rules and by portabled's.

`is_valid` follows `unit_name_is_valid()` in systemd's `src/basic/unit-name.c`:
a name of at most 255 bytes, `PREFIX[@[INSTANCE]].TYPE`, with a known unit
type. `check_portable` adds what portabled asks of a unit before it attaches
it (`unit_match()` and `prefix_match()` in `src/portable/portable.c`): one of
the five types it copies, and a name that starts with the image's prefix
followed by `-`, `.` or `@`.
*/

use anyhow::{bail, Result};

/// The unit types portabled copies out of an image.
pub const PORTABLE_TYPES: [&str; 5] =
    ["service", "socket", "target", "timer", "path"];

const ALL_TYPES: [&str; 11] = [
    "service",
    "socket",
    "target",
    "timer",
    "path",
    "device",
    "mount",
    "automount",
    "swap",
    "slice",
    "scope",
];

/// systemd's `UNIT_NAME_MAX` counts the terminating NUL.
const NAME_MAX: usize = 255;

/// Whether systemd accepts `name` as a unit name (plain, template or
/// instance).
pub fn is_valid(name: &str) -> bool {
    if name.is_empty() || name.len() > NAME_MAX {
        return false;
    }
    let Some((stem, unit_type)) = name.rsplit_once('.') else {
        return false;
    };
    if stem.is_empty() || !ALL_TYPES.contains(&unit_type) {
        return false;
    }
    let chars_ok = stem
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b));
    chars_ok && !stem.starts_with('@')
}

/// The unit's type: what follows its last dot.
pub fn unit_type(name: &str) -> Option<&str> {
    name.rsplit_once('.').map(|(_, t)| t)
}

/// Fails unless portabled would attach a unit file called `name` from an
/// image whose prefix is `prefix`. The message names the unit and the rule.
pub fn check_portable(name: &str, prefix: &str) -> Result<()> {
    if !is_valid(name) {
        bail!(
            "unit '{name}' is not a valid systemd unit name: \
             PREFIX[@[INSTANCE]].TYPE, at most {NAME_MAX} characters of \
             [A-Za-z0-9:_.\\@-]"
        );
    }
    let unit_type = unit_type(name).unwrap_or_default();
    if !PORTABLE_TYPES.contains(&unit_type) {
        bail!(
            "unit '{name}' has type '{unit_type}', which portabled does not \
             attach: the types it attaches are {}",
            PORTABLE_TYPES.join(", ")
        );
    }
    if !matches_prefix(name, prefix) {
        bail!(
            "unit '{name}' does not match the image prefix '{prefix}': \
             portabled only attaches units named '{prefix}' followed by \
             '.', '-' or '@' (such as {prefix}.service, \
             {prefix}-worker.service, {prefix}@.service)"
        );
    }
    Ok(())
}

/// Whether `name` is `prefix`, or starts with it followed by `-`, `.` or
/// `@`.
pub fn matches_prefix(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|rest| {
        rest.bytes().next().is_none_or(|next| b"-.@".contains(&next))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for name in [
            "demo.service",
            "demo@.service",
            "demo@x.service",
            "demo@a@b.service",
            "demo-web.socket",
            "demo.x.timer",
            "a:b_c\\x2d.mount",
        ] {
            assert!(is_valid(name), "{name}");
        }
    }

    #[test]
    fn invalid_names() {
        let long = format!("{}.service", "a".repeat(248));
        for name in [
            "",
            "demo",
            ".service",
            "@.service",
            "@x.service",
            "demo.conf",
            "demo service.service",
            "démo.service",
            long.as_str(),
        ] {
            assert!(!is_valid(name), "{name}");
        }
        assert!(is_valid(&format!("{}.service", "a".repeat(247))));
    }

    #[test]
    fn portable_prefix_rule() {
        for name in [
            "demo.service",
            "demo.socket",
            "demo@.service",
            "demo@x.service",
            "demo-web.target",
            "demo.tick.timer",
            "demo.path",
        ] {
            check_portable(name, "demo").unwrap();
        }
        // A prefix may name the whole unit.
        check_portable("demo.service", "demo.service").unwrap();
        for (name, rule) in [
            ("demonstration.service", "does not match the image prefix"),
            ("other.service", "does not match the image prefix"),
            ("demo.mount", "which portabled does not attach"),
            ("demo.slice", "which portabled does not attach"),
            ("demo", "not a valid systemd unit name"),
        ] {
            let err = check_portable(name, "demo").unwrap_err().to_string();
            assert!(err.contains(rule), "{name}: {err}");
            assert!(err.contains(name), "{name}: {err}");
        }
    }
}
