/*!
Measures what `verify` will do on a large image: the NAR digest of every
top-level entry of the image, against `unsquashfs -d` extracting the same
image, both measured in the same run, alternating, several rounds. It also
times the whole image as one NAR: the worst case of a closure that is one
large store path, with no parallelism across paths.

    cargo run --release --example nar_bench -- [IMAGE [SOURCE [ROUNDS]]]

IMAGE defaults to `target/nar-bench/lib.raw`. When it does not exist it is
built with `mksquashfs SOURCE IMAGE -b 1M -comp xz -tailends` (the
builder's block size, mksquashfs' default xz, and the tail ends packed
into fragments as in the builder's images), SOURCE defaulting to
`/usr/lib/x86_64-linux-gnu` (about 690 MB on Debian 12); that takes a few
minutes. ROUNDS defaults to 3. Every digest is then checked against the
NAR of the extracted copy, so the numbers are for correct work.

The target: the digests take at most 1.5 times as long as the extraction.
Each round also reports the CPU time that other processes took meanwhile;
on a shared machine that explains a slow round.
*/

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use portable_service::image::reader::Image;
use portable_service::nix::nar::{host, NarDigest};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let image = PathBuf::from(
        args.next().unwrap_or_else(|| "target/nar-bench/lib.raw".into()),
    );
    let source = PathBuf::from(
        args.next().unwrap_or_else(|| "/usr/lib/x86_64-linux-gnu".into()),
    );
    let rounds: usize = match args.next() {
        Some(n) => n.parse().context("ROUNDS")?,
        None => 3,
    };
    if !image.exists() {
        build(&source, &image)?;
    }
    let image_size = fs::metadata(&image)?.len();
    let scratch = image.with_extension("extracted");

    let (mut extract, mut each, mut whole) = (vec![], vec![], vec![]);
    let mut digests = Vec::new();
    for round in 1..=rounds {
        remove(&scratch)?;
        let start = Sample::now();
        run(Command::new("unsquashfs")
            .args(["-q", "-n", "-d"])
            .arg(&scratch)
            .arg(&image))?;
        extract.push(start.elapsed());

        let start = Sample::now();
        digests = top_level_digests(&image)?;
        each.push(start.elapsed());

        let start = Sample::now();
        Image::open(&image)?.nar_digest(Path::new("/"))?;
        whole.push(start.elapsed());

        eprintln!(
            "round {round}: unsquashfs -d {}; digests {}: {:.2}x; one NAR {}: \
             {:.2}x",
            extract[round - 1],
            each[round - 1],
            each[round - 1].wall / extract[round - 1].wall,
            whole[round - 1],
            whole[round - 1].wall / extract[round - 1].wall,
        );
    }

    let nar_bytes: u64 = digests.iter().map(|(_, d)| d.size).sum();
    for (path, digest) in &digests {
        let extracted = scratch.join(path.strip_prefix("/")?);
        let expected = host::digest(&extracted)?;
        if *digest != expected {
            bail!("{}: image {digest}, extracted {expected}", path.display());
        }
    }
    remove(&scratch)?;

    println!(
        "image {} ({:.0} MB), {} top-level entries, {:.0} MB of NAR \
         (checked against the extracted tree)",
        image.display(),
        image_size as f64 / 1e6,
        digests.len(),
        nar_bytes as f64 / 1e6
    );
    println!("unsquashfs -d:                   {}", summary(&extract, None));
    println!(
        "digests of the top-level entries: {}",
        summary(&each, Some(&extract))
    );
    println!(
        "one NAR of the whole image:       {}",
        summary(&whole, Some(&extract))
    );
    println!(
        "target: digests <= 1.5x unsquashfs -d; peak memory {}",
        peak_memory()
    );
    Ok(())
}

