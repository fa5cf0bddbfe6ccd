/*!
The image's `/etc/os-release`.

It carries what nixpkgs' portableService writes (`ID=nixos`,
`PRETTY_NAME=NixOS`, `BUILD_ID=rolling`, `PORTABLE_ID`, and
`PORTABLE_PRETTY_NAME` and `HOME_URL` when given) plus `PORTABLE_PREFIXES`,
without which `systemd-dissect` does not call the image a portable service.
Keys are sorted, as nixpkgs' `toKeyValue` sorts them. Values are quoted as
os-release(5) asks: in double quotes when they hold anything but letters and
digits, with `\`, `"`, `$` and `` ` `` escaped.
*/

pub struct OsRelease<'a> {
    pub pname: &'a str,
    pub description: Option<&'a str>,
    pub homepage: Option<&'a str>,
}

impl OsRelease<'_> {
    /// The `KEY=value` pairs, sorted by key; empty values are left out.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        let fields = [
            ("BUILD_ID", Some("rolling")),
            ("HOME_URL", self.homepage),
            ("ID", Some("nixos")),
            ("PORTABLE_ID", Some(self.pname)),
            ("PORTABLE_PREFIXES", Some(self.pname)),
            ("PORTABLE_PRETTY_NAME", self.description),
            ("PRETTY_NAME", Some("NixOS")),
        ];
        fields
            .into_iter()
            .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
            .collect()
    }

    pub fn render(&self) -> String {
        self.fields()
            .into_iter()
            .map(|(key, value)| format!("{key}={}\n", quote(value)))
            .collect()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal() {
        let os =
            OsRelease { pname: "demo", description: None, homepage: None };
        assert_eq!(
            os.render(),
            "BUILD_ID=rolling\nID=nixos\nPORTABLE_ID=demo\n\
             PORTABLE_PREFIXES=demo\nPRETTY_NAME=NixOS\n"
        );
    }

    #[test]
    fn quotes_and_leaves_out_empty_values() {
        let os = OsRelease {
            pname: "my-app",
            description: Some(r#"A "demo" for $5 \ `x`"#),
            homepage: Some(""),
        };
        let text = os.render();
        assert!(text.contains("PORTABLE_ID=\"my-app\"\n"), "{text}");
        assert!(
            text.contains(
                r#"PORTABLE_PRETTY_NAME="A \"demo\" for \$5 \\ \`x\`""#
            ),
            "{text}"
        );
        assert!(!text.contains("HOME_URL"), "{text}");
    }
}
