"""What the benchmark scripts share: running commands and Nix builds,
logging, formatting figures, and writing a result table into BENCHMARKS.md
between a script's markers."""

import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDER = os.path.join(ROOT, "target/release/portable-service-builder")
NIX_BUILD = os.path.join(ROOT, "scripts/nix-build")

# The builder's machine-readable summary line (src/builder/summary.rs).
SUMMARY_PREFIX = "portable-service-builder: summary "


def logger(name):
    """A log function whose lines go to stderr, marked with `name`."""

    def log(message):
        print(f"[{name} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    return log


def sh(*args, **kw):
    """Runs a command, fails on failure, and returns its standard output."""
    kw.setdefault("check", True)
    kw.setdefault("text", True)
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(list(args), **kw).stdout


def instantiate(attrs, nonce="", extra_args=()):
    """The derivations of attributes of bench/default.nix, in order."""
    args = ["--argstr", "nonce", nonce, *extra_args]
    for attr in attrs:
        args += ["-A", attr]
    out = sh("nix-instantiate", os.path.join(ROOT, "bench"), *args, stderr=subprocess.DEVNULL)
    return out.split()


def timed_build(drv, *options):
    """Builds `drv` with scripts/nix-build: (wall seconds, output path,
    build log); exits with the log's end if the build fails."""
    start = time.monotonic()
    proc = subprocess.run([NIX_BUILD, "--no-out-link", *options, drv],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"building {drv} failed:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout.strip(), proc.stderr


def build_inputs(drv):
    """Builds what `drv` needs (a benchmark's closure, reused when already
    built), so that timing `drv` times only its own build."""
    inputs = [d for d in sh("nix-store", "-q", "--references", drv).split() if d.endswith(".drv")]
    sh(NIX_BUILD, "--no-out-link", *inputs, stdout=subprocess.DEVNULL)


def image_in(out):
    """The image file in the output `out`."""
    return os.path.join(out, next(n for n in os.listdir(out) if n.endswith(".raw")))


def delete(paths):
    """Deletes store paths, so that the next build makes them again."""
    for path in paths:
        subprocess.run(["nix-store", "--delete", path],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summaries(log_text):
    """The builder's summaries in a build log, as dicts, in order (a layered
    image's build has the final layer's, then the assembly's)."""
    import json

    return [json.loads(line[len(SUMMARY_PREFIX):])
            for line in log_text.splitlines() if line.startswith(SUMMARY_PREFIX)]


def summary(log_text):
    """The builder's last summary in a build log, as a dict, or None."""
    found = summaries(log_text)
    return found[-1] if found else None


def median(values):
    values = list(values)
    return statistics.median(values) if values else None


def seconds(x):
    return f"{x:.1f} s" if x >= 10 else f"{x:.2f} s"


def size(x):
    if x < 1 << 20:
        return f"{x / 1024:.0f} KiB"
    return f"{x / (1 << 20):.1f} MiB"


def machine_line():
    """The machine, in one sentence, for the tables."""
    cpu = sh("sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    return f"{cpu}, {os.cpu_count()} cores, kernel {os.uname().release}"


def write_results(script, table):
    """Puts `table` into BENCHMARKS.md between the markers of `script`
    (made at the end of the file when it has none yet)."""
    begin = f"<!-- {script} results: begin -->"
    end = f"<!-- {script} results: end -->"
    path = os.path.join(ROOT, "BENCHMARKS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    before, rest = text.split(begin, 1)
    after = rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(f"{before}{begin}\n{table.rstrip()}\n{end}{after}")
