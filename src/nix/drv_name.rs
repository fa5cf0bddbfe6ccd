/*!
A store path's name split into a package name and a version, as
`builtins.parseDrvName` splits it.

Nix's rule (`DrvName::DrvName` in `src/libexpr/names.cc`, unchanged from
Nix 2.3 to 2.26): the version starts after the first `-` that is followed
by a character that is not a letter (`isalpha` in the C locale: ASCII
letters only); the name is what comes before that `-`. Without such a
`-`, the whole string is the name and the version is empty:

| name | `parseDrvName` |
|---|---|
| `hello-2.12.1` | `hello`, `2.12.1` |
| `openssl-3.0.13-dev` | `openssl`, `3.0.13-dev` (an output's suffix stays in the version) |
| `demo-at.service` | `demo-at.service`, no version |
| `a--b` | `a`, `-b` |
| `-1` | empty, `1` |
| `a-` | `a-`, no version (nothing follows the `-`) |

`tests/sbom.rs` checks this against `builtins.parseDrvName` itself.
*/

/// A name as `builtins.parseDrvName` splits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrvName<'a> {
    pub name: &'a str,
    /// Empty when the name has no version.
    pub version: &'a str,
}

impl<'a> DrvName<'a> {
    pub fn parse(s: &'a str) -> DrvName<'a> {
        let bytes = s.as_bytes();
        for i in 0..bytes.len() {
            if bytes[i] == b'-'
                && i + 1 < bytes.len()
                && !bytes[i + 1].is_ascii_alphabetic()
            {
                return DrvName { name: &s[..i], version: &s[i + 1..] };
            }
        }
        DrvName { name: s, version: "" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_as_nix_does() {
        for (s, name, version) in [
            ("hello-2.12.1", "hello", "2.12.1"),
            ("openssl-3.0.13-dev", "openssl", "3.0.13-dev"),
            ("demo-at.service", "demo-at.service", ""),
            ("foo-bar-1.0", "foo-bar", "1.0"),
            ("a--b", "a", "-b"),
            ("-1", "", "1"),
            ("a-", "a-", ""),
            ("x-_y", "x", "_y"),
            ("", "", ""),
        ] {
            assert_eq!(DrvName::parse(s), DrvName { name, version }, "{s}");
        }
    }
}
