/*!
The six compressors of squashfs 4.0, both ways, and the options block
that mksquashfs writes after the superblock when a compressor's settings
differ from its defaults (and always for lz4, to record its version).

Decoding serves every block of an image. Encoding serves only the
metadata the writer makes, so it aims at what every reader accepts rather
than at mksquashfs's ratio: each encoder stays within the limits the
options announce (the kernel's xz decoder allocates the dictionary the
options name and fails on a stream that needs more), and a block that
does not shrink is stored as it is, as mksquashfs does.

Each compressor's wire format, as `squashfs-tools` writes it:

- gzip (1): a zlib stream (RFC 1950), not a gzip file. Options: level
  (u32), window bits (u16), strategies (u16).
- lzma (2): the legacy "LZMA alone" format: 5 bytes of properties, the
  uncompressed size as u64 (mksquashfs fills it in, where liblzma writes
  all ones), then the raw stream. No options; the kernel cannot read it.
- lzo (3): lzo1x, any variant, without a header. Options: algorithm and
  level (u32 each).
- xz (4): an xz stream with a CRC32 check. Options: dictionary size (u32)
  and a bit set of branch filters (u32: x86 1, powerpc 2, ia64 4, arm 8,
  armthumb 16, sparc 32).
- lz4 (5): one LZ4 block, without frame or size prefix. Options: version
  (u32, 1 is the only one, "legacy") and flags (u32, 1 = high compression).
- zstd (6): one zstd frame. Options: level (u32).
*/

use std::fmt;

use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};
use liblzma::stream::{Action, Check, Filters, LzmaOptions, Stream};

use super::bytes::Cursor;
use super::error::{Error, ErrorKind, Result};

/// Decoders may allocate this much for their dictionaries; unsquashfs
/// allows 32 MiB, and a corrupt header must not make us allocate more.
const MEMLIMIT: u64 = 64 << 20;

/// A metadata block's size, which every decoder must be able to hold.
const BLOCK_OF_METADATA: u32 = 8192;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compressor {
    Gzip,
    Lzma,
    Lzo,
    Xz,
    Lz4,
    Zstd,
}

impl Compressor {
    pub const ALL: [Compressor; 6] = [
        Compressor::Gzip,
        Compressor::Lzma,
        Compressor::Lzo,
        Compressor::Xz,
        Compressor::Lz4,
        Compressor::Zstd,
    ];

    pub fn from_id(id: u16) -> Result<Compressor> {
        Ok(match id {
            1 => Compressor::Gzip,
            2 => Compressor::Lzma,
            3 => Compressor::Lzo,
            4 => Compressor::Xz,
            5 => Compressor::Lz4,
            6 => Compressor::Zstd,
            _ => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!("compressor id {id}, not one of 1 to 6"),
                )
                .at(20))
            }
        })
    }

    pub fn id(self) -> u16 {
        Compressor::ALL.iter().position(|c| *c == self).unwrap_or(0) as u16 + 1
    }

    /// As `mksquashfs -comp` names it.
    pub fn name(self) -> &'static str {
        match self {
            Compressor::Gzip => "gzip",
            Compressor::Lzma => "lzma",
            Compressor::Lzo => "lzo",
            Compressor::Xz => "xz",
            Compressor::Lz4 => "lz4",
            Compressor::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A compressor with its options, ready to decode and encode blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    compressor: Compressor,
    /// The options block's bytes as the image holds them, so that an
    /// image made from layers carries its layers' options unchanged.
    options: Option<Vec<u8>>,
    level: u32,
    /// xz only: the dictionary size every reader must be able to hold.
    dictionary: u32,
    xz_filters: u32,
    block_size: u32,
}

impl Codec {
    /// `options` is the content of the options block, if the superblock
    /// says there is one.
    pub fn new(
        compressor: Compressor,
        options: Option<&[u8]>,
        block_size: u32,
    ) -> Result<Codec> {
        let mut codec = Codec {
            compressor,
            options: options.map(<[u8]>::to_vec),
            level: match compressor {
                Compressor::Gzip => 9,
                Compressor::Zstd => 15,
                _ => 0,
            },
            dictionary: block_size,
            xz_filters: 0,
            block_size,
        };
        let Some(options) = options else { return Ok(codec) };
        let bad = |what: &str| {
            Error::corrupt(format!(
                "{compressor} options of {} bytes: {what}",
                options.len()
            ))
        };
        let expected = match compressor {
            Compressor::Zstd => 4,
            Compressor::Lzma => return Err(bad("lzma has no options")),
            _ => 8,
        };
        if options.len() != expected {
            return Err(bad(&format!("{expected} expected")));
        }
        let mut c = Cursor::new(options);
        let first = c.u32()?;
        match compressor {
            Compressor::Gzip => {
                if !(1..=9).contains(&first) {
                    return Err(bad(&format!("level {first}")));
                }
                codec.level = first;
            }
            Compressor::Zstd => {
                if !(1..=22).contains(&first) {
                    return Err(bad(&format!("level {first}")));
                }
                codec.level = first;
            }
            Compressor::Xz => {
                // The kernel takes 2^n or 3 * 2^n (`xz_wrapper.c`).
                let low = first & first.wrapping_neg();
                if !(8192..=1 << 30).contains(&first)
                    || (first != low && first != low * 3)
                {
                    return Err(bad(&format!("dictionary size {first}")));
                }
                codec.dictionary = first;
                codec.xz_filters = c.u32()?;
            }
            Compressor::Lz4 => {
                if first != 1 {
                    return Err(bad(&format!("lz4 version {first}, not 1")));
                }
            }
            Compressor::Lzo | Compressor::Lzma => {}
        }
        Ok(codec)
    }

