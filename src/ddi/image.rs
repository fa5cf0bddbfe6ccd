//! Building, reading, verifying and signing a whole image; the layout and
//! the derivations are described in the parent module.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use super::dps::Architecture;
use super::gpt::{self, Gpt, Guid, Partition, Structure, SECTOR};
use super::signature::{Certificate, Openssl, Signer, Verdict};
use super::verity::{self, Geometry, RootHash, Side, Superblock};
use super::{derive_guid, Error, ErrorKind};
use super::{DISK_GUID, VERITY_SIG_GUID, VERITY_SUPERBLOCK_UUID};
use crate::atomic_write;
use crate::squashfs::superblock;

/// The signature partition's size: systemd-repart's `VERITY_SIG_SIZE`,
/// 16 KiB (systemd-stable v252.31 `src/partition/repart.c:82`).
const VERITY_SIG_SIZE: u64 = 16 * 1024;
/// The largest signature partition systemd reads
/// (`dissected_image_load_verity_sig_partition()`,
/// `src/shared/dissect-image.c:2734` at v252.31).
const VERITY_SIG_MAX: u64 = 4 * 1024 * 1024;
/// Where partitions start, and the grain they are aligned to.
const FIRST_PARTITION: u64 = gpt::FIRST_USABLE_LBA * SECTOR;
const GRAIN: u64 = 4096;
/// How much data is read, hashed and written at a time: large enough
/// that the parallel hashing of one chunk dwarfs starting it.
const CHUNK: usize = 8 << 20;

/// An image's structure, as [`Ddi::read`] finds it or [`build`] and
/// [`Verified::sign`] made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ddi {
    /// The image file, which the methods read.
    pub path: PathBuf,
    pub architecture: Architecture,
    pub gpt: Gpt,
    pub root: Partition,
    pub verity: Partition,
    pub verity_sig: Option<Partition>,
    pub superblock: Superblock,
    pub root_hash: RootHash,
}

/// The JSON object of a verity signature partition, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureJson {
    pub root_hash: String,
    pub certificate_fingerprint: Option<String>,
    /// DER.
    pub signature: Vec<u8>,
}

/// The JSON as it is written: the keys in systemd-repart's order
/// (`repart.c:3840-3848` at v252.31; checked against its output), no
/// space.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SignatureText {
    root_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_fingerprint: Option<String>,
    /// Base64 of the DER.
    signature: String,
}

impl SignatureJson {
    /// The signature partition of `size` bytes that `sign` writes for
    /// this JSON: the JSON, then NUL bytes; an error when it does not fit.
    /// [`Ddi::verify`] compares a partition with this, byte for byte.
    pub fn partition(&self, size: usize) -> Result<Vec<u8>, String> {
        let text = SignatureText {
            root_hash: self.root_hash.clone(),
            certificate_fingerprint: self.certificate_fingerprint.clone(),
            signature: base64::engine::general_purpose::STANDARD
                .encode(&self.signature),
        };
        let mut bytes =
            serde_json::to_vec(&text).map_err(|e| e.to_string())?;
        if bytes.len() > size {
            return Err(format!(
                "the JSON is {} bytes, more than the partition's {size}",
                bytes.len()
            ));
        }
        bytes.resize(size, 0);
        Ok(bytes)
    }
}