/// The NAR digest of every entry of the image's root, as `verify` will
/// compute one per store path.
fn top_level_digests(image: &Path) -> Result<Vec<(PathBuf, NarDigest)>> {
    let image = Image::open(image)?;
    let top: Vec<PathBuf> = image
        .entries()
        .filter(|e| e.path.parent() == Some(Path::new("/")))
        .map(|e| e.path.to_path_buf())
        .collect();
    let digests = image.nar_digests(&top);
    top.into_iter().zip(digests).map(|(p, d)| Ok((p, d?))).collect()
}

/// The best wall-clock time of the rounds and, against `baseline`, the
/// ratio of the best times and the median ratio of the quiet rounds: those
/// in which other processes took less than a tenth of a core during both
/// measurements, so that the ratio compares the two and not the machine's
/// load.
fn summary(samples: &[Sample], baseline: Option<&[Sample]>) -> String {
    let best =
        |s: &[Sample]| s.iter().map(|s| s.wall).fold(f64::MAX, f64::min);
    let mut text = format!("best {:.2} s", best(samples));
    if let Some(baseline) = baseline {
        let ratio = best(samples) / best(baseline);
        text += &format!(", ratio of the best {ratio:.2}");
        let quiet = |s: &Sample| s.others < 0.1 * s.wall;
        let mut ratios: Vec<f64> = samples
            .iter()
            .zip(baseline)
            .filter(|(s, b)| quiet(s) && quiet(b))
            .map(|(s, b)| s.wall / b.wall)
            .collect();
        ratios.sort_by(f64::total_cmp);
        text += &match ratios.get(ratios.len() / 2) {
            Some(median) => format!(
                ", median ratio of {} quiet rounds {median:.2}",
                ratios.len()
            ),
            None => ", no quiet round (run more rounds)".to_string(),
        };
    }
    text
}

fn build(source: &Path, image: &Path) -> Result<()> {
    eprintln!("building {} from {}", image.display(), source.display());
    fs::create_dir_all(image.parent().unwrap_or(Path::new(".")))?;
    run(Command::new("mksquashfs")
        .arg(source)
        .arg(image)
        .args(["-noappend", "-quiet", "-no-progress", "-no-exports"])
        .args(["-no-xattrs", "-all-root", "-tailends"])
        .args(["-b", "1M", "-comp", "xz"]))
}

/// Removes an extracted tree, whose store-like directories are read-only.
fn remove(tree: &Path) -> Result<()> {
    if tree.exists() {
        run(Command::new("chmod").arg("-R").arg("u+w").arg(tree))?;
        fs::remove_dir_all(tree)
            .with_context(|| format!("removing {}", tree.display()))?;
    }
    Ok(())
}

fn run(command: &mut Command) -> Result<()> {
    let status =
        command.status().with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

/// Wall-clock and CPU seconds. CPU time is this process's and its waited-for
/// children's, so it also counts unsquashfs; on a shared machine it varies
/// less than the wall clock. `others` is the CPU time the rest of the
/// machine used meanwhile, which explains a slow round.
struct Sample {
    wall: f64,
    cpu: f64,
    others: f64,
}

struct Start {
    wall: Instant,
    cpu: f64,
    busy: f64,
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.2} s ({:.2} s CPU, others {:.2})",
            self.wall, self.cpu, self.others
        )
    }
}

impl Sample {
    fn now() -> Start {
        Start {
            wall: Instant::now(),
            cpu: cpu_seconds(),
            busy: machine_busy_seconds(),
        }
    }
}

impl Start {
    fn elapsed(&self) -> Sample {
        let cpu = cpu_seconds() - self.cpu;
        let busy = machine_busy_seconds() - self.busy;
        Sample {
            wall: self.wall.elapsed().as_secs_f64(),
            cpu,
            others: (busy - cpu).max(0.0),
        }
    }
}

/// CPU time the whole machine spent busy since boot, from /proc/stat.
fn machine_busy_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_ascii_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle, iowait.
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    busy as f64 / 100.0
}

/// User and system time of this process and its waited-for children, from
/// /proc/self/stat (fields 14 to 17, in clock ticks of 1/100 s on Linux).
fn cpu_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_ascii_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// This process's peak resident memory, from /proc.
fn peak_memory() -> String {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            Some(line["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
