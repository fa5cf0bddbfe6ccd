/*!
What a host gets to follow a feed: `passthru.sysupdate`'s tree, laid over
the host's `/` (`cp -rT result/ /`), for the image name (component) NAME:

```text
etc/sysupdate.NAME.d/NAME.transfer        what systemd-sysupdate installs
etc/sysupdate.NAME.d/NAME.conf            the same, for systemd before 257
etc/systemd/system/portable-update@.service   runs `portable-update update %i`
etc/systemd/system/portable-update@.timer     every hour
etc/systemd/system/timers.target.wants/portable-update@NAME.timer -> /etc/systemd/system/portable-update@.timer
usr/local/sbin/portable-update            installs, moves attachments, rolls back
```

The transfer: a `url-file` source, the feed at the URL (whose
`SHA256SUMS` sysupdate reads, and whose signature it checks unless
`Verify=no`), and a `regular-file` target in `/var/lib/portables`, where
portabled finds images, both matching `NAME_@v.raw`, keeping
`InstancesMax=` versions (2 by default: the one running and the one
before, for a rollback). The images stay flat, `NAME_VERSION.raw`, one per
version, rather than in a `NAME.raw.v/` directory: portabled resolves such
a directory to its newest entry only when an image is attached
(`portable_extract()`, `path_pick()`, systemd 256 and later), and records
that entry's path in the attachment, so a new version takes a reattach
either way, and a rollback one to a named file; flat files work with every
systemd (252 too, by hand), show every installed version in `portablectl
list`, and can be named in `reattach`.

systemd-sysupdate reads `*.transfer` definitions from 257 on, and only
when it finds none reads `*.conf` (`context_read_definitions()` in
`src/sysupdate/sysupdate.c`, 257 and 262 alike); before 257 it reads
`*.conf` only. One tree with both files therefore suits every version,
and 257 and later say nothing about the `.conf` file.

The script and the units are the same for every component, so that the
trees of several images (a base and its extensions) lay over one another.
*/

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::systemd::image_name;

/// The script, `usr/local/sbin/portable-update`.
pub const SCRIPT: &str = include_str!("portable-update");
/// The service and the timer, templates on the component's name.
pub const SERVICE: &str = include_str!("portable-update@.service");
pub const TIMER: &str = include_str!("portable-update@.timer");

/// The fewest versions a host keeps: the one running and the one before.
pub const INSTANCES_MIN: u32 = 2;

/// What `passthru.sysupdate` asks for (the job `kind = "sysupdate"`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostAttrs {
    /// The image name, which is the component's.
    pub pname: String,
    /// Where the feed is served.
    pub url: String,
    /// Whether the feed's signature is checked.
    pub verify: bool,
    /// `InstancesMax=`.
    pub instances_max: u32,
}

/// Fails unless systemd-sysupdate takes `url` for its source's `Path=`:
/// http, https (or file, which it takes for tests), and nothing a unit
/// file line could not hold.
pub fn check_url(url: &str) -> Result<()> {
    let scheme_ok = ["http://", "https://", "file://"]
        .iter()
        .any(|s| url.starts_with(s) && url.len() > s.len());
    if !scheme_ok {
        bail!(
            "url '{url}' is not a feed systemd-sysupdate can read: it takes \
             http:// and https:// URLs (and file:// ones, for tests)"
        );
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!(
            "url {url:?} holds a space or a control character, which a \
             URL cannot hold"
        );
    }
    Ok(())
}

/// The transfer definition of component `pname`. `%` is doubled:
/// sysupdate expands specifiers in `Path=`.
pub fn transfer(attrs: &HostAttrs) -> String {
    let HostAttrs { pname, url, verify, instances_max, .. } = attrs;
    let verify = if *verify { "yes" } else { "no" };
    let url = url.replace('%', "%%");
    format!(
        "\
# What systemd-sysupdate installs for the portable service image {pname}:
# NAME_VERSION.raw files from the feed that `portable-service-builder
# publish` writes (its SHA256SUMS, signed in SHA256SUMS.gpg), into the
# directory portabled finds images in. Written by portableService's
# passthru.sysupdate; portable-update@{pname}.service runs it.
[Transfer]
# Verify=no is for tests: anyone who can answer for the URL could then
# give this host a service to run.
Verify={verify}

[Source]
Type=url-file
Path={url}
MatchPattern={pname}_@v.raw

[Target]
Type=regular-file
Path=/var/lib/portables
MatchPattern={pname}_@v.raw
# The version running and the one before it, for a rollback; the running
# one is never removed (portable-update protects it).
InstancesMax={instances_max}
"
    )
}

/// Writes the tree into `out`, a directory that need not exist yet.
pub fn write(attrs: &HostAttrs, out: &Path) -> Result<()> {
    image_name::check_pname(&attrs.pname)?;
    check_url(&attrs.url)?;
    if attrs.instances_max < INSTANCES_MIN {
        bail!(
            "instancesMax = {} would keep no version to roll back to: give \
             {INSTANCES_MIN} or more",
            attrs.instances_max
        );
    }
    let pname = &attrs.pname;
    let transfer = transfer(attrs);
    let sysupdate = format!("etc/sysupdate.{pname}.d");
    for (path, text, mode) in [
        (format!("{sysupdate}/{pname}.transfer"), transfer.as_str(), 0o444),
        (format!("{sysupdate}/{pname}.conf"), transfer.as_str(), 0o444),
        ("etc/systemd/system/portable-update@.service".into(), SERVICE, 0o444),
        ("etc/systemd/system/portable-update@.timer".into(), TIMER, 0o444),
        ("usr/local/sbin/portable-update".into(), SCRIPT, 0o555),
    ] {
        write_file(&out.join(path), text, mode)?;
    }
    let wants = out.join("etc/systemd/system/timers.target.wants");
    fs::create_dir_all(&wants)
        .with_context(|| format!("cannot create {}", wants.display()))?;
    let link = wants.join(format!("portable-update@{pname}.timer"));
    // Where `systemctl enable` points it: systemctl is-enabled does not
    // take a relative link for the unit enabled (systemd 262).
    symlink("/etc/systemd/system/portable-update@.timer", &link)
        .with_context(|| format!("cannot create {}", link.display()))?;
    Ok(())
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    fs::write(path, text)
        .and_then(|()| {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
        })
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(url: &str, verify: bool) -> HostAttrs {
        HostAttrs {
            pname: "app".into(),
            url: url.into(),
            verify,
            instances_max: 2,
        }
    }

    #[test]
    fn transfer_definition() {
        let text = transfer(&attrs("https://example.com/a%20b/", true));
        for line in [
            "Verify=yes",
            "Type=url-file",
            "Path=https://example.com/a%%20b/",
            "MatchPattern=app_@v.raw",
            "Type=regular-file",
            "Path=/var/lib/portables",
            "InstancesMax=2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
        }
        let text = transfer(&attrs("http://127.0.0.1:8000/", false));
        assert!(text.lines().any(|l| l == "Verify=no"), "{text}");
    }

    #[test]
    fn urls_sysupdate_takes() {
        for good in ["https://a/", "http://127.0.0.1:8000/feed", "file:///srv"]
        {
            check_url(good).unwrap();
        }
        for (bad, why) in [
            ("ftp://a/", "takes http:// and https://"),
            ("https://", "takes http:// and https://"),
            ("/srv/feed", "takes http:// and https://"),
            ("https://a/ b", "holds a space"),
            ("https://a/\nb", "holds a space or a control"),
        ] {
            let err = check_url(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