/// A way in which a readable image differs from what [`build`] and
/// [`Verified::sign`] write for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A data block (of the root partition) or a hash block (of the verity
    /// partition) that does not match; `offset` is where the block starts
    /// in the image.
    Verity {
        finding: verity::Finding,
        offset: u64,
        len: u64,
    },
    /// A field of the partition table that is not what the layout gives.
    Table {
        field: String,
        found: String,
        expected: String,
    },
    /// Bytes of the table's structures that are not what [`Gpt::write`]
    /// writes for the table they hold: `structure` starts at image byte
    /// `start`, the first difference is at its byte `offset`.
    Differs {
        structure: Structure,
        start: u64,
        offset: u64,
        found: u8,
        expected: u8,
    },
    /// Bytes that are not zero where the image holds nothing: `count` of
    /// them in `region`, the first at image byte `offset`.
    NotZero {
        region: String,
        offset: u64,
        count: u64,
    },
    /// The verity superblock's salt is not the one derived from the
    /// squashfs, or the squashfs cannot give one.
    Salt(String),
    /// A field of the verity superblock that is not what [`build`] writes.
    Superblock {
        field: &'static str,
        found: String,
        expected: String,
    },
    /// The signature partition is malformed, names another root hash, or
    /// is not byte for byte what `sign` writes for its JSON.
    SignatureJson(String),
    /// Only when a certificate is given: the signature partition is
    /// missing, names another certificate, or does not verify.
    NoSignature,
    CertificateFingerprint {
        found: Option<String>,
        expected: String,
    },
    SignatureRejected(String),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Finding::Verity {
                finding: omitted @ verity::Finding::Omitted { .. },
                ..
            } => {
                write!(f, "{omitted}")
            }
            Finding::Verity { finding, offset, len } => {
                let end = offset + len;
                write!(f, "{finding} (image bytes {offset}..{end})")
            }
            Finding::Table { field, found, expected } => write!(
                f,
                "the partition table's {field} is {found}, expected \
                 {expected}"
            ),
            Finding::Differs { structure, start, offset, found, expected } => {
                write!(
                    f,
                    "{structure} differs at its byte {offset}, {} (image \
                     byte {}): found {found:#04x}, expected {expected:#04x}",
                    structure.field(*offset as usize),
                    start + offset,
                )
            }
            Finding::NotZero { region, offset, count } => write!(
                f,
                "{region} holds {count} non-zero {}, the first at image byte \
                 {offset}; it should be zero",
                if *count == 1 { "byte" } else { "bytes" }
            ),
            Finding::Salt(problem) => write!(f, "the verity salt: {problem}"),
            Finding::Superblock { field, found, expected } => write!(
                f,
                "the verity superblock's {field} is {found}, expected \
                 {expected}"
            ),
            Finding::SignatureJson(problem) => {
                write!(f, "the verity signature partition: {problem}")
            }
            Finding::NoSignature => {
                write!(f, "the image has no verity signature partition")
            }
            Finding::CertificateFingerprint { found, expected } => write!(
                f,
                "the signature names certificate {}, the given \
                 certificate is {expected}",
                found.as_deref().unwrap_or("(none)")
            ),
            Finding::SignatureRejected(reason) => write!(
                f,
                "the signature does not verify with the given \
                 certificate: {reason}"
            ),
        }
    }
}

/// A byte of the signature partition's JSON for a finding: hex, and the
/// character when it is printable.
fn byte(b: u8) -> String {
    if b.is_ascii_graphic() || b == b' ' {
        format!("{b:#04x} ({:?})", b as char)
    } else {
        format!("{b:#04x}")
    }
}

/// Writes a DDI holding the squashfs image `squashfs` at `output`, for
/// `architecture`. The squashfs is read once: each chunk is hashed and
/// written to the root partition. The image is written under a temporary
/// name in the same directory and renamed when complete; on failure
/// nothing is left.
pub fn build(
    squashfs: &Path,
    architecture: Architecture,
    output: &Path,
) -> Result<Ddi, Error> {
    let input = File::open(squashfs)
        .map_err(|e| Error::new(squashfs, io_err("opening", e)))?;
    let size = input
        .metadata()
        .map_err(|e| Error::new(squashfs, io_err("reading", e)))?
        .len();
    let (salt, _) = squashfs_salt(&input, 0, size)
        .map_err(|problem| Error::new(squashfs, problem))?;
    write_atomically(output, |out| {
        let mut builder = verity::Builder::new(&salt);
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        while done < size {
            let n = (size - done).min(CHUNK as u64) as usize;
            input
                .read_exact_at(&mut buf[..n], done)
                .map_err(|e| Error::new(squashfs, io_err("reading", e)))?;
            let padded = n.next_multiple_of(GRAIN as usize);
            buf[n..padded].fill(0);
            builder.update(&buf[..padded]);
            out.write_all_at(&buf[..padded], FIRST_PARTITION + done)
                .map_err(|e| Error::new(output, io_err("writing", e)))?;
            done += n as u64;
        }
        let hash = builder.finish(|root_hash| {
            derive_guid(root_hash, VERITY_SUPERBLOCK_UUID)
        });
        let data_size = hash.superblock.data_size();
        let hash_size = hash.bytes.len() as u64;
        out.write_all_at(&hash.bytes, FIRST_PARTITION + data_size)
            .map_err(|e| Error::new(output, io_err("writing", e)))?;
        let gpt =
            layout(architecture, &hash.root_hash, data_size, hash_size, false);
        write_table(out, &gpt).map_err(|e| Error::new(output, e))?;
        Ok(Ddi::from_layout(
            output,
            architecture,
            gpt,
            hash.superblock,
            hash.root_hash,
        ))
    })
}

