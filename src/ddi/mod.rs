/*!
Discoverable Disk Images: a portable service's squashfs in a GPT with its
dm-verity hash tree, built without root, loop devices or device-mapper,
by plain file operations; read back, verified and signed.

# The image

A DDI (uapi-group `specs/discoverable_disk_image.md`) is a GPT disk
image whose partitions follow the Discoverable Partitions Specification
(DPS, `specs/discoverable_partitions_specification.md`). Ours:

```text
bytes 0..17408       protective MBR, primary GPT header and entries   gpt
bytes ..1 MiB        zero
partition 1          root, the architecture's root type:              dps
                     the squashfs, zero-padded to 4096 bytes
partition 2          root verity: the dm-verity hash device of        verity
                     partition 1 (superblock, then the tree)
partition 3          root verity signature (only after `sign`):       signature
                     {"rootHash","certificateFingerprint","signature"}
                     NUL-padded to 16 KiB
last 33 sectors      backup GPT entries and header
```

Sectors are 512 bytes, the size the DDI specification recommends first
and the one systemd 252 assumes (sector-size probing came in 253).
Partitions start at 1 MiB and follow each other on 4096-byte boundaries,
as systemd-repart lays them out (grain `secsz < 4096 ? 4096 : secsz`,
systemd-stable v252.31 `src/partition/repart.c:1960`); the disk ends at
the next 4096-byte boundary after the backup table, as repart's did when
checked. Partitions are exactly as large as their contents: no free space
is kept, as a read-only image never grows.

All three partitions carry attribute bit 60, read-only. The DPS
recommends it "unconditionally for the Verity and signature partition
types"; systemd-repart sets it on root-verity always and on a
`Verity=data` root from v255 (`repart.c:1870-1874` at v255.13; 252
still set grow-fs, bit 59, there, which means nothing for squashfs).
repart never sets it on the signature partition, which its
`gpt_partition_type_knows_read_only()` does not list; systemd ignores the
bit there, so we follow the DPS.

# What is derived from what (same inputs, same bytes)

- **Root hash**: the dm-verity root hash of partition 1 (see [`verity`]).
- **Partition UUIDs of root and verity**: the first and the last 128 bits
  of the root hash, taken as they are, with no UUID version bits set. The
  DPS asks for exactly this, systemd-repart does it by `memcpy()`
  (`repart.c:3687` and `3692` at v252.31), and systemd-dissect compares
  the same raw bytes with the partition UUID parsed from its string form
  (`src/shared/dissect-image.c:415-416` and `631`, `700`, `725`). So the
  root hash's bytes are the UUID's string order, which the GPT stores
  mixed-endian (see [`gpt`]). With SHA-256 the two UUIDs hold the whole
  root hash, which is how [`Ddi::read`] gets it back.
- **Disk GUID, signature partition UUID and verity superblock UUID**:
  `derive(root hash, token)`, the first 16 bytes of
  `SHA-256("portable-service ddi\0" || token || "\0" || root hash)` with
  the version-4 and RFC 4122 variant bits set, as systemd's
  `id128_make_v4_uuid()` marks the UUIDs repart derives. Tokens:
  `disk-guid`, `root-verity-sig`, `verity-superblock`. repart derives
  these with HMAC-SHA256 keyed by a machine-id seed because that seed is
  secret; ours, the root hash, is public in the partition table, so a
  plain domain-separated hash is enough. The signature partition's UUID
  does not depend on the signature, and signing keeps the disk GUID.
- **Verity salt** (32 bytes, as repart uses): the salt must be known
  before the tree is hashed, and hashing all of the squashfs for it would
  be a second pass over the data. It is derived from the squashfs's
  superblock and metadata instead: `SHA-256("portable-service ddi verity
  salt\0" || the 96-byte superblock || bytes inode_table_start..bytes_used)`,
  the inode, directory, fragment, export, id and xattr tables, which
  mksquashfs writes after all data. That covers every name, mode, size,
  link target and the place and compressed size of every data block, but
  not the bytes of a data block: two images that differ only inside
  blocks of equal compressed size share a salt. That weakens nothing: the
  salt only keeps hashes from being precomputed across images, and the
  root hashes still differ.

# What `verify` checks

[`Ddi::verify`] regenerates what [`build`] and [`Verified::sign`] write
for the image's root hash (from its partition UUIDs), its architecture
(the root partition's type), the size of its root partition and whether
it is signed, and compares the image with it:

```text
bytes 0..512        protective MBR               byte for byte
bytes 512..1024     primary header and the rest  byte for byte
                    of its sector
bytes 1024..17408   primary entry array: all 128 byte for byte
                    entries, unused ones too
bytes ..1 MiB       zero
root partition      every data block against the tree; the squashfs's
                    superblock and tables give the salt; zero after its
                    bytes_used
verity partition    superblock: UUID, salt, block sizes and count as
                    build writes them, the rest of its block zero; the
                    tree from the root hash down, zero after the last
                    digest of each level; zero after the tree
signature partition the JSON as systemd reads it, then byte for byte
                    what sign writes for that JSON (systemd-repart's key
                    order, no space, NUL bytes after it)
between partitions  zero, up to the backup table
last 33 sectors     backup entry array and header byte for byte
```

The table is compared twice: what it holds (disk GUID, size, usable
sectors, each used entry's type, UUID, place, attributes and name) with
the layout, naming the field that differs; and its bytes with what
[`gpt::Gpt::write`] writes for what it holds, naming the structure, the
first byte that differs and its field (a header's CRC32 last, as it
follows from the rest). So nothing outside the partitions' contents can
change unnoticed; the contents are the squashfs and the tree, which the
root hash covers (what the squashfs holds is the read side's to check),
and the signature, which only a certificate can judge
([`Ddi::check_signature`]). Each structure and each zero region gives
one finding (its first difference, or its first non-zero byte and how many
there are), and the tree at most [`verity::LISTED`].

Memory does not depend on what the image claims: the tree is walked
block by block with positioned reads, the data read in chunks, and zero
regions skip the holes of a sparse file (`SEEK_DATA`); every byte is read
at most once.

# Errors

Everything that reads an image returns [`Error`]: the file and a typed
[`ErrorKind`]; nothing panics on a corrupt or foreign file. Differences
that [`Ddi::verify`] finds in a readable image are [`Finding`]s, not
errors.
*/