    pub fn compressor(&self) -> Compressor {
        self.compressor
    }

    pub fn options(&self) -> Option<&[u8]> {
        self.options.as_deref()
    }

    /// Decodes one block into `out` (cleared first), which must come to
    /// at most `max` bytes.
    pub fn decompress(
        &self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<()> {
        out.clear();
        if input.is_empty() {
            return Err(Error::corrupt("an empty compressed block"));
        }
        let result = match self.compressor {
            Compressor::Gzip => inflate(input, out, max),
            Compressor::Lzma => unlzma(input, out, max),
            Compressor::Xz => unxz(input, out, max, self.max_dictionary()),
            Compressor::Lzo => {
                out.resize(max, 0);
                let (done, err) =
                    rust_lzo::LZOContext::decompress_to_slice(input, out);
                let len = done.len();
                out.truncate(len);
                (err == rust_lzo::LZOError::OK)
                    .then_some(())
                    .ok_or_else(|| "lzo: not a valid lzo1x stream".into())
            }
            Compressor::Lz4 => {
                out.resize(max, 0);
                lz4_flex::block::decompress_into(input, out)
                    .map(|len| out.truncate(len))
                    .map_err(|e| format!("lz4: {e}"))
            }
            Compressor::Zstd => unzstd(input, out, max, self.max_window()),
        };
        match result {
            Ok(()) if out.len() <= max => Ok(()),
            Ok(()) => Err(format!("more than {max} bytes")),
            Err(e) => Err(e),
        }
        .map_err(|e| {
            Error::corrupt(format!(
                "a {}-byte {} block does not decompress: {e}",
                input.len(),
                self.compressor
            ))
        })
    }

    /// The largest xz dictionary the kernel's decoder is set up for: the
    /// options' size, else the block size, and never less than a
    /// metadata block (`xz_wrapper.c`, `squashfs_xz_comp_opts`).
    fn max_dictionary(&self) -> u32 {
        match self.options {
            Some(_) => self.dictionary,
            None => self.dictionary.max(BLOCK_OF_METADATA),
        }
    }

    /// The largest zstd window the kernel's decoder is set up for, as a
    /// power of two: the block size, never less than a metadata block
    /// (`zstd_wrapper.c`, `zstd_init`).
    fn max_window(&self) -> u32 {
        self.block_size.max(BLOCK_OF_METADATA).trailing_zeros()
    }

    /// Encodes a metadata block; `None` when the result would not be
    /// smaller, so the caller stores the bytes as they are.
    pub fn compress(&self, input: &[u8]) -> Result<Option<Vec<u8>>> {
        let out = match self.compressor {
            Compressor::Gzip => deflate(input, self.level),
            Compressor::Lzma => lzma(input),
            Compressor::Xz => xz(input, self.dictionary, self.xz_filters),
            Compressor::Lzo => {
                let mut out =
                    Vec::with_capacity(rust_lzo::worst_compress(input.len()));
                let err =
                    rust_lzo::LZOContext::new().compress(input, &mut out);
                (err == rust_lzo::LZOError::OK)
                    .then_some(out)
                    .ok_or_else(|| "lzo1x_1 failed".to_string())
            }
            Compressor::Lz4 => Ok(lz4_flex::block::compress(input)),
            Compressor::Zstd => zstd::bulk::compress(input, self.level as i32)
                .map_err(|e| e.to_string()),
        }
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("{} compression failed: {e}", self.compressor),
            )
        })?;
        Ok((out.len() < input.len()).then_some(out))
    }
}

fn inflate(input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), String> {
    // One byte beyond the limit tells "too long" from "just fits".
    out.reserve(max + 1);
    match Decompress::new(true).decompress_vec(
        input,
        out,
        FlushDecompress::Finish,
    ) {
        Ok(Status::StreamEnd) => Ok(()),
        Ok(_) => Err("the zlib stream does not end".into()),
        Err(e) => Err(format!("zlib: {e}")),
    }
}

