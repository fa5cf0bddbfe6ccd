/*!
The `symlinks` argument: links in the image's root file system to objects
in the Nix store, for programs that expect `/bin/sh` or `/etc/ssl`.

A link must be an absolute, normalised path, not at or under one of the
layout's reserved paths: the store (`/nix`, `/usr/nix`), any directory
portabled reads units from (it would read a link there as a unit, past
every check on units, and resolve it against the host), and
`/usr/lib/os-release`. In an extension image a link must lie under `/usr`
or `/opt`, the only places systemd overlays on the base. Collisions with
the image's own files and with other links are found when the tree is
planned.
*/

use std::fs;
use std::path::Path;

use anyhow::{bail, Result};

use crate::builder::placement;
use crate::builder::tree::{ImagePath, Node, Tree};
use crate::layout::layout;
use crate::nix::store_path::StorePath;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symlink {
    pub link: ImagePath,
    /// An absolute path in the store: a store path or a path inside one.
    pub object: String,
    pub object_store_path: StorePath,
}

impl Symlink {
    /// Checks a symlink of a full image, or of an extension image when
    /// `extension`.
    pub fn new(
        object: &str,
        symlink: &str,
        extension: bool,
    ) -> Result<Symlink> {
        let link = placement::check(
            &format!("symlink '{symlink}'"),
            symlink,
            extension,
        )?;
        let Ok((object_store_path, _)) =
            StorePath::split_absolute_path(object)
        else {
            bail!(
                "symlink '{symlink}' points to '{object}', which must be a \
                 path in the Nix store"
            );
        };
        Ok(Symlink { link, object: object.to_string(), object_store_path })
    }
}

/// Fails if a symlink of the planned tree makes a directory portabled
/// reads units from resolve into the store, where there are files: a link
/// `/lib -> ${pkgs.foo}/lib` would let portabled attach
/// `${pkgs.foo}/lib/systemd/system/foo.service`, past every check on
/// units. Reads the store, where the links point.
pub fn check_no_units_through(tree: &Tree) -> Result<()> {
    for dir in &layout().portabled_unit_dirs {
        let path = ImagePath::parse(dir).expect("the layout is normalised");
        let components = path.components();
        for depth in 1..=components.len() {
            let at = ImagePath::parse(&components[..depth].join("/"))
                .expect("a prefix of a normalised path");
            let Some(Node::Symlink { target }) = tree.get(&at) else {
                continue;
            };
            let rest = components[depth..].join("/");
            let resolved = Path::new(target).join(&rest);
            let has_files = fs::read_dir(&resolved)
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false);
            if has_files {
                bail!(
                    "symlink '{at}' -> '{target}' makes portabled read units \
                     from {}, past every check on units: link to a path \
                     without a {rest} directory, or pass the units in `units`",
                    resolved.display()
                );
            }
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SH: &str = "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-bash/bin/sh";

    #[test]
    fn accepts_links_into_the_store() {
        let s = Symlink::new(SH, "/bin/sh", false).unwrap();
        assert_eq!(s.link.to_string(), "/bin/sh");
        assert_eq!(s.object_store_path.name(), "bash");
        Symlink::new(SH, "/etc/systemd/user", false).unwrap();
    }

    #[test]
    fn refuses_bad_links() {
        for (symlink, rule) in [
            ("bin/sh", "is relative"),
            ("/usr/../bin/sh", "not a normalised path"),
            ("/usr/./sh", "not a normalised path"),
            ("/bin/", "not a normalised path"),
            ("/", "not a normalised path"),
            ("/nix", "lands in /nix, which holds the image's Nix store"),
            ("/nix/store/x", "lands in /nix, "),
            ("/usr/nix", "lands in /usr/nix, "),
        ] {
            let err =
                format!("{:#}", Symlink::new(SH, symlink, false).unwrap_err());
            assert!(err.contains(rule), "{symlink}: {err}");
            assert!(err.contains(&format!("'{symlink}'")), "{err}");
        }
        let err = format!(
            "{:#}",
            Symlink::new("/usr/bin/sh", "/bin/sh", false).unwrap_err()
        );
        assert!(err.contains("must be a path in the Nix store"), "{err}");
    }

    /// A link in any directory portabled reads units from would put a unit
    /// in the image past every check on units; one at /usr/lib/os-release
    /// would stand beside the image's own /etc/os-release.
    #[test]
    fn refuses_links_where_portabled_reads_units_or_os_release() {
        for dir in &layout().portabled_unit_dirs {
            for symlink in [dir.clone(), format!("{dir}/demo.service")] {
                let err =
                    Symlink::new(SH, &symlink, false).unwrap_err().to_string();
                assert_eq!(
                    err,
                    format!(
                        "symlink '{symlink}' lands in {dir}, where portabled \
                         looks for units: pass units in `units`"
                    )
                );
            }
        }
        let err = Symlink::new(SH, "/usr/lib/os-release", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("lands in /usr/lib/os-release, "), "{err}");
        Symlink::new(SH, "/usr/lib/systemd/user", false).unwrap();
        Symlink::new(SH, "/usr/lib/os-release.d", false).unwrap();
    }

    #[test]
    fn refuses_links_that_lead_portabled_to_units() {
        let store = tempfile::tempdir().unwrap();
        let lib = store.path().join("lib");
        std::fs::create_dir_all(lib.join("systemd/system")).unwrap();
        let mut tree = Tree::new();
        let target = lib.display().to_string();
        let link = Node::Symlink { target: target.clone() };
        tree.insert(ImagePath::parse("/lib").unwrap(), link).unwrap();
        // An empty unit directory gives portabled nothing.
        check_no_units_through(&tree).unwrap();
        std::fs::write(lib.join("systemd/system/x.service"), "").unwrap();
        let err = check_no_units_through(&tree).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "symlink '/lib' -> '{target}' makes portabled read units \
                 from {target}/systemd/system, past every check on units: \
                 link to a path without a systemd/system directory, or pass \
                 the units in `units`"
            )
        );
    }

    #[test]
    fn extension_links_stay_in_usr_and_opt() {
        let link = |l| Symlink::new(SH, l, true);
        link("/usr/bin/sh").unwrap();
        link("/opt/app").unwrap();
        let err = link("/bin/sh").unwrap_err().to_string();
        assert!(err.contains("'/bin/sh' is outside /usr and /opt"), "{err}");
        let err = link("/optional").unwrap_err().to_string();
        assert!(err.contains("is outside /usr and /opt"), "{err}");
    }
}