use std::fmt;
use std::io;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

pub mod dps;
pub mod gpt;
mod image;
pub mod signature;
pub mod verity;

pub use dps::Architecture;
pub use image::{build, Ddi, Finding, SignatureJson, Verified};

use gpt::Guid;
use verity::RootHash;

/// An operation on the image `path` that failed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct Error {
    pub path: PathBuf,
    pub kind: ErrorKind,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("{what}: {source}")]
    Io { what: &'static str, source: io::Error },
    #[error("not a squashfs image: {0}")]
    NotSquashfs(String),
    #[error(transparent)]
    Gpt(#[from] gpt::Error),
    #[error("the verity partition: {0}")]
    Verity(#[from] verity::Error),
    #[error("not a portable service DDI: {0}")]
    Layout(String),
    #[error("the verity signature partition: {0}")]
    SignatureJson(String),
    #[error(transparent)]
    Signature(#[from] signature::Error),
    #[error(
        "refusing to sign an image that does not verify:\n{}",
        Findings(.0)
    )]
    Unverified(Vec<Finding>),
    #[error(
        "is a squashfs image: only a disk image (format = \"ddi\") carries \
         a signature"
    )]
    SquashfsNotSignable,
    #[error("{what}: {source}")]
    Write { what: String, source: io::Error },
}

/// Findings, one a line, indented.
struct Findings<'a>(&'a [Finding]);

impl fmt::Display for Findings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, finding) in self.0.iter().enumerate() {
            let newline = if i == 0 { "" } else { "\n" };
            write!(f, "{newline}  {finding}")?;
        }
        Ok(())
    }
}

impl Error {
    fn new(path: impl Into<PathBuf>, kind: impl Into<ErrorKind>) -> Error {
        Error { path: path.into(), kind: kind.into() }
    }
}

/// A UUID derived from the root hash for `token` (see the module doc).
pub fn derive_guid(root_hash: &RootHash, token: &str) -> Guid {
    let mut h = Sha256::new();
    h.update(b"portable-service ddi\0");
    h.update(token.as_bytes());
    h.update(b"\0");
    h.update(root_hash);
    let digest = h.finalize();
    let mut bytes: [u8; 16] = digest[..16].try_into().unwrap();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Guid(bytes)
}

pub const DISK_GUID: &str = "disk-guid";
pub const VERITY_SIG_GUID: &str = "root-verity-sig";
pub const VERITY_SUPERBLOCK_UUID: &str = "verity-superblock";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_guids_are_v4_and_distinct() {
        let root_hash = [0xab; 32];
        let a = derive_guid(&root_hash, DISK_GUID);
        let b = derive_guid(&root_hash, VERITY_SIG_GUID);
        assert_ne!(a, b);
        assert_eq!(a.to_string().as_bytes()[14], b'4');
        assert!(matches!(a.to_string().as_bytes()[19], b'8'..=b'b'));
        assert_eq!(a, derive_guid(&root_hash, DISK_GUID));
    }
}