/// The partition table of an image with these contents.
fn layout(
    architecture: Architecture,
    root_hash: &RootHash,
    data_size: u64,
    hash_size: u64,
    signed: bool,
) -> Gpt {
    let types = architecture.types();
    let read_only = gpt::FLAG_READ_ONLY;
    let partition =
        |type_guid, guid, offset: u64, size: u64, name| Partition {
            index: 0,
            type_guid,
            guid,
            first_lba: offset / SECTOR,
            last_lba: (offset + size) / SECTOR - 1,
            attributes: read_only,
            name,
        };
    let verity_offset = FIRST_PARTITION + data_size;
    let mut end = verity_offset + hash_size;
    let mut partitions = vec![
        partition(
            types.root,
            Guid(root_hash[..16].try_into().unwrap()),
            FIRST_PARTITION,
            data_size,
            architecture.root_label(),
        ),
        partition(
            types.verity,
            Guid(root_hash[16..].try_into().unwrap()),
            verity_offset,
            hash_size,
            architecture.verity_label(),
        ),
    ];
    if signed {
        partitions.push(partition(
            types.verity_sig,
            derive_guid(root_hash, VERITY_SIG_GUID),
            end,
            VERITY_SIG_SIZE,
            architecture.verity_sig_label(),
        ));
        end += VERITY_SIG_SIZE;
    }
    let size = (end + gpt::BACKUP_SECTORS * SECTOR).next_multiple_of(GRAIN);
    Gpt::new(derive_guid(root_hash, DISK_GUID), size / SECTOR, partitions)
}

fn write_table(out: &File, gpt: &Gpt) -> Result<(), ErrorKind> {
    out.set_len(gpt.sectors * SECTOR)
        .and_then(|()| gpt.write(out))
        .map_err(|e| io_err("writing the partition table", e))
}

/// Runs `write` on a new file that becomes `output` if it succeeds and
/// is removed if not (`crate::atomic_write`).
fn write_atomically<T>(
    output: &Path,
    write: impl FnOnce(&File) -> Result<T, Error>,
) -> Result<T, Error> {
    atomic_write::write_atomically(
        output,
        |_, file| write(&file),
        |what, source| Error::new(output, ErrorKind::Write { what, source }),
    )
}

/// The salt for the squashfs image at `offset` in `file`, whose space
/// (file or partition) is `size` bytes, and where the squashfs ends
/// (`bytes_used`): see "Verity salt" in the parent module.
fn squashfs_salt(
    file: &File,
    offset: u64,
    size: u64,
) -> Result<([u8; 32], u64), ErrorKind> {
    let not = |problem: String| ErrorKind::NotSquashfs(problem);
    if size < superblock::SIZE as u64 {
        return Err(not(format!("{size} bytes is too small")));
    }
    let mut sb = [0u8; superblock::SIZE];
    file.read_exact_at(&mut sb, offset)
        .map_err(|e| io_err("reading the squashfs superblock", e))?;
    let parsed =
        superblock::Superblock::parse(&sb).map_err(|e| not(e.to_string()))?;
    let (bytes_used, inode_table) =
        (parsed.bytes_used, parsed.inode_table_start);
    if inode_table > bytes_used || bytes_used > size {
        return Err(not(format!(
            "its tables (bytes {inode_table}..{bytes_used}) are not within \
             its {size} bytes"
        )));
    }
    let mut h = Sha256::new();
    h.update(b"portable-service ddi verity salt\0");
    h.update(sb);
    let mut buf = vec![0u8; CHUNK];
    let mut at = inode_table;
    while at < bytes_used {
        let n = (bytes_used - at).min(CHUNK as u64) as usize;
        file.read_exact_at(&mut buf[..n], offset + at)
            .map_err(|e| io_err("reading the squashfs tables", e))?;
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok((h.finalize().into(), bytes_used))
}

fn io_err(what: &'static str, source: io::Error) -> ErrorKind {
    ErrorKind::Io { what, source }
}

fn verity_error(error: verity::Error) -> ErrorKind {
    match error {
        verity::Error::Read { side: Side::Hash, source } => {
            io_err("reading the verity partition", source)
        }
        verity::Error::Read { side: Side::Data, source } => {
            io_err("reading the root partition", source)
        }
        other => other.into(),
    }
}

/// A partition of the image file, as [`verity::verify`] reads it.
struct InFile<'a> {
    file: &'a File,
    partition: &'a Partition,
}

impl verity::Device for InFile<'_> {
    fn size(&self) -> u64 {
        self.partition.size()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        // Never past the partition: what follows is not its data.
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.size()) {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.file.read_exact_at(buf, self.partition.offset() + offset)
    }
}

/// Where `found` first differs from `expected` (of the same length).
fn first_difference(found: &[u8], expected: &[u8]) -> Option<usize> {
    found.iter().zip(expected).position(|(a, b)| a != b)
}

