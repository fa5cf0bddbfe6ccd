/*!
systemd's version order, `strverscmp_improved()`, and what
systemd-sysupdate takes for a version, `version_is_valid()`.

systemd-sysupdate orders the versions it finds in a feed and on the host
with `strverscmp_improved()`, newest first, to pick what to install and
what `InstancesMax=` removes; portabled's `.v/` directories pick their
newest entry by it too. `publish --keep` must keep the versions a host
would call newest, so the order is ported here exactly, byte for byte,
from systemd 257.13's `src/fundamental/string-util-fundamental.c` (the
same function in systemd's main branch), with the cases of its own test,
`src/test/test-string-util.c`.

The order, in systemd's words: the string is split into numeric and
alphabetic segments, each optionally prefixed by `~` (a pre-release,
oldest), `-` (the separator of version and release), `^` (a patched
release, newer than one with `-`) or `.` (a point release); a segment
with no prefix is the newest; every other character is dropped and only
separates segments (so `123_a` equals `123a`); numeric segments compare
as numbers (`00123` equals `123`) and are newer than alphabetic ones.
*/

use std::cmp::Ordering;

/// The characters that take part in the order; every other is dropped.
fn is_valid_version_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'~' | b'-' | b'^' | b'.')
}

/// The byte at `i`, or 0 past the end: the C code walks NUL-terminated
/// strings, and reading the terminator is part of its logic.
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// `strverscmp_improved(a, b)`: how version `a` compares with `b`
/// (`Less`: `a` is older).
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_bytes(a.as_bytes(), b.as_bytes())
}

