/*!
The image's `/etc/os-release`, and an extension image's
`extension-release` file.

os-release carries what nixpkgs' portableService writes (`ID=nixos`,
`PRETTY_NAME=NixOS`, `BUILD_ID=rolling`, `PORTABLE_ID`, and
`PORTABLE_PRETTY_NAME` and `HOME_URL` when given) plus `PORTABLE_PREFIXES`,
without which `systemd-dissect` does not call the image a portable service,
and `SYSEXT_LEVEL`, which ties extension images to this exact image.

An extension's release file carries what systemd matches against its base
(`ID`, `SYSEXT_LEVEL`, `SYSEXT_SCOPE=portable`) and the prefix it may be
attached with (`PORTABLE_PREFIXES`).

Keys are sorted, as nixpkgs' `toKeyValue` sorts them. Values are quoted as
os-release(5) asks: in double quotes when they hold anything but letters and
digits, with `\`, `"`, `$` and `` ` `` escaped. `parse` reads them back.
*/

use std::collections::BTreeMap;

/// What both files say of an image.
pub struct Release<'a> {
    pub pname: &'a str,
    pub description: Option<&'a str>,
    pub homepage: Option<&'a str>,
    /// The image's own `SYSEXT_LEVEL`, or an extension's base's.
    pub sysext_level: &'a str,
}

impl Release<'_> {
    /// A full image's `/etc/os-release`.
    pub fn os_release(&self) -> String {
        render(&[
            ("BUILD_ID", Some("rolling")),
            ("HOME_URL", self.homepage),
            ("ID", Some("nixos")),
            ("PORTABLE_ID", Some(self.pname)),
            ("PORTABLE_PREFIXES", Some(self.pname)),
            ("PORTABLE_PRETTY_NAME", self.description),
            ("PRETTY_NAME", Some("NixOS")),
            ("SYSEXT_LEVEL", Some(self.sysext_level)),
        ])
    }

    /// An extension image's release file.
    pub fn extension_release(&self) -> String {
        render(&[
            ("HOME_URL", self.homepage),
            ("ID", Some("nixos")),
            ("PORTABLE_PREFIXES", Some(self.pname)),
            ("PORTABLE_PRETTY_NAME", self.description),
            ("SYSEXT_LEVEL", Some(self.sysext_level)),
            ("SYSEXT_SCOPE", Some("portable")),
        ])
    }
}

/// `KEY=value` lines; empty values are left out.
fn render(fields: &[(&str, Option<&str>)]) -> String {
    fields
        .iter()
        .filter_map(|(key, value)| {
            value
                .filter(|v| !v.is_empty())
                .map(|v| format!("{key}={}\n", quote(v)))
        })
        .collect()
}

fn quote(value: &str) -> String {
    if value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return value.to_string();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Reads `KEY=value` lines as os-release(5) writes them: comments and blank
/// lines skipped, values unquoted and unescaped.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        fields.insert(key.to_string(), unquote(value));
    }
    fields
}

fn unquote(value: &str) -> String {
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
    let Some(quote) = quote else {
        return value.to_string();
    };
    let inner = value[1..].strip_suffix(quote).unwrap_or(&value[1..]);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            ('"', '\\') => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal() {
        let os = Release {
            pname: "demo",
            description: None,
            homepage: None,
            sysext_level: "0123abcd",
        };
        assert_eq!(
            os.os_release(),
            "BUILD_ID=rolling\nID=nixos\nPORTABLE_ID=demo\n\
             PORTABLE_PREFIXES=demo\nPRETTY_NAME=NixOS\n\
             SYSEXT_LEVEL=0123abcd\n"
        );
    }

    #[test]
    fn quotes_and_leaves_out_empty_values() {
        let os = Release {
            pname: "my-app",
            description: Some(r#"A "demo" for $5 \ `x`"#),
            homepage: Some(""),
            sysext_level: "1",
        };
        let text = os.os_release();
        assert!(text.contains("PORTABLE_ID=\"my-app\"\n"), "{text}");
        assert!(
            text.contains(
                r#"PORTABLE_PRETTY_NAME="A \"demo\" for \$5 \\ \`x\`""#
            ),
            "{text}"
        );
        assert!(!text.contains("HOME_URL"), "{text}");
        let fields = parse(&text);
        assert_eq!(fields["PORTABLE_PRETTY_NAME"], r#"A "demo" for $5 \ `x`"#);
        assert_eq!(fields["PORTABLE_ID"], "my-app");
        assert_eq!(fields["ID"], "nixos");
    }

    #[test]
    fn extension_release() {
        let release = Release {
            pname: "app",
            description: None,
            homepage: None,
            sysext_level: "0123abcd",
        };
        assert_eq!(
            release.extension_release(),
            "ID=nixos\nPORTABLE_PREFIXES=app\nSYSEXT_LEVEL=0123abcd\n\
             SYSEXT_SCOPE=portable\n"
        );
    }

    #[test]
    fn parses_what_others_write() {
        let fields = parse(
            "# comment\n\nNAME='Debian GNU/Linux'\nID=debian\n\
             VERSION=\"12 (bookworm)\"\nnot a field\n",
        );
        assert_eq!(fields["NAME"], "Debian GNU/Linux");
        assert_eq!(fields["ID"], "debian");
        assert_eq!(fields["VERSION"], "12 (bookworm)");
        assert_eq!(fields.len(), 3);
    }
}