/// The first byte in `start..end` of `file` that is not zero, and how many
/// are not. The holes of a sparse file are zero and skipped
/// (`SEEK_DATA`): a region that claims gigabytes and holds nothing costs
/// nothing to check.
fn non_zero(
    file: &File,
    start: u64,
    end: u64,
) -> io::Result<Option<(u64, u64)>> {
    let mut first = None;
    let mut count = 0u64;
    let mut buf = Vec::new();
    let mut at = start;
    while at < end {
        let data = match seek(file, at, libc::SEEK_DATA)? {
            Some(data) if data < end => data,
            _ => break,
        };
        // At least one byte on: a file changed meanwhile cannot stall it.
        let hole = seek(file, data, libc::SEEK_HOLE)?
            .unwrap_or(end)
            .clamp(data + 1, end);
        let mut pos = data;
        while pos < hole {
            let n = (hole - pos).min(CHUNK as u64) as usize;
            buf.resize(n, 0);
            file.read_exact_at(&mut buf, pos)?;
            for (i, _) in buf.iter().enumerate().filter(|(_, &b)| b != 0) {
                first.get_or_insert(pos + i as u64);
                count += 1;
            }
            pos += n as u64;
        }
        at = hole;
    }
    Ok(first.map(|first| (first, count)))
}

/// `lseek(file, offset, whence)` for `SEEK_DATA` and `SEEK_HOLE`: where
/// data or a hole starts at or after `offset`, None when no data does
/// (`ENXIO`). Where holes cannot be told (`EINVAL`: an old kernel or file
/// system), all is data and there is no hole.
fn seek(file: &File, offset: u64, whence: i32) -> io::Result<Option<u64>> {
    let Ok(off) = libc::off_t::try_from(offset) else {
        return Ok(None);
    };
    // SAFETY: lseek(2) on a descriptor `file` holds; it moves the file
    // position, which nothing here uses (every read is positioned).
    let found = unsafe { libc::lseek(file.as_raw_fd(), off, whence) };
    if found >= 0 {
        return Ok(Some(found as u64));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENXIO) => Ok(None),
        Some(libc::EINVAL) if whence == libc::SEEK_DATA => Ok(Some(offset)),
        Some(libc::EINVAL) => Ok(None),
        _ => Err(err),
    }
}

