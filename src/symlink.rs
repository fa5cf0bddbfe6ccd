/*!
The `symlinks` argument: links in the image's root file system to objects
in the Nix store, for programs that expect `/bin/sh` or `/etc/ssl`.

A link must be an absolute, normalised path outside `/nix` and `/usr/nix`
(which hold the store) and outside `/etc/systemd/system` (portabled would read a link there
as a unit, and resolve it against the host). Collisions with the image's
own files and with other links are found when the tree is planned.

In an extension image a link must lie under `/usr` or `/opt`, the only
places systemd overlays on the base, and outside `/usr/lib/systemd/system`,
where the extension's units are.
*/

use anyhow::{bail, Context, Result};

use crate::nix::store_path::StorePath;
use crate::tree::ImagePath;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symlink {
    pub link: ImagePath,
    /// An absolute path in the store: a store path or a path inside one.
    pub object: String,
    pub object_store_path: StorePath,
}

impl Symlink {
    pub fn new(object: &str, symlink: &str) -> Result<Symlink> {
        if !symlink.starts_with('/') {
            bail!(
                "symlink '{symlink}' is relative: it must be an absolute path \
                 such as '/{symlink}'"
            );
        }
        let link = ImagePath::parse(symlink)
            .with_context(|| format!("symlink '{symlink}'"))?;
        let components = link.components();
        if components[0] == "nix"
            || components.starts_with(&["usr".into(), "nix".into()])
        {
            bail!(
                "symlink '{symlink}' lands in /nix or /usr/nix, which hold \
                 the image's Nix store"
            );
        }
        if link
            .components()
            .starts_with(&["etc", "systemd", "system"].map(String::from))
            && link.components().len() > 3
        {
            bail!(
                "symlink '{symlink}' lands in /etc/systemd/system, where \
                 portabled looks for units: pass units in `units`"
            );
        }
        let (object_store_path, _) = StorePath::split_absolute_path(object)
            .with_context(|| {
                format!(
                    "symlink '{symlink}' points to '{object}', which must be \
                     a path in the Nix store"
                )
            })?;
        Ok(Symlink { link, object: object.to_string(), object_store_path })
    }

    pub fn check_for_extension(&self) -> Result<()> {
        let components = self.link.components();
        if components[0] != "usr" && components[0] != "opt" {
            bail!(
                "symlink '{}' is outside /usr and /opt: systemd overlays only \
                 those of an extension image on its base",
                self.link
            );
        }
        if components.len() > 4
            && components[..4] == ["usr", "lib", "systemd", "system"]
        {
            bail!(
                "symlink '{}' lands in /usr/lib/systemd/system, where \
                 portabled looks for an extension's units: pass units in \
                 `units`",
                self.link
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SH: &str = "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-bash/bin/sh";

    #[test]
    fn accepts_links_into_the_store() {
        let s = Symlink::new(SH, "/bin/sh").unwrap();
        assert_eq!(s.link.to_string(), "/bin/sh");
        assert_eq!(s.object_store_path.name(), "bash");
        Symlink::new(SH, "/etc/systemd/user").unwrap();
    }

    #[test]
    fn refuses_bad_links() {
        for (symlink, rule) in [
            ("bin/sh", "is relative"),
            ("/usr/../bin/sh", "not a normalised path"),
            ("/usr/./sh", "not a normalised path"),
            ("/bin/", "not a normalised path"),
            ("/", "not a normalised path"),
            ("/nix", "lands in /nix"),
            ("/nix/store/x", "lands in /nix"),
            ("/usr/nix", "lands in /nix or /usr/nix"),
            ("/etc/systemd/system/demo.service", "/etc/systemd/system"),
        ] {
            let err = format!("{:#}", Symlink::new(SH, symlink).unwrap_err());
            assert!(err.contains(rule), "{symlink}: {err}");
            assert!(err.contains(&format!("'{symlink}'")), "{err}");
        }
        let err = format!(
            "{:#}",
            Symlink::new("/usr/bin/sh", "/bin/sh").unwrap_err()
        );
        assert!(err.contains("must be a path in the Nix store"), "{err}");
    }

    #[test]
    fn extension_links_stay_in_usr_and_opt() {
        let link = |l| Symlink::new(SH, l).unwrap().check_for_extension();
        link("/usr/bin/sh").unwrap();
        link("/opt/app").unwrap();
        let err = link("/bin/sh").unwrap_err().to_string();
        assert!(err.contains("'/bin/sh' is outside /usr and /opt"), "{err}");
        let err = link("/usr/lib/systemd/system/a.service").unwrap_err();
        assert!(err.to_string().contains("/usr/lib/systemd/system"), "{err}");
    }
}