fn deflate(input: &[u8], level: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(input.len() + 64);
    let mut z = Compress::new(flate2::Compression::new(level), true);
    match z.compress_vec(input, &mut out, FlushCompress::Finish) {
        Ok(Status::StreamEnd) => Ok(out),
        Ok(_) => Ok(input.to_vec()),
        Err(e) => Err(e.to_string()),
    }
}

fn run_decoder(
    mut stream: Stream,
    input: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<(), String> {
    out.reserve(max + 1);
    match stream.process_vec(input, out, Action::Finish) {
        Ok(liblzma::stream::Status::StreamEnd) => Ok(()),
        Ok(_) => Err("the stream does not end".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// An xz stream as the kernel decodes it: one block, whose LZMA2
/// dictionary is at most `dictionary` (the kernel's decoder is set up
/// for that much and refuses more, `XZ_MEMLIMIT_ERROR`).
fn unxz(
    input: &[u8],
    out: &mut Vec<u8>,
    max: usize,
    dictionary: u32,
) -> Result<(), String> {
    let needed = xz_dictionary(input)?;
    if needed > dictionary {
        return Err(format!(
            "the stream needs a dictionary of {needed} bytes, the kernel \
             holds {dictionary}"
        ));
    }
    let stream =
        Stream::new_stream_decoder(MEMLIMIT, 0).map_err(|e| e.to_string())?;
    run_decoder(stream, input, out, max)?;
    let blocks = xz_blocks(input)?;
    if blocks != 1 {
        return Err(format!("{blocks} blocks in the stream, not 1"));
    }
    Ok(())
}

/// The LZMA2 dictionary size in the first block header of an xz stream
/// (the xz file format, 1.0.4: 2.1.1 stream header, 3.1 block header,
/// 5.3.1 LZMA2 properties).
fn xz_dictionary(stream: &[u8]) -> Result<u32, String> {
    let header = stream.get(12..).ok_or("shorter than an xz header")?;
    let size = usize::from(*header.first().ok_or("no block")?) * 4 + 4;
    let block = header.get(..size).ok_or("a cut block header")?;
    let flags = block[1];
    let mut at = 2;
    let varint = |at: &mut usize| -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..63).step_by(7) {
            let byte = *block.get(*at).ok_or("a cut block header")?;
            *at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint too long".into())
    };
    for present in [0x40, 0x80] {
        if flags & present != 0 {
            varint(&mut at)?;
        }
    }
    for _ in 0..=(flags & 3) {
        let id = varint(&mut at)?;
        let len = varint(&mut at)? as usize;
        let props = block.get(at..at + len).ok_or("a cut block header")?;
        at += len;
        if id == 0x21 {
            let p = *props.first().ok_or("no LZMA2 properties")?;
            return match p {
                0..=39 => Ok((2 | u32::from(p & 1)) << (p / 2 + 11)),
                40 => Ok(u32::MAX),
                _ => Err(format!("LZMA2 dictionary property {p}")),
            };
        }
    }
    Err("no LZMA2 filter in the first block".into())
}

/// The number of blocks an xz stream's index records (its footer's
/// backward size leads to it: the xz file format, 2.1.2 and 4).
fn xz_blocks(stream: &[u8]) -> Result<u64, String> {
    let footer = stream
        .len()
        .checked_sub(12)
        .and_then(|at| stream.get(at..))
        .ok_or("shorter than an xz footer")?;
    let backward = u32::from_le_bytes(footer[4..8].try_into().unwrap());
    let index_len = (u64::from(backward) + 1) * 4;
    let index = (stream.len() as u64)
        .checked_sub(12 + index_len)
        .and_then(|at| stream.get(at as usize..))
        .ok_or("an index larger than the stream")?;
    if index.first() != Some(&0) {
        return Err("no index where the footer says".into());
    }
    let mut count = 0u64;
    for (i, byte) in index[1..].iter().take(9).enumerate() {
        count |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(count);
        }
    }
    Err("a cut index".into())
}

/// A zstd frame as the kernel decodes it: with a window of at most
/// `2^window_log` bytes.
fn unzstd(
    input: &[u8],
    out: &mut Vec<u8>,
    max: usize,
    window_log: u32,
) -> Result<(), String> {
    let error = |e: std::io::Error| format!("zstd: {e}");
    let mut decoder = zstd::bulk::Decompressor::new().map_err(error)?;
    decoder
        .set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(window_log))
        .map_err(error)?;
    out.resize(max, 0);
    let len =
        decoder.decompress_to_buffer(input, &mut out[..]).map_err(error)?;
    out.truncate(len);
    Ok(())
}

/// LZMA alone, as squashfs-tools' `lzma_xz_wrapper.c` reads it: the
/// header's size field bounds the output.
fn unlzma(input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), String> {
    let size = input
        .get(5..13)
        .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
        .ok_or("shorter than the lzma header")?;
    if size > max as u64 {
        return Err(format!("the header claims {size} bytes"));
    }
    let stream =
        Stream::new_lzma_decoder(MEMLIMIT).map_err(|e| e.to_string())?;
    run_decoder(stream, input, out, max)
}

fn lzma(input: &[u8]) -> Result<Vec<u8>, String> {
    // mksquashfs's settings: preset 5, the dictionary as large as the
    // block (a metadata block here).
    let mut options = LzmaOptions::new_preset(5).map_err(|e| e.to_string())?;
    options.dict_size(8192);
    let mut stream =
        Stream::new_lzma_encoder(&options).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(input.len() + 64);
    run_encoder(&mut stream, input, &mut out)?;
    // LZMA alone leaves the size unknown (all ones); squashfs readers
    // take it from the header, as mksquashfs writes it.
    out.get_mut(5..13)
        .ok_or("no lzma header")?
        .copy_from_slice(&(input.len() as u64).to_le_bytes());
    Ok(out)
}

fn xz(input: &[u8], dictionary: u32, filters: u32) -> Result<Vec<u8>, String> {
    let mut options = LzmaOptions::new_preset(6).map_err(|e| e.to_string())?;
    // A metadata block is 8 KiB at most; no reader may be asked for more
    // dictionary than the image's options announce.
    options.dict_size(dictionary.clamp(4096, 8192));
    let mut chain = Filters::new();
    // The branch filters mksquashfs uses; each only helps machine code,
    // but a reader that knows the options expects nothing else.
    if filters & 1 != 0 {
        chain.x86();
    } else if filters & 2 != 0 {
        chain.powerpc();
    } else if filters & 4 != 0 {
        chain.ia64();
    } else if filters & 8 != 0 {
        chain.arm();
    } else if filters & 16 != 0 {
        chain.arm_thumb();
    } else if filters & 32 != 0 {
        chain.sparc();
    }
    chain.lzma2(&options);
    let mut stream = Stream::new_stream_encoder(&chain, Check::Crc32)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(input.len() + 128);
    run_encoder(&mut stream, input, &mut out)?;
    Ok(out)
}

fn run_encoder(
    stream: &mut Stream,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    loop {
        let consumed = stream.total_in() as usize;
        if out.len() == out.capacity() {
            out.reserve(4096);
        }
        match stream.process_vec(&input[consumed..], out, Action::Finish) {
            Ok(liblzma::stream::Status::StreamEnd) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..8192u32).map(|i| (i % 251 / 7) as u8).collect()
    }

    #[test]
    fn every_compressor_round_trips() {
        let input = sample();
        for compressor in Compressor::ALL {
            let codec = Codec::new(compressor, None, 4096).unwrap();
            let packed = codec.compress(&input).unwrap().unwrap();
            assert!(packed.len() < input.len(), "{compressor}");
            let mut out = Vec::new();
            codec.decompress(&packed, &mut out, 8192).unwrap();
            assert_eq!(out, input, "{compressor}");
            assert!(
                codec.decompress(&packed, &mut out, 8191).is_err(),
                "{compressor} honours the limit"
            );
        }
    }

    #[test]
    fn incompressible_input_is_left_alone() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for compressor in Compressor::ALL {
            let codec = Codec::new(compressor, None, 4096).unwrap();
            assert_eq!(codec.compress(&noise).unwrap(), None, "{compressor}");
        }
    }

    #[test]
    fn garbage_does_not_decompress() {
        let garbage = [0xffu8; 64];
        for compressor in Compressor::ALL {
            let codec = Codec::new(compressor, None, 4096).unwrap();
            let mut out = Vec::new();
            assert!(codec.decompress(&garbage, &mut out, 8192).is_err());
            assert!(codec.decompress(&[], &mut out, 8192).is_err());
        }
    }

    #[test]
    fn options_are_checked() {
        let zstd = Codec::new(Compressor::Zstd, Some(&[19, 0, 0, 0]), 4096);
        assert_eq!(zstd.unwrap().level, 19);
        assert!(Codec::new(Compressor::Zstd, Some(&[0; 4]), 4096).is_err());
        assert!(Codec::new(Compressor::Lz4, Some(&[2; 8]), 4096).is_err());
        assert!(Codec::new(Compressor::Lzma, Some(&[]), 4096).is_err());
        let xz = [0, 0, 1, 0, 1, 0, 0, 0];
        let xz = Codec::new(Compressor::Xz, Some(&xz), 4096).unwrap();
        assert_eq!((xz.dictionary, xz.xz_filters), (65536, 1));
        assert_eq!(Compressor::from_id(6).unwrap(), Compressor::Zstd);
        assert_eq!(Compressor::Zstd.id(), 6);
        assert!(Compressor::from_id(0).is_err());
    }
}