/// Copies the first `len` bytes of `from` to `to`.
fn copy(from: &File, to: &File, len: u64) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK.min(len as usize)];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(CHUNK as u64) as usize;
        from.read_exact_at(&mut buf[..n], at)?;
        to.write_all_at(&buf[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

impl Ddi {
    fn from_layout(
        path: &Path,
        architecture: Architecture,
        gpt: Gpt,
        superblock: Superblock,
        root_hash: RootHash,
    ) -> Ddi {
        let part = |i: usize| gpt.partitions.get(i).cloned();
        Ddi {
            path: path.to_owned(),
            architecture,
            root: part(0).expect("the layout has a root partition"),
            verity: part(1).expect("the layout has a verity partition"),
            verity_sig: part(2),
            gpt,
            superblock,
            root_hash,
        }
    }

    /// Reads an image's partition table and verity superblock, and finds
    /// its root hash in the partition UUIDs. Reads no data: see
    /// [`Ddi::verify`] for that.
    pub fn read(path: &Path) -> Result<Ddi, Error> {
        let file = File::open(path)
            .map_err(|e| Error::new(path, io_err("opening", e)))?;
        Ddi::read_file(path, &file).map_err(|kind| Error::new(path, kind))
    }

    fn read_file(path: &Path, file: &File) -> Result<Ddi, ErrorKind> {
        let gpt = Gpt::read(file)?;
        let layout = |problem: String| ErrorKind::Layout(problem);
        let roots: Vec<(&Partition, Architecture)> = gpt
            .partitions
            .iter()
            .filter_map(|p| {
                Some((p, Architecture::from_root_type(p.type_guid)?))
            })
            .collect();
        let (root, architecture) = match roots[..] {
            [one] => one,
            [] => return Err(layout("no root partition".into())),
            _ => return Err(layout("more than one root partition".into())),
        };
        let types = architecture.types();
        let mut verity = None;
        let mut verity_sig = None;
        for p in &gpt.partitions {
            let slot = if p.type_guid == types.root {
                continue;
            } else if p.type_guid == types.verity {
                &mut verity
            } else if p.type_guid == types.verity_sig {
                &mut verity_sig
            } else {
                return Err(layout(format!(
                    "partition {} has type {}, which a portable service \
                     image for {} does not have",
                    p.index + 1,
                    p.type_guid,
                    architecture.name()
                )));
            };
            if slot.replace(p.clone()).is_some() {
                return Err(layout(format!(
                    "more than one partition of type {}",
                    p.type_guid
                )));
            }
        }
        let verity = verity.ok_or_else(|| {
            layout(format!(
                "no root verity partition for {}",
                architecture.name()
            ))
        })?;
        if let Some(sig) = &verity_sig {
            if sig.size() > VERITY_SIG_MAX {
                return Err(ErrorKind::SignatureJson(format!(
                    "{} bytes, systemd reads at most {VERITY_SIG_MAX}",
                    sig.size()
                )));
            }
        }
        let mut sb = [0u8; verity::SUPERBLOCK_SIZE];
        if verity.size() < sb.len() as u64 {
            return Err(verity::Error::NoSuperblock.into());
        }
        file.read_exact_at(&mut sb, verity.offset())
            .map_err(|e| io_err("reading the verity superblock", e))?;
        let superblock = Superblock::parse(&sb)?;
        if superblock.data_size() > root.size() {
            return Err(layout(format!(
                "the verity superblock covers {} bytes, the root partition \
                 has {}",
                superblock.data_size(),
                root.size()
            )));
        }
        let needed = superblock.geometry().hash_device_size();
        if needed > verity.size() {
            return Err(verity::Error::HashDeviceTooSmall {
                size: verity.size(),
                needed,
                data_blocks: superblock.data_blocks,
            }
            .into());
        }
        let mut root_hash = [0u8; 32];
        root_hash[..16].copy_from_slice(&root.guid.0);
        root_hash[16..].copy_from_slice(&verity.guid.0);
        Ok(Ddi {
            path: path.to_owned(),
            architecture,
            root: root.clone(),
            verity,
            verity_sig,
            gpt,
            superblock,
            root_hash,
        })
    }

    pub fn root_hash_hex(&self) -> String {
        crate::digest::hex(&self.root_hash)
    }

    /// Compares the image with what [`build`] and [`Verified::sign`] write
    /// for its root hash, the size of its root partition and its signature:
    /// everything but the squashfs and the signature itself is
    /// recomputed (see "What verify checks" in the parent module). Returns
    /// what differs; an empty list means the image is exactly as built
    /// (and signed). The squashfs is hashed block by block and its
    /// superblock and tables read for the salt; what it holds is the read
    /// side's to check.
    pub fn verify(&self) -> Result<Vec<Finding>, Error> {
        let file = self.open()?;
        self.verify_file(&file).map_err(|kind| Error::new(&self.path, kind))
    }

    fn open(&self) -> Result<File, Error> {
        File::open(&self.path)
            .map_err(|e| Error::new(&self.path, io_err("opening", e)))
    }

    fn verify_file(&self, file: &File) -> Result<Vec<Finding>, ErrorKind> {
        let root = &self.root;
        let squashfs = match squashfs_salt(file, root.offset(), root.size()) {
            Ok(found) => Ok(found),
            Err(ErrorKind::NotSquashfs(problem)) => Err(problem),
            Err(other) => return Err(other),
        };
        // What build writes for a root partition of this size.
        let block_size = u64::from(verity::BLOCK_SIZE);
        let data_blocks = root.size().div_ceil(block_size);
        let expected = layout(
            self.architecture,
            &self.root_hash,
            data_blocks * block_size,
            Geometry::new(data_blocks, verity::BLOCK_SIZE).hash_device_size(),
            self.verity_sig.is_some(),
        );
        let mut findings = table_findings(&self.gpt, &expected);
        findings.extend(self.table_bytes(file)?);
        findings.extend(self.superblock_findings(data_blocks, &squashfs));
        let hash_device = InFile { file, partition: &self.verity };
        let data = InFile { file, partition: root };
        findings.extend(
            verity::verify(&hash_device, &data, &self.root_hash)
                .map_err(verity_error)?
                .into_iter()
                .map(|finding| self.place(finding)),
        );
        let squashfs_end = match &squashfs {
            Ok((_, bytes_used)) => *bytes_used,
            Err(_) => self.superblock.data_size(),
        };
        findings.extend(self.zero_findings(file, squashfs_end)?);
        findings.extend(self.signature_findings(file)?);
        Ok(findings)
    }

    /// Bytes of the protective MBR, the headers' sectors and the entry
    /// arrays that are not what [`Gpt::write`] writes for the table they
    /// hold ([`table_findings`] compares that table with the layout).
    fn table_bytes(&self, file: &File) -> Result<Vec<Finding>, ErrorKind> {
        let read = |offset: u64, len: usize| {
            let mut bytes = vec![0u8; len];
            file.read_exact_at(&mut bytes, offset)
                .map(|()| bytes)
                .map_err(|e| io_err("reading the partition table", e))
        };
        let primary = read(SECTOR, SECTOR as usize)?;
        let mut findings = Vec::new();
        for region in self.gpt.regions(gpt::recorded_entries_crc(&primary)) {
            let found = read(region.offset, region.bytes.len())?;
            if let Some(at) = region.first_difference(&found) {
                findings.push(Finding::Differs {
                    structure: region.structure,
                    start: region.offset,
                    offset: at as u64,
                    found: found[at],
                    expected: region.bytes[at],
                });
            }
        }
        Ok(findings)
    }

    /// The verity superblock's fields against what [`build`] writes for
    /// `data_blocks` and the squashfs (its salt, or why it has none).
    /// Its other bytes are checked by [`verity::verify`].
    fn superblock_findings(
        &self,
        data_blocks: u64,
        squashfs: &Result<([u8; 32], u64), String>,
    ) -> Vec<Finding> {
        let sb = &self.superblock;
        let mut findings = Vec::new();
        let uuid = derive_guid(&self.root_hash, VERITY_SUPERBLOCK_UUID);
        for (field, found, expected) in [
            ("UUID", sb.uuid.to_string(), uuid.to_string()),
            (
                "data block size",
                sb.data_block_size.to_string(),
                verity::BLOCK_SIZE.to_string(),
            ),
            (
                "hash block size",
                sb.hash_block_size.to_string(),
                verity::BLOCK_SIZE.to_string(),
            ),
            (
                "number of data blocks",
                sb.data_blocks.to_string(),
                data_blocks.to_string(),
            ),
        ] {
            if found != expected {
                findings.push(Finding::Superblock { field, found, expected });
            }
        }
        match squashfs {
            Ok((salt, _)) if salt[..] == sb.salt[..] => {}
            Ok((salt, _)) => findings.push(Finding::Salt(format!(
                "{}, the squashfs gives {}",
                crate::digest::hex(&sb.salt),
                crate::digest::hex(salt)
            ))),
            Err(problem) => findings
                .push(Finding::Salt(format!("the root partition: {problem}"))),
        }
        findings
    }

    /// A verity finding with its place in the image.
    fn place(&self, finding: verity::Finding) -> Finding {
        let sb = &self.superblock;
        let (hash_bs, data_bs) =
            (u64::from(sb.hash_block_size), u64::from(sb.data_block_size));
        let hash_block =
            |n: u64| (self.verity.offset() + n * hash_bs, hash_bs);
        let (offset, len) = match &finding {
            verity::Finding::RootHash { hash_block: n }
            | verity::Finding::HashBlock { hash_block: n, .. } => {
                hash_block(*n)
            }
            verity::Finding::DataBlock { index } => {
                (self.root.offset() + index * data_bs, data_bs)
            }
            verity::Finding::NotZero { offset, len } => {
                (self.verity.offset() + offset, *len)
            }
            verity::Finding::Omitted { .. } => (0, 0),
        };
        Finding::Verity { finding, offset, len }
    }

    /// Non-zero bytes where [`build`] and [`Verified::sign`] leave zeros:
    /// the gaps between the primary table, the partitions and the backup
    /// table; the root partition after the squashfs (which ends at
    /// `squashfs_end`); the verity partition after the tree.
    fn zero_findings(
        &self,
        file: &File,
        squashfs_end: u64,
    ) -> Result<Vec<Finding>, ErrorKind> {
        let mut by_start: Vec<&Partition> =
            self.gpt.partitions.iter().collect();
        by_start.sort_by_key(|p| p.first_lba);
        let mut regions = Vec::new();
        let mut start = (2 + gpt::ENTRY_SECTORS) * SECTOR;
        let mut before = "the primary partition table".to_string();
        for p in by_start {
            let number = p.index + 1;
            regions.push((
                format!("the gap between {before} and partition {number}"),
                start,
                p.offset(),
            ));
            start = p.offset() + p.size();
            before = format!("partition {number}");
        }
        regions.push((
            format!("the gap between {before} and the backup partition table"),
            start,
            (self.gpt.sectors - gpt::BACKUP_SECTORS) * SECTOR,
        ));
        let (root, verity) = (&self.root, &self.verity);
        regions.push((
            "the root partition after the squashfs".into(),
            root.offset() + squashfs_end,
            root.offset() + root.size(),
        ));
        regions.push((
            "the verity partition after the hash tree".into(),
            verity.offset() + self.superblock.geometry().hash_device_size(),
            verity.offset() + verity.size(),
        ));
        let mut findings = Vec::new();
        for (region, start, end) in regions {
            let found = non_zero(file, start, end)
                .map_err(|e| io_err("reading the image", e))?;
            if let Some((offset, count)) = found {
                findings.push(Finding::NotZero { region, offset, count });
            }
        }
        Ok(findings)
    }

    /// The signature partition against what `sign` writes for its JSON.
    fn signature_findings(
        &self,
        file: &File,
    ) -> Result<Vec<Finding>, ErrorKind> {
        let Some(raw) = self.signature_partition(file)? else {
            return Ok(Vec::new());
        };
        let problem = match self.parse_signature(&raw) {
            Err(problem) => Some(problem),
            Ok(json) => signature_difference(&json, &raw),
        };
        Ok(problem.map(Finding::SignatureJson).into_iter().collect())
    }

    /// The signature partition's bytes, if there is one (at most
    /// `VERITY_SIG_MAX`: [`Ddi::read`] checks).
    fn signature_partition(
        &self,
        file: &File,
    ) -> Result<Option<Vec<u8>>, ErrorKind> {
        let Some(sig) = &self.verity_sig else {
            return Ok(None);
        };
        let mut raw = vec![0u8; sig.size() as usize];
        file.read_exact_at(&mut raw, sig.offset()).map_err(|e| {
            io_err("reading the verity signature partition", e)
        })?;
        Ok(Some(raw))
    }

    /// The signature partition's JSON, checked as systemd checks it
    /// (`dissected_image_load_verity_sig_partition()`,
    /// `src/shared/dissect-image.c:2696-2795` at v252.31): NUL bytes only
    /// after the text, a JSON object with string `rootHash` (hex, equal to
    /// the image's root hash) and `signature` (base64); and, stricter than
    /// systemd, no other keys than the DPS's three. [`Ddi::verify`] also
    /// compares the bytes with what `sign` writes.
    pub fn read_signature(&self) -> Result<Option<SignatureJson>, Error> {
        let file = self.open()?;
        let raw = self
            .signature_partition(&file)
            .map_err(|kind| Error::new(&self.path, kind))?;
        raw.map(|raw| self.parse_signature(&raw)).transpose().map_err(
            |problem| {
                Error::new(&self.path, ErrorKind::SignatureJson(problem))
            },
        )
    }

    fn parse_signature(&self, raw: &[u8]) -> Result<SignatureJson, String> {
        let text_len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        if raw[text_len..].iter().any(|&b| b != 0) {
            return Err("a NUL byte inside the text".into());
        }
        let json: SignatureText = serde_json::from_slice(&raw[..text_len])
            .map_err(|e| e.to_string())?;
        if json.root_hash != self.root_hash_hex() {
            return Err(format!(
                "rootHash is {:?}, the image's root hash is {}",
                json.root_hash,
                self.root_hash_hex()
            ));
        }
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&json.signature)
            .map_err(|e| format!("signature is not base64: {e}"))?;
        Ok(SignatureJson {
            root_hash: json.root_hash,
            certificate_fingerprint: json.certificate_fingerprint,
            signature,
        })
    }

    /// Checks the image's signature against `certificate`: it must be
    /// there, name that certificate's fingerprint, and verify with its
    /// key. Returns what is wrong, nothing if all is well.
    pub fn check_signature(
        &self,
        openssl: &Openssl,
        certificate: &Certificate,
    ) -> Result<Vec<Finding>, Error> {
        let path = &self.path;
        let json = match self.read_signature() {
            Ok(Some(json)) => json,
            Ok(None) => return Ok(vec![Finding::NoSignature]),
            Err(Error { kind: ErrorKind::SignatureJson(problem), .. }) => {
                return Ok(vec![Finding::SignatureJson(problem)])
            }
            Err(other) => return Err(other),
        };
        let expected = certificate.fingerprint();
        let mut findings = Vec::new();
        if json.certificate_fingerprint.as_ref() != Some(&expected) {
            findings.push(Finding::CertificateFingerprint {
                found: json.certificate_fingerprint,
                expected,
            });
        }
        let verdict = openssl
            .check(certificate, &json.root_hash, &json.signature)
            .map_err(|e| Error::new(path, e))?;
        if let Verdict::Rejected(reason) = verdict {
            findings.push(Finding::SignatureRejected(reason));
        }
        Ok(findings)
    }
}

/// How the signature partition `raw` differs from the one `sign` writes
/// for `json`, the JSON it holds.
fn signature_difference(json: &SignatureJson, raw: &[u8]) -> Option<String> {
    if json.certificate_fingerprint.is_none() {
        return Some("no certificateFingerprint, which sign writes".into());
    }
    let canonical = match json.partition(raw.len()) {
        Ok(canonical) => canonical,
        Err(problem) => return Some(problem),
    };
    let at = first_difference(raw, &canonical)?;
    let json_len = canonical.iter().position(|&b| b == 0);
    let place = match json_len {
        Some(len) if at >= len => "in the NUL bytes after the JSON",
        _ => "in the JSON",
    };
    Some(format!(
        "differs from what sign writes at its byte {at}, {place}: found {}, \
         expected {}",
        byte(raw[at]),
        byte(canonical[at])
    ))
}

/// Where `found` differs from the layout `expected`.
fn table_findings(found: &Gpt, expected: &Gpt) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut differ = |field: String, found: String, expected: String| {
        if found != expected {
            findings.push(Finding::Table { field, found, expected });
        }
    };
    differ(
        "disk GUID".into(),
        found.disk_guid.to_string(),
        expected.disk_guid.to_string(),
    );
    differ(
        "size in sectors".into(),
        found.sectors.to_string(),
        expected.sectors.to_string(),
    );
    differ(
        "usable sectors".into(),
        format!("{}..={}", found.first_usable_lba, found.last_usable_lba),
        format!(
            "{}..={}",
            expected.first_usable_lba, expected.last_usable_lba
        ),
    );
    let describe = |p: Option<&Partition>| match p {
        Some(p) => format!(
            "type {} uuid {} LBA {}..={} attributes {:#x} name {:?}",
            p.type_guid, p.guid, p.first_lba, p.last_lba, p.attributes, p.name
        ),
        None => "unused".into(),
    };
    let count = found.partitions.len().max(expected.partitions.len());
    for i in 0..count as u32 {
        let by_index =
            |gpt: &Gpt| gpt.partitions.iter().find(|p| p.index == i).cloned();
        differ(
            format!("partition {}", i + 1),
            describe(by_index(found).as_ref()),
            describe(by_index(expected).as_ref()),
        );
    }
    findings
}

