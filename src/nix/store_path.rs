/*!
Nix store paths: `/nix/store/<digest>-<name>`.

The digest is 32 characters of Nix's base-32 alphabet and the name follows
Nix's rules (at most 211 bytes of `[A-Za-z0-9+-._?=]`, not starting with a
dot). A `StorePath` is always valid; parsing is the only way to make one.
*/

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::nix::nixbase32;

pub const NIX_STORE_DIR: &str = "/nix/store";

const DIGEST_LEN: usize = 32;
const NAME_MAX: usize = 211;

/// Why a path is not a store path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("'{0}' is not in the Nix store {NIX_STORE_DIR}")]
    NotInStore(String),
    #[error("'{0}' is inside a store path, not a store path itself")]
    InsideStorePath(String),
    #[error(
        "'{0}' is not a store path name: it must start with {DIGEST_LEN} \
         base-32 characters and '-'"
    )]
    Digest(String),
    #[error(
        "'{0}' is not a store path name: the name must be at most \
         {NAME_MAX} characters of [A-Za-z0-9+-._?=] and not start with '.'"
    )]
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct StorePath {
    /// `<digest>-<name>`, the entry's name in the store directory.
    base_name: String,
}

impl StorePath {
    /// Parses the absolute path of a store path itself (no sub-path).
    pub fn from_absolute_path(path: &str) -> Result<StorePath, Error> {
        let (store_path, rest) = StorePath::split_absolute_path(path)?;
        if !rest.is_empty() {
            return Err(Error::InsideStorePath(path.to_string()));
        }
        Ok(store_path)
    }

    /// Splits `/nix/store/<digest>-<name>/sub/path` into the store path and
    /// the sub-path (`/sub/path`, or empty).
    pub fn split_absolute_path(
        path: &str,
    ) -> Result<(StorePath, &str), Error> {
        let Some(rest) = path
            .strip_prefix(NIX_STORE_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            return Err(Error::NotInStore(path.to_string()));
        };
        let (base_name, sub_path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        Ok((StorePath::from_base_name(base_name)?, sub_path))
    }

    /// Parses `<digest>-<name>`, an entry of the store directory.
    pub fn from_base_name(base_name: &str) -> Result<StorePath, Error> {
        let bytes = base_name.as_bytes();
        let digest_ok = bytes.len() > DIGEST_LEN + 1
            && bytes[..DIGEST_LEN]
                .iter()
                .all(|b| nixbase32::ALPHABET.contains(b))
            && bytes[DIGEST_LEN] == b'-';
        if !digest_ok {
            return Err(Error::Digest(base_name.to_string()));
        }
        let name = &base_name[DIGEST_LEN + 1..];
        let name_ok = name.len() <= NAME_MAX
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-._?=".contains(&b));
        if !name_ok {
            return Err(Error::Name(base_name.to_string()));
        }
        Ok(StorePath { base_name: base_name.to_string() })
    }

    /// `<digest>-<name>`.
    pub fn base_name(&self) -> &str {
        &self.base_name
    }

    /// The name without the digest, as in `hello-2.12`.
    pub fn name(&self) -> &str {
        &self.base_name[DIGEST_LEN + 1..]
    }

    pub fn to_absolute_path(&self) -> String {
        format!("{NIX_STORE_DIR}/{}", self.base_name)
    }
}

impl TryFrom<String> for StorePath {
    type Error = Error;

    fn try_from(path: String) -> Result<StorePath, Error> {
        StorePath::from_absolute_path(&path)
    }
}

impl Serialize for StorePath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{NIX_STORE_DIR}/{}", self.base_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-hello";

    #[test]
    fn parses_a_store_path_and_its_parts() {
        let p = StorePath::from_absolute_path(HELLO).unwrap();
        assert_eq!(p.name(), "hello");
        assert_eq!(p.base_name(), "4nfb4995bpj54nsc3abjm3z60f0nfwgf-hello");
        assert_eq!(p.to_absolute_path(), HELLO);
    }

    #[test]
    fn splits_a_sub_path() {
        let path = format!("{HELLO}/bin/hello");
        let (p, sub) = StorePath::split_absolute_path(&path).unwrap();
        assert_eq!(p.to_absolute_path(), HELLO);
        assert_eq!(sub, "/bin/hello");
        assert!(StorePath::from_absolute_path(&path).is_err());
    }

    #[test]
    fn rejects_what_nix_rejects() {
        for bad in [
            "/nix/store",
            "/nix/store/",
            "/usr/bin/hello",
            "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwg-hello",
            "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgu-hello",
            "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-",
            "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-.hidden",
            "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-demo@.service",
        ] {
            assert!(StorePath::from_absolute_path(bad).is_err(), "{bad}");
        }
        let digest = "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgu-hello";
        assert_eq!(
            StorePath::from_absolute_path(digest),
            Err(Error::Digest(digest["/nix/store/".len()..].into()))
        );
        let name = "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-demo@.service";
        assert_eq!(
            StorePath::from_absolute_path(name),
            Err(Error::Name(name["/nix/store/".len()..].into()))
        );
        assert_eq!(
            StorePath::from_absolute_path("/usr/bin/hello"),
            Err(Error::NotInStore("/usr/bin/hello".into()))
        );
        let inside = format!("{HELLO}/bin/hello");
        assert_eq!(
            StorePath::from_absolute_path(&inside),
            Err(Error::InsideStorePath(inside.clone()))
        );
    }
}
