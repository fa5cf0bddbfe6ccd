/*!
What the build tells its log when it is done, in two lines:

```text
portable-service-builder: demo_1.0.raw: 2 store paths, 24 files, 2004106 bytes in, 860160 bytes of image (42.9%), 0.81 s (CPU: builder 0.02 s, mksquashfs 1.31 s)
portable-service-builder: summary {"image":"demo_1.0.raw","storePaths":2,...}
```

The first is for people; the second, JSON on one line after `summary `,
is what `bench/` reads. For a disk image, both say how much of the time
went into making it from the squashfs (the hash tree and the copy into
the root partition). The CPU times (user + system) are getrusage(2)'s,
of the builder and of the children it has waited for: they show how much
of a build is the builder's own work and how much mksquashfs's.
*/

use std::time::Duration;

use serde::Serialize;

/// The JSON line's prefix.
pub const SUMMARY_PREFIX: &str = "portable-service-builder: summary ";

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub image: String,
    pub store_paths: usize,
    /// Regular files streamed into the image, and their bytes.
    pub files: u64,
    pub bytes_in: u64,
    pub image_bytes: u64,
    pub seconds: f64,
    pub cpu_builder: f64,
    pub cpu_mksquashfs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_image_seconds: Option<f64>,
}

/// ", of which X s for the disk image", or nothing.
fn disk_image_part(seconds: Option<f64>) -> String {
    seconds.map_or(String::new(), |s| {
        format!(", of which {s:.2} s for the disk image")
    })
}

impl Summary {
    /// Both lines, each ending in a newline.
    pub fn render(&self) -> String {
        let ratio = if self.bytes_in == 0 {
            0.0
        } else {
            100.0 * self.image_bytes as f64 / self.bytes_in as f64
        };
        format!(
            "portable-service-builder: {}: {} store paths, {} files, {} \
             bytes in, {} bytes of image ({ratio:.1}%), {:.2} s{} (CPU: \
             builder {:.2} s, mksquashfs {:.2} s)\n{SUMMARY_PREFIX}{}\n",
            self.image,
            self.store_paths,
            self.files,
            self.bytes_in,
            self.image_bytes,
            self.seconds,
            disk_image_part(self.disk_image_seconds),
            self.cpu_builder,
            self.cpu_mksquashfs,
            serde_json::to_string(self).expect("a summary serialises"),
        )
    }
}

/// What the assembly of a layered image tells its log, in the same two
/// lines: `layers` in the JSON tells the two apart.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssemblySummary {
    pub image: String,
    pub layers: usize,
    /// Entries of the assembled tree.
    pub entries: u64,
    /// Compressed bytes copied from the layers, as they are.
    pub data_bytes: u64,
    pub image_bytes: u64,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_image_seconds: Option<f64>,
}

impl AssemblySummary {
    pub fn render(&self) -> String {
        format!(
            "portable-service-builder: {}: assembled from {} layers, {} \
             entries, {} bytes of compressed data copied, {} bytes of \
             image, {:.2} s{}\n{SUMMARY_PREFIX}{}\n",
            self.image,
            self.layers,
            self.entries,
            self.data_bytes,
            self.image_bytes,
            self.seconds,
            disk_image_part(self.disk_image_seconds),
            serde_json::to_string(self).expect("a summary serialises"),
        )
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTime {
    pub own: Duration,
    pub children: Duration,
}

impl CpuTime {
    pub fn now() -> CpuTime {
        CpuTime {
            own: usage(libc::RUSAGE_SELF),
            children: usage(libc::RUSAGE_CHILDREN),
        }
    }
}

fn usage(who: libc::c_int) -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        if libc::getrusage(who, usage.as_mut_ptr()) != 0 {
            return Duration::ZERO;
        }
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64)
            + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_own_work() {
        let before = CpuTime::now();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(CpuTime::now().own > before.own, "{x}");
    }

    #[test]
    fn renders_for_people_and_for_programs() {
        let summary = Summary {
            image: "demo_1.0.raw".into(),
            store_paths: 2,
            files: 24,
            bytes_in: 2000,
            image_bytes: 1000,
            seconds: 0.5,
            cpu_builder: 0.25,
            cpu_mksquashfs: 1.0,
            disk_image_seconds: None,
        };
        assert_eq!(
            summary.render(),
            "portable-service-builder: demo_1.0.raw: 2 store paths, 24 \
             files, 2000 bytes in, 1000 bytes of image (50.0%), 0.50 s \
             (CPU: builder 0.25 s, mksquashfs 1.00 s)\n\
             portable-service-builder: summary {\"image\":\"demo_1.0.raw\",\
             \"storePaths\":2,\"files\":24,\"bytesIn\":2000,\
             \"imageBytes\":1000,\"seconds\":0.5,\"cpuBuilder\":0.25,\
             \"cpuMksquashfs\":1.0}\n"
        );
        let disk_image =
            Summary { disk_image_seconds: Some(0.25), ..summary }.render();
        assert!(
            disk_image.contains(
                "0.50 s, of which 0.25 s for the disk image (CPU: builder"
            ),
            "{disk_image}"
        );
        assert!(
            disk_image.ends_with(",\"diskImageSeconds\":0.25}\n"),
            "{disk_image}"
        );
    }
}