/// A disk image in which [`Ddi::verify`] found nothing (the faults of a
/// signature it has aside, as signing replaces it), with the file it was
/// read from: what [`Verified::sign`] signs, copying from that file.
#[derive(Debug)]
pub struct Verified {
    ddi: Ddi,
    file: File,
}

impl Verified {
    /// Reads and verifies the disk image at `path`. A squashfs image is
    /// refused (only a disk image has a place for the signature), and an
    /// image with findings too: a signature on it would only fail later,
    /// on the host.
    pub fn open(path: &Path) -> Result<Verified, Error> {
        let file = File::open(path)
            .map_err(|e| Error::new(path, io_err("opening", e)))?;
        let mut magic = [0u8; 4];
        if file.read_exact_at(&mut magic, 0).is_ok()
            && u32::from_le_bytes(magic) == superblock::MAGIC
        {
            return Err(Error::new(path, ErrorKind::SquashfsNotSignable));
        }
        let ddi = Ddi::read_file(path, &file)
            .map_err(|kind| Error::new(path, kind))?;
        let findings: Vec<Finding> = ddi
            .verify_file(&file)
            .map_err(|kind| Error::new(path, kind))?
            .into_iter()
            .filter(|f| !matches!(f, Finding::SignatureJson(_)))
            .collect();
        if !findings.is_empty() {
            return Err(Error::new(path, ErrorKind::Unverified(findings)));
        }
        Ok(Verified { ddi, file })
    }

