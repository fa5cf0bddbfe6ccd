/*!
The `squash-compression` and `squash-block-size` arguments.

`squash-compression` is a compressor name and its own `-X...` options, as
`mksquashfs -comp` takes them ("xz -Xdict-size 100%"). Anything else that
starts with `-` is refused, so that the argument cannot smuggle other
mksquashfs options in. The block size is a power of two from 4 KiB to
1 MiB, in bytes or with a K or M suffix, as `mksquashfs -b` takes it.
*/

use anyhow::{bail, Result};

/// mksquashfs also writes lzma, which the kernel does not read
/// (`fs/squashfs/decompressor.c` has no lzma decompressor).
pub const COMPRESSORS: [&str; 5] = ["gzip", "lz4", "lzo", "xz", "zstd"];

const BLOCK_MIN: u64 = 4 << 10;
const BLOCK_MAX: u64 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compression {
    pub compressor: String,
    /// Passed to mksquashfs after `-comp <compressor>`, as given.
    pub options: Vec<String>,
}

impl Compression {
    pub fn parse(spec: &str) -> Result<Compression> {
        let mut words = spec.split_ascii_whitespace();
        let compressor = words.next().unwrap_or_default();
        if compressor == "lzma" {
            bail!(
                "squash-compression '{spec}' names lzma, which the Linux \
                 kernel does not read: portabled could not attach the image; \
                 use xz"
            );
        }
        if !COMPRESSORS.contains(&compressor) {
            bail!(
                "squash-compression '{spec}' names an unknown compressor \
                 '{compressor}': use one of {}",
                COMPRESSORS.join(", ")
            );
        }
        let options: Vec<String> = words.map(str::to_string).collect();
        if let Some(bad) =
            options.iter().find(|o| o.starts_with('-') && !o.starts_with("-X"))
        {
            bail!(
                "squash-compression '{spec}' has the option '{bad}': only \
                 the compressor's own -X options may follow its name"
            );
        }
        Ok(Compression { compressor: compressor.to_string(), options })
    }

    /// The arguments for mksquashfs: `-comp <compressor> <options...>`.
    pub fn mksquashfs_args(&self) -> Vec<String> {
        let mut args = vec!["-comp".to_string(), self.compressor.clone()];
        args.extend(self.options.iter().cloned());
        args
    }
}

/// Parses a block size such as "1M", "128K" or "131072" into bytes.
pub fn parse_block_size(spec: &str) -> Result<u32> {
    let (digits, unit) = match spec.char_indices().last() {
        Some((i, 'K' | 'k')) => (&spec[..i], 1 << 10),
        Some((i, 'M' | 'm')) => (&spec[..i], 1 << 20),
        _ => (spec, 1),
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.checked_mul(unit));
    match bytes {
        Some(b)
            if b.is_power_of_two() && (BLOCK_MIN..=BLOCK_MAX).contains(&b) =>
        {
            Ok(b as u32)
        }
        _ => bail!(
            "squash-block-size '{spec}' is not a power of two from 4K to 1M \
             (write it in bytes or with a K or M suffix, as in \"128K\")"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compression() {
        let c = Compression::parse("xz -Xdict-size 100%").unwrap();
        assert_eq!(
            c.mksquashfs_args(),
            ["-comp", "xz", "-Xdict-size", "100%"]
        );
        let c = Compression::parse("zstd").unwrap();
        assert_eq!(c.mksquashfs_args(), ["-comp", "zstd"]);
        let c = Compression::parse("xz -Xbcj x86,arm").unwrap();
        assert_eq!(c.options, ["-Xbcj", "x86,arm"]);
    }

    #[test]
    fn refuses_bad_compression() {
        for (spec, rule) in [
            ("", "unknown compressor ''"),
            ("brotli", "unknown compressor 'brotli'"),
            ("-comp xz", "unknown compressor '-comp'"),
            ("xz -e /etc", "has the option '-e'"),
            ("zstd -processors 1", "has the option '-processors'"),
        ] {
            let err = Compression::parse(spec).unwrap_err().to_string();
            assert!(err.contains(rule), "{spec}: {err}");
        }
    }

    #[test]
    fn parses_block_sizes() {
        assert_eq!(parse_block_size("1M").unwrap(), 1 << 20);
        assert_eq!(parse_block_size("128K").unwrap(), 128 << 10);
        assert_eq!(parse_block_size("4k").unwrap(), 4096);
        assert_eq!(parse_block_size("65536").unwrap(), 65536);
        for bad in
            ["", "M", "2M", "2K", "100K", "0", "1.5M", "+4K", "1G", "-1M"]
        {
            let err = parse_block_size(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }
}
