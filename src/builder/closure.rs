/*!
The closure: every store path the image holds, with Nix's description of
it (NAR hash and size, references), sorted by path.

It comes from `exportReferencesGraph`, which gives each path once; the
builder still checks that no path is listed twice and that every reference
is itself in the closure, because an image missing a reference would fail
at run time, far from the cause.
*/

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::nix::path_info::PathInfo;
use crate::nix::store_path::StorePath;

#[derive(Debug, Default)]
pub struct Closure {
    paths: BTreeMap<StorePath, PathInfo>,
}

impl Closure {
    pub fn new(infos: Vec<PathInfo>) -> Result<Closure> {
        let mut paths = BTreeMap::new();
        for mut info in infos {
            info.references.sort();
            info.references.dedup();
            if let Some(old) = paths.insert(info.path.clone(), info) {
                bail!("the closure lists {} twice", old.path);
            }
        }
        for info in paths.values() {
            if let Some(missing) =
                info.references.iter().find(|r| !paths.contains_key(*r))
            {
                bail!(
                    "the closure is not complete: {} refers to {missing}, \
                     which it does not list",
                    info.path
                );
            }
        }
        Ok(Closure { paths })
    }

    pub fn paths(&self) -> impl Iterator<Item = &StorePath> {
        self.paths.keys()
    }

    pub fn infos(&self) -> impl Iterator<Item = &PathInfo> {
        self.paths.values()
    }

    pub fn contains(&self, path: &StorePath) -> bool {
        self.paths.contains_key(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, refs: &[&str]) -> PathInfo {
        let path = |n: &str| {
            StorePath::from_base_name(&format!("{}-{n}", "1".repeat(32)))
                .unwrap()
        };
        PathInfo {
            path: path(name),
            nar_hash: String::new(),
            nar_size: 100,
            references: refs.iter().map(|r| path(r)).collect(),
        }
    }

    #[test]
    fn sorts_and_checks() {
        let c =
            Closure::new(vec![info("bb", &["a"]), info("a", &["a"])]).unwrap();
        let names: Vec<_> = c.paths().map(|p| p.name()).collect();
        assert_eq!(names, ["a", "bb"]);
        let refs: Vec<_> = c.infos().map(|i| i.references.len()).collect();
        assert_eq!(refs, [1, 1]);
    }

    #[test]
    fn refuses_an_open_closure_or_a_duplicate() {
        let err = Closure::new(vec![info("bb", &["a"])]).unwrap_err();
        assert!(err.to_string().contains("which it does not list"), "{err}");
        let err =
            Closure::new(vec![info("a", &[]), info("a", &[])]).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }
}