    /// The file the image was read and verified from.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Writes a copy of the image with a root verity signature partition
    /// at `output`: the root hash's hex string signed by `signer`, in the
    /// DPS's JSON ([`SignatureJson::partition`]). An existing signature is
    /// replaced. `output` appears only when complete.
    pub fn sign(
        &self,
        openssl: &Openssl,
        signer: &Signer,
        output: &Path,
    ) -> Result<Ddi, Error> {
        let ddi = &self.ddi;
        let image = &ddi.path;
        let hex = ddi.root_hash_hex();
        let der =
            openssl.sign(signer, &hex).map_err(|e| Error::new(image, e))?;
        let json = SignatureJson {
            root_hash: hex,
            certificate_fingerprint: Some(signer.certificate.fingerprint()),
            signature: der,
        };
        let partition =
            json.partition(VERITY_SIG_SIZE as usize).map_err(|problem| {
                Error::new(image, ErrorKind::SignatureJson(problem))
            })?;
        let gpt = layout(
            ddi.architecture,
            &ddi.root_hash,
            ddi.root.size(),
            ddi.verity.size(),
            true,
        );
        let signed = Ddi::from_layout(
            output,
            ddi.architecture,
            gpt,
            ddi.superblock.clone(),
            ddi.root_hash,
        );
        let sig = signed.verity_sig.clone().expect("a signed layout");
        write_atomically(output, |out| {
            // Everything up to the end of the verity partition; the table
            // in it is rewritten below.
            copy(&self.file, out, sig.offset()).map_err(|e| {
                Error::new(output, io_err("copying the image", e))
            })?;
            out.write_all_at(&partition, sig.offset())
                .map_err(|e| Error::new(output, io_err("writing", e)))?;
            write_table(out, &signed.gpt)
                .map_err(|e| Error::new(output, e))?;
            Ok(signed.clone())
        })
    }
}
