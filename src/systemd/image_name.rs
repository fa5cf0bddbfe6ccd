/*!
The image's file name, `<pname>_<version>.raw`, and the rules for its parts.

portablectl derives the unit prefix from the file name by cutting at the
first `_` and accepts only `[A-Za-z0-9.-]` in it; the whole name must be a
valid file name for portabled's image discovery (`image_name_is_valid()`),
and both parts end up in a Nix store path name.
*/

use anyhow::{bail, Result};

/// The longest file name Linux accepts.
const FILE_NAME_MAX: usize = 255;

/// Whether portablectl accepts `prefix` as a unit prefix: the characters
/// of `extract_prefix()` in its `src/portable/portablectl.c`.
fn is_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// Fails unless `pname` can be the image's prefix.
pub fn check_pname(pname: &str) -> Result<()> {
    if !is_prefix(pname) || pname.starts_with(['.', '-']) {
        bail!(
            "pname '{pname}' is not a valid image prefix: portablectl needs \
             one or more of [A-Za-z0-9.-], starting with a letter or digit \
             (and no '_', which separates the version)"
        );
    }
    Ok(())
}

/// Fails unless `version` keeps `<pname>_<version>.raw` a valid image name.
pub fn check_version(version: &str) -> Result<()> {
    let chars_ok = version
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if version.is_empty() || !chars_ok {
        bail!(
            "version '{version}' would break the image file name: it must be \
             one or more of [A-Za-z0-9._+-]"
        );
    }
    Ok(())
}

/// `<pname>_<version>.raw`, after checking both parts and the length.
pub fn file_name(pname: &str, version: &str) -> Result<String> {
    check_pname(pname)?;
    check_version(version)?;
    let name = format!("{pname}_{version}.raw");
    if name.len() > FILE_NAME_MAX {
        bail!(
            "image file name '{name}' is {} bytes long; the limit is \
             {FILE_NAME_MAX}",
            name.len()
        );
    }
    Ok(name)
}

/// The unit prefix portablectl derives from an image's file name: the
/// part before the first `_`, else the name without `.raw`.
pub fn prefix_of(file_name: &str) -> Result<String> {
    let prefix = match file_name.split_once('_') {
        Some((prefix, _)) => prefix,
        None => file_name.strip_suffix(".raw").unwrap_or(file_name),
    };
    if !is_prefix(prefix) {
        bail!(
            "portablectl cannot derive a unit prefix from the image name \
             '{file_name}': the part before the first '_' must be \
             [A-Za-z0-9.-]"
        );
    }
    Ok(prefix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names() {
        assert_eq!(file_name("demo", "1.0").unwrap(), "demo_1.0.raw");
        assert_eq!(
            file_name("my-app.v2", "2024.01_rc1+x").unwrap(),
            "my-app.v2_2024.01_rc1+x.raw"
        );
    }

    #[test]
    fn bad_names() {
        for pname in
            ["", "my_app", ".hidden", "-opt", "a b", "a/b", "ä", "a@b"]
        {
            let err = check_pname(pname).unwrap_err().to_string();
            assert!(err.contains(&format!("pname '{pname}'")), "{err}");
        }
        for version in ["", "1 0", "1/0", "1.0\n", "1~rc", "1:0"] {
            let err = check_version(version).unwrap_err().to_string();
            assert!(err.contains("would break the image file name"), "{err}");
        }
        let err = file_name(&"a".repeat(250), "1.0").unwrap_err().to_string();
        assert!(err.contains("the limit is 255"), "{err}");
    }

    #[test]
    fn prefixes_as_portablectl_derives_them() {
        assert_eq!(prefix_of("demo_1.0.raw").unwrap(), "demo");
        assert_eq!(prefix_of("demo.raw").unwrap(), "demo");
        assert_eq!(prefix_of("my-app_1_2.raw").unwrap(), "my-app");
        assert!(prefix_of("_1.raw").is_err());
        assert!(prefix_of("a b_1.raw").is_err());
    }
}
