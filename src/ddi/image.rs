//! Building, reading, verifying and signing a whole image; the layout and
//! the derivations are described in the parent module.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use super::dps::Architecture;
use super::gpt::{self, Gpt, Guid, Partition, SECTOR};
use super::signature::{self, Openssl, Signer, Verdict};
use super::verity::{self, RootHash, Superblock};
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
/// [`sign`] made it.
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

/// A way in which a readable image differs from what [`build`] and
/// [`sign`] write for it.
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
    /// Bytes that are not zero where the image holds nothing: outside the
    /// partitions and the GPT, or after the data in the root partition.
    NotZero {
        offset: u64,
        len: u64,
    },
    /// The verity superblock's salt is not the one derived from the
    /// squashfs, or the squashfs cannot give one.
    Salt(String),
    /// The verity superblock's UUID is not the one derived from the root
    /// hash.
    SuperblockUuid {
        found: Guid,
        expected: Guid,
    },
    /// The signature partition is malformed or names another root hash.
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
            Finding::Verity { finding, offset, len } => {
                let end = offset + len;
                write!(f, "{finding} (image bytes {offset}..{end})")
            }
            Finding::Table { field, found, expected } => write!(
                f,
                "the partition table's {field} is {found}, expected \
                 {expected}"
            ),
            Finding::NotZero { offset, len } => write!(
                f,
                "{len} bytes at image offset {offset}, where the image \
                 holds no data, should be zero"
            ),
            Finding::Salt(problem) => write!(f, "the verity salt: {problem}"),
            Finding::SuperblockUuid { found, expected } => write!(
                f,
                "the verity superblock's UUID is {found}, expected \
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
    let salt = squashfs_salt(&input, 0, size)
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
/// (file or partition) is `size` bytes: see "Verity salt" in the parent
/// module.
fn squashfs_salt(
    file: &File,
    offset: u64,
    size: u64,
) -> Result<[u8; 32], ErrorKind> {
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
    Ok(h.finalize().into())
}

fn io_err(what: &'static str, source: io::Error) -> ErrorKind {
    ErrorKind::Io { what, source }
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
        signature::hex(&self.root_hash)
    }

    /// Recomputes the hash tree from the root partition and checks it
    /// against the verity partition and the root hash, then everything
    /// else [`build`] and [`sign`] decide: the partition table, the salt,
    /// the superblock's UUID, zero bytes between partitions, and the
    /// signature partition's JSON. Returns what differs; an empty list
    /// means the image is exactly as built (and signed). The squashfs
    /// inside is hashed block by block but not interpreted beyond its
    /// superblock and tables (for the salt).
    pub fn verify(&self) -> Result<Vec<Finding>, Error> {
        let file = self.open()?;
        self.verify_file(&file).map_err(|kind| Error::new(&self.path, kind))
    }

    fn open(&self) -> Result<File, Error> {
        File::open(&self.path)
            .map_err(|e| Error::new(&self.path, io_err("opening", e)))
    }

    fn verify_file(&self, file: &File) -> Result<Vec<Finding>, ErrorKind> {
        let sb = &self.superblock;
        // The whole partition: the verifier checks that what follows the
        // tree is zero.
        let mut hash_device = vec![0u8; self.verity.size() as usize];
        file.read_exact_at(&mut hash_device, self.verity.offset())
            .map_err(|e| io_err("reading the verity partition", e))?;
        let mut verifier =
            verity::Verifier::new(&hash_device, &self.root_hash)?;
        let mut buf = vec![0u8; CHUNK];
        let data_size = sb.data_size();
        let mut done = 0u64;
        while done < data_size {
            let n = (data_size - done).min(CHUNK as u64) as usize;
            file.read_exact_at(&mut buf[..n], self.root.offset() + done)
                .map_err(|e| io_err("reading the root partition", e))?;
            verifier.update(&buf[..n])?;
            done += n as u64;
        }
        let mut findings: Vec<Finding> = verifier
            .finish()?
            .into_iter()
            .map(|finding| self.place(finding))
            .collect();

        let expected = layout(
            self.architecture,
            &self.root_hash,
            self.root.size(),
            self.verity.size(),
            self.verity_sig.is_some(),
        );
        findings.extend(table_findings(&self.gpt, &expected));
        findings.extend(self.zero_findings(file)?);
        match squashfs_salt(file, self.root.offset(), self.root.size()) {
            Ok(salt) if salt[..] == sb.salt[..] => {}
            Ok(salt) => findings.push(Finding::Salt(format!(
                "{}, the squashfs gives {}",
                signature::hex(&sb.salt),
                signature::hex(&salt)
            ))),
            Err(ErrorKind::NotSquashfs(problem)) => findings
                .push(Finding::Salt(format!("the root partition: {problem}"))),
            Err(other) => return Err(other),
        }
        let uuid = derive_guid(&self.root_hash, VERITY_SUPERBLOCK_UUID);
        if sb.uuid != uuid {
            findings.push(Finding::SuperblockUuid {
                found: sb.uuid,
                expected: uuid,
            });
        }
        match self.read_signature_file(file) {
            Ok(_) => {}
            Err(ErrorKind::SignatureJson(problem)) => {
                findings.push(Finding::SignatureJson(problem))
            }
            Err(other) => return Err(other),
        }
        Ok(findings)
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
        };
        Finding::Verity { finding, offset, len }
    }

    /// Non-zero bytes where [`build`] and [`sign`] leave zeros: between
    /// the primary table and the first partition, after the data in the
    /// root partition, and between the last partition and the backup
    /// table. (The verifier checks the verity partition's after the tree,
    /// and the signature's padding is checked with its JSON.)
    fn zero_findings(&self, file: &File) -> Result<Vec<Finding>, ErrorKind> {
        let primary_end = (2 + gpt::ENTRY_SECTORS) * SECTOR;
        let data_end = self.root.offset() + self.superblock.data_size();
        let last_end = self
            .gpt
            .partitions
            .iter()
            .map(|p| p.offset() + p.size())
            .max()
            .unwrap_or(0);
        let backup = (self.gpt.sectors - gpt::BACKUP_SECTORS) * SECTOR;
        let ranges = [
            (primary_end, self.root.offset()),
            (data_end, self.root.offset() + self.root.size()),
            (last_end, backup),
        ];
        let mut findings = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        let zeros = vec![0u8; CHUNK];
        for (start, end) in ranges {
            let mut at = start;
            while at < end {
                let n = (end - at).min(CHUNK as u64) as usize;
                file.read_exact_at(&mut buf[..n], at)
                    .map_err(|e| io_err("reading the image", e))?;
                findings.extend(
                    verity::differing_runs(&buf[..n], &zeros[..n])
                        .into_iter()
                        .map(|(first, len)| Finding::NotZero {
                            offset: at + first as u64,
                            len: len as u64,
                        }),
                );
                at += n as u64;
            }
        }
        Ok(findings)
    }

    /// The signature partition's JSON, checked as systemd checks it
    /// (`dissected_image_load_verity_sig_partition()`,
    /// `src/shared/dissect-image.c:2696-2795` at v252.31): NUL bytes only
    /// after the text, a JSON object with string `rootHash` (hex, equal to
    /// the image's root hash) and `signature` (base64); and, stricter than
    /// systemd, no other keys than the DPS's three.
    pub fn read_signature(&self) -> Result<Option<SignatureJson>, Error> {
        let file = self.open()?;
        self.read_signature_file(&file)
            .map_err(|kind| Error::new(&self.path, kind))
    }

    fn read_signature_file(
        &self,
        file: &File,
    ) -> Result<Option<SignatureJson>, ErrorKind> {
        let Some(sig) = &self.verity_sig else {
            return Ok(None);
        };
        let mut buf = vec![0u8; sig.size() as usize];
        file.read_exact_at(&mut buf, sig.offset()).map_err(|e| {
            io_err("reading the verity signature partition", e)
        })?;
        let bad = |problem: String| ErrorKind::SignatureJson(problem);
        let text_len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if buf[text_len..].iter().any(|&b| b != 0) {
            return Err(bad("a NUL byte inside the text".into()));
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        struct Json {
            root_hash: String,
            certificate_fingerprint: Option<String>,
            signature: String,
        }
        let json: Json = serde_json::from_slice(&buf[..text_len])
            .map_err(|e| bad(format!("{e}")))?;
        if json.root_hash != self.root_hash_hex() {
            return Err(bad(format!(
                "rootHash is {:?}, the image's root hash is {}",
                json.root_hash,
                self.root_hash_hex()
            )));
        }
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&json.signature)
            .map_err(|e| bad(format!("signature is not base64: {e}")))?;
        Ok(Some(SignatureJson {
            root_hash: json.root_hash,
            certificate_fingerprint: json.certificate_fingerprint,
            signature,
        }))
    }

    /// Checks the image's signature against `certificate` (PEM): it must
    /// be there, name that certificate's fingerprint, and verify with its
    /// key. Returns what is wrong, nothing if all is well.
    pub fn check_signature(
        &self,
        openssl: &Openssl,
        certificate: &Path,
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
        let expected = signature::certificate_fingerprint(certificate)
            .map_err(|e| Error::new(path, e))?;
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

/// Writes a copy of the DDI `image` with a root verity signature partition
/// at `output`: the root hash's hex string signed by `signer`, in the
/// DPS's JSON. The image is verified first (a signature on a broken image
/// would only fail later, on the host); an existing signature is
/// replaced. `output` appears only when complete.
pub fn sign(
    image: &Path,
    openssl: &Openssl,
    signer: &Signer,
    output: &Path,
) -> Result<Ddi, Error> {
    let ddi = Ddi::read(image)?;
    let findings: Vec<Finding> = ddi
        .verify()?
        .into_iter()
        // The old signature is replaced, so its faults do not matter.
        .filter(|f| !matches!(f, Finding::SignatureJson(_)))
        .collect();
    if !findings.is_empty() {
        return Err(Error::new(image, ErrorKind::Unverified(findings)));
    }
    let hex = ddi.root_hash_hex();
    let der = openssl.sign(signer, &hex).map_err(|e| Error::new(image, e))?;
    let fingerprint = signature::certificate_fingerprint(&signer.certificate)
        .map_err(|e| Error::new(image, e))?;
    // Field order as systemd-repart writes it (repart.c:3840-3848).
    let json = serde_json::json!({
        "rootHash": hex,
        "certificateFingerprint": fingerprint,
        "signature": base64::engine::general_purpose::STANDARD.encode(&der),
    })
    .to_string();
    if json.len() as u64 > VERITY_SIG_SIZE {
        return Err(Error::new(
            image,
            ErrorKind::SignatureJson(format!(
                "the JSON is {} bytes, more than the partition's {}",
                json.len(),
                VERITY_SIG_SIZE
            )),
        ));
    }
    let input = File::open(image)
        .map_err(|e| Error::new(image, io_err("opening", e)))?;
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
        ddi.superblock,
        ddi.root_hash,
    );
    let sig = signed.verity_sig.clone().expect("a signed layout");
    write_atomically(output, |out| {
        // Everything up to the end of the verity partition; the table in
        // it is rewritten below.
        let mut from = (&input).take(sig.offset());
        let mut to = out;
        let copied = io::copy(&mut from, &mut to)
            .map_err(|e| Error::new(output, io_err("copying the image", e)))?;
        if copied != sig.offset() {
            return Err(Error::new(
                image,
                io_err(
                    "copying the image",
                    io::ErrorKind::UnexpectedEof.into(),
                ),
            ));
        }
        let mut partition = json.into_bytes();
        partition.resize(VERITY_SIG_SIZE as usize, 0);
        out.write_all_at(&partition, sig.offset())
            .map_err(|e| Error::new(output, io_err("writing", e)))?;
        write_table(out, &signed.gpt).map_err(|e| Error::new(output, e))?;
        Ok(signed.clone())
    })
}