/// The same on bytes. systemd's `char` is signed, so a byte of 128 or
/// more is neither a digit nor a letter there: it is dropped, as here.
pub fn compare_bytes(a: &[u8], b: &[u8]) -> Ordering {
    // A NUL ends a C string.
    let a = &a[..a.iter().position(|&c| c == 0).unwrap_or(a.len())];
    let b = &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())];
    let (mut i, mut j) = (0, 0);
    loop {
        // Drop leading invalid characters.
        while i < a.len() && !is_valid_version_char(a[i]) {
            i += 1;
        }
        while j < b.len() && !is_valid_version_char(b[j]) {
            j += 1;
        }

        // '~': pre-releases; the string prefixed with it is older.
        if at(a, i) == b'~' || at(b, j) == b'~' {
            let r = (at(a, i) != b'~').cmp(&(at(b, j) != b'~'));
            if r.is_ne() {
                return r;
            }
            i += 1;
            j += 1;
        }

        // At the end of either string, the longer is newer. Except for
        // '~' segments, more segments are newer, so this comes after
        // the '~' check.
        if at(a, i) == 0 || at(b, j) == 0 {
            return at(a, i).cmp(&at(b, j));
        }

        // '-' separates version and release; prefixed with it is older.
        // Then '^' (patched releases) and '.' (point releases), alike.
        for separator in [b'-', b'^', b'.'] {
            if at(a, i) == separator || at(b, j) == separator {
                let r = (at(a, i) != separator).cmp(&(at(b, j) != separator));
                if r.is_ne() {
                    return r;
                }
                i += 1;
                j += 1;
            }
        }

        let (end_a, end_b);
        if at(a, i).is_ascii_digit() || at(b, j).is_ascii_digit() {
            // The leading numeric segments; one may be empty, and a
            // numeric segment is newer than an alphabetic one.
            end_a = i + a[i.min(a.len())..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            end_b = j + b[j.min(b.len())..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let r = (i != end_a).cmp(&(j != end_b));
            if r.is_ne() {
                return r;
            }
            // Leading zeros do not count: 00123 is 123.
            while at(a, i) == b'0' {
                i += 1;
            }
            while at(b, j) == b'0' {
                j += 1;
            }
            // The longer number is the larger; then digit by digit.
            let r = (end_a - i).cmp(&(end_b - j));
            if r.is_ne() {
                return r;
            }
            let r = a[i..end_a].cmp(&b[j..end_b]);
            if r.is_ne() {
                return r;
            }
        } else {
            // The leading alphabetic segments.
            end_a = i + a[i.min(a.len())..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            end_b = j + b[j.min(b.len())..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            let n = (end_a - i).min(end_b - j);
            let r = a[i..i + n].cmp(&b[j..j + n]);
            if r.is_ne() {
                return r;
            }
            // Longer is newer: abc is older than abcde.
            let r = (end_a - i).cmp(&(end_b - j));
            if r.is_ne() {
                return r;
            }
        }
        // The current segments are equal: on to the next.
        i = end_a;
        j = end_b;
    }
}

/// Whether systemd-sysupdate takes `version` for a version
/// (`version_is_valid()` in systemd 257.13's `src/basic/string-util.c`):
/// not empty, a valid part of a file name (at most 255 bytes), and only
/// letters, digits and `.,_-+`. Its pattern matcher refuses any other
/// `@v`, so an image file of another version is invisible to it.
pub fn is_valid(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= 255
        && version
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".,_-+".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newer(older: &str, newer: &str) {
        assert_eq!(compare(older, newer), Ordering::Less, "{older} < {newer}");
        assert_eq!(compare(newer, older), Ordering::Greater);
        assert_eq!(compare(older, older), Ordering::Equal);
        assert_eq!(compare(newer, newer), Ordering::Equal);
    }

    fn cmp(a: &str, b: &str) -> i32 {
        match compare(a, b) {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }
    }

    // systemd's TEST(strverscmp_improved), in src/test/test-string-util.c.
    #[test]
    fn systemd_strverscmp_improved() {
        let versions = [
            "~1",
            "",
            "ab",
            "abb",
            "abc",
            "0001",
            "002",
            "12",
            "122",
            "122.9",
            "123~rc1",
            "123",
            "123-a",
            "123-a.1",
            "123-a1",
            "123-a1.1",
            "123-3",
            "123-3.1",
            "123^patch1",
            "123^1",
            "123.a-1",
            "123.1-1",
            "123a-1",
            "124",
        ];
        for (k, p) in versions.iter().enumerate() {
            for q in &versions[k + 1..] {
                newer(p, q);
            }
        }

        newer("123.45-67.88", "123.45-67.89");
        newer("123.45-67.89", "123.45-67.89a");
        newer("123.45-67.ab", "123.45-67.89");
        newer("123.45-67.9", "123.45-67.89");
        newer("123.45-67", "123.45-67.89");
        newer("123.45-66.89", "123.45-67.89");
        newer("123.45-9.99", "123.45-67.89");
        newer("123.42-99.99", "123.45-67.89");
        newer("123-99.99", "123.45-67.89");

        // '~': pre-releases.
        newer("123~rc1-99.99", "123.45-67.89");
        newer("123~rc1-99.99", "123-45.67.89");
        newer("123~rc1-99.99", "123~rc2-67.89");
        newer("123~rc1-99.99", "123^aa2-67.89");
        newer("123~rc1-99.99", "123aa2-67.89");

        // '-': the separator of version and release.
        newer("123-99.99", "123.45-67.89");
        newer("123-99.99", "123^aa2-67.89");
        newer("123-99.99", "123aa2-67.89");

        // '^': patch releases.
        newer("123^45-67.89", "123.45-67.89");
        newer("123^aa1-99.99", "123^aa2-67.89");
        newer("123^aa2-67.89", "123aa2-67.89");

        // '.': point releases.
        newer("123.aa2-67.89", "123aa2-67.89");
        newer("123.aa2-67.89", "123.ab2-67.89");

        // Invalid characters.
        assert_eq!(cmp("123_aa2-67.89", "123aa+2-67.89"), 0);

        // Some corner cases.
        assert!(cmp("123.", "123") > 0);
        assert!(cmp("12_3", "123") < 0);
        assert!(cmp("12_3", "12") > 0);
        assert!(cmp("12_3", "12.3") > 0);
        assert!(cmp("123.0", "123") > 0);
        assert!(cmp("123_0", "123") > 0);
        assert!(cmp("123..0", "123.0") < 0);

        // Empty strings, or strings of ignored characters only.
        for (a, b) in [
            ("", ""),
            ("0_", "0"),
            ("_0_", "0"),
            ("_0", "0"),
            ("0", "0___"),
            ("", "_"),
            ("_", ""),
            ("_", "_"),
            ("~", "~"),
        ] {
            assert_eq!(cmp(a, b), 0, "{a:?} = {b:?}");
        }
        assert!(cmp("", "~") > 0);
        assert!(cmp("~", "") < 0);

        // Digits that are not ASCII are dropped.
        assert_eq!(cmp("1٠١٢٣٤٥٦٧٨٩", "1"), 0);
        assert_eq!(cmp("1๐๑๒๓๔๕๖๗๘๙", "1"), 0);
    }

    // systemd's TEST(strverscmp_improved_rpm), rpm's own cases with
    // systemd's differences marked there.
    #[test]
    fn systemd_strverscmp_improved_rpm() {
        for (a, b, expected) in [
            ("1.0", "1.0", 0),
            ("1.0", "2.0", -1),
            ("2.0", "1.0", 1),
            ("2.0.1", "2.0.1", 0),
            ("2.0", "2.0.1", -1),
            ("2.0.1", "2.0", 1),
            ("2.0.1a", "2.0.1a", 0),
            ("2.0.1a", "2.0.1", 1),
            ("2.0.1", "2.0.1a", -1),
            ("5.5p1", "5.5p1", 0),
            ("5.5p1", "5.5p2", -1),
            ("5.5p2", "5.5p1", 1),
            ("5.5p10", "5.5p10", 0),
            ("5.5p1", "5.5p10", -1),
            ("5.5p10", "5.5p1", 1),
            ("10xyz", "10.1xyz", 1),
            ("10.1xyz", "10xyz", -1),
            ("xyz10", "xyz10", 0),
            ("xyz10", "xyz10.1", -1),
            ("xyz10.1", "xyz10", 1),
            ("xyz.4", "xyz.4", 0),
            ("xyz.4", "8", -1),
            ("8", "xyz.4", 1),
            ("xyz.4", "2", -1),
            ("2", "xyz.4", 1),
            ("5.5p2", "5.6p1", -1),
            ("5.6p1", "5.5p2", 1),
            ("5.6p1", "6.5p1", -1),
            ("6.5p1", "5.6p1", 1),
            ("6.0.rc1", "6.0", 1),
            ("6.0", "6.0.rc1", -1),
            ("10b2", "10a1", 1),
            ("10a2", "10b2", -1),
            ("1.0aa", "1.0aa", 0),
            ("1.0a", "1.0aa", -1),
            ("1.0aa", "1.0a", 1),
            ("10.0001", "10.0001", 0),
            ("10.0001", "10.1", 0),
            ("10.1", "10.0001", 0),
            ("10.0001", "10.0039", -1),
            ("10.0039", "10.0001", 1),
            ("4.999.9", "5.0", -1),
            ("5.0", "4.999.9", 1),
            ("20101121", "20101121", 0),
            ("20101121", "20101122", -1),
            ("20101122", "20101121", 1),
            ("2_0", "2_0", 0),
            ("2.0", "2_0", -1),
            ("2_0", "2.0", 1),
            ("a", "a", 0),
            ("a+", "a+", 0),
            ("a+", "a_", 0),
            ("a_", "a+", 0),
            ("+a", "+a", 0),
            ("+a", "_a", 0),
            ("_a", "+a", 0),
            ("+_", "+_", 0),
            ("_+", "+_", 0),
            ("_+", "_+", 0),
            ("+", "_", 0),
            ("_", "+", 0),
            ("1.0~rc1", "1.0~rc1", 0),
            ("1.0~rc1", "1.0", -1),
            ("1.0", "1.0~rc1", 1),
            ("1.0~rc1", "1.0~rc2", -1),
            ("1.0~rc2", "1.0~rc1", 1),
            ("1.0~rc1~git123", "1.0~rc1~git123", 0),
            ("1.0~rc1~git123", "1.0~rc1", -1),
            ("1.0~rc1", "1.0~rc1~git123", 1),
            ("1.0^", "1.0^", 0),
            ("1.0^", "1.0", 1),
            ("1.0", "1.0^", -1),
            ("1.0^git1", "1.0^git1", 0),
            ("1.0^git1", "1.0", 1),
            ("1.0", "1.0^git1", -1),
            ("1.0^git1", "1.0^git2", -1),
            ("1.0^git2", "1.0^git1", 1),
            ("1.0^git1", "1.01", -1),
            ("1.01", "1.0^git1", 1),
            ("1.0^20160101", "1.0^20160101", 0),
            ("1.0^20160101", "1.0.1", -1),
            ("1.0.1", "1.0^20160101", 1),
            ("1.0^20160101^git1", "1.0^20160101^git1", 0),
            ("1.0^20160102", "1.0^20160101^git1", 1),
            ("1.0^20160101^git1", "1.0^20160102", -1),
            ("1.0~rc1^git1", "1.0~rc1^git1", 0),
            ("1.0~rc1^git1", "1.0~rc1", 1),
            ("1.0~rc1", "1.0~rc1^git1", -1),
            ("1.0^git1~pre", "1.0^git1~pre", 0),
            ("1.0^git1", "1.0^git1~pre", 1),
            ("1.0^git1~pre", "1.0^git1", -1),
            // rpm's oddities, kept by systemd on purpose.
            ("1b.fc17", "1b.fc17", 0),
            ("1b.fc17", "1.fc17", 1),
            ("1.fc17", "1b.fc17", -1),
            ("1g.fc17", "1g.fc17", 0),
            ("1g.fc17", "1.fc17", 1),
            ("1.fc17", "1g.fc17", -1),
            ("1.1.α", "1.1.α", 0),
            ("1.1.α", "1.1.β", 0),
            ("1.1.β", "1.1.α", 0),
            ("1.1.αα", "1.1.α", 0),
            ("1.1.α", "1.1.ββ", 0),
            ("1.1.ββ", "1.1.αα", 0),
        ] {
            assert_eq!(cmp(a, b), expected, "{a} vs {b}");
        }
    }

    #[test]
    fn versions_sysupdate_takes() {
        // systemd's TEST(version_is_valid).
        for good in ["0", "5", "999999", "999999.5", "6.2.12-300.fc38.x86_64"]
        {
            assert!(is_valid(good), "{good}");
        }
        assert!(is_valid("1,2+b_3"));
        for bad in ["", "1~rc1", "1^2", "1 0", "1/0", "é", &"1".repeat(256)] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
