/*!
The dm-verity hash device, byte for byte as `veritysetup format` writes
it, its root hash, and a verifier that names the block that is wrong.

# Format (cryptsetup 2.6.1 `lib/verity/verity.c`, `verity_hash.c`; the
# kernel's `Documentation/admin-guide/device-mapper/verity.rst`)

The data device is cut into `data_blocks` blocks of `data_block_size`
bytes. Version 1 hashing (the `hash_type` 1 of every non-Chrome-OS
device) hashes a block as `H(salt || block)`. Each hash block holds
`hash_block_size / 32` SHA-256 digests (32 is already a power of two, so
there is no spare room after each digest), and the rest of the last block
of a level is zero.

```text
level 0      digests of the data blocks, packed into hash blocks
level i+1    digests of the hash blocks of level i
top          the first level that is a single block
root hash    H(salt || top block)
```

`levels` is the smallest number with `(data_blocks - 1) >> (levels *
log2(digests per block)) == 0`; level `i` has `ceil(data_blocks /
per_block^(i+1))` blocks (cryptsetup `hash_levels()`). With one data
block there are no levels and the root hash is that block's digest.

The hash device starts with a 512-byte superblock (`struct verity_sb`,
little-endian) in a block of its own, then the levels, the top one first
and level 0 last (`VERITY_hash_offset_block()`; the kernel's
`hash_level_block[]` in `dm-verity-target.c`):

```text
  0  8  "verity\0\0"            72  8  data_blocks
  8  4  version (1)             80  2  salt size (at most 256)
 12  4  hash_type (1)           82  6  padding
 16 16  UUID (binary)           88 256 salt, zero after its size
 32 32  algorithm ("sha256")   344 168 padding
 64  4  data_block_size
 68  4  hash_block_size
```

Everything else in the first block, and the space after the last level,
is zero. Nothing in the hash device outside the tree is covered by the
root hash: `veritysetup verify` does not look at the superblock's UUID or
padding. [`verify`] reports bytes of the first block that no field uses
and the rest of the last block of each level when they are not zero (the
latter are hashed, but a tree with other bytes there is not the one
`veritysetup format` or [`Builder`] makes); the image's `verify` checks
the UUID, the salt and the space after the tree.

We write 4096-byte data and hash blocks (veritysetup's default; the
kernel takes data blocks up to the page size, 4096 or more everywhere)
and SHA-256;
we read any block sizes cryptsetup accepts, so that images from other
tools (systemd-repart 252 uses 512-byte blocks) can be checked too.

Speed: the digests of the data blocks are the one pass over the data;
they are computed in parallel (rayon) over each chunk of data. The upper
levels are 1/128 of that. [`Builder`] keeps the leaves and the whole hash
device in memory, 8 MiB per GiB of data it was given. [`verify`] holds a
block per level and one chunk of data (8 MiB) whatever the size of the
devices, which it reads through positioned reads ([`Device`]): a hash
device that claims gigabytes costs what is read of it.
*/

use std::fmt;
use std::io;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::gpt::Guid;

pub const BLOCK_SIZE: u32 = 4096;
pub const SUPERBLOCK_SIZE: usize = 512;
pub const DIGEST_SIZE: usize = 32;
pub const SALT_SIZE_MAX: usize = 256;
const SIGNATURE: &[u8; 8] = b"verity\0\0";
const ALGORITHM: &str = "sha256";

pub type RootHash = [u8; DIGEST_SIZE];

/// The superblock's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    pub uuid: Guid,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    pub salt: Vec<u8>,
}

/// Why a hash device cannot be read or checked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("no dm-verity superblock (no \"verity\" signature)")]
    NoSuperblock,
    #[error("unsupported dm-verity superblock: {0}")]
    Unsupported(String),
    #[error("corrupt dm-verity superblock: {0}")]
    Corrupt(String),
    #[error(
        "the hash device is {size} bytes, its tree needs {needed} \
         (the superblock says {data_blocks} data blocks)"
    )]
    HashDeviceTooSmall { size: u64, needed: u64, data_blocks: u64 },
    #[error(
        "the data is {size} bytes, the superblock says {data_blocks} \
         blocks of {block_size} bytes"
    )]
    DataSize { size: u64, data_blocks: u64, block_size: u32 },
    #[error("reading the {side}: {source}")]
    Read { side: Side, source: io::Error },
}

/// Which of the two devices a read failed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Hash,
    Data,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Side::Hash => "hash device",
            Side::Data => "data device",
        })
    }
}

impl Error {
    fn read(side: Side) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Read { side, source }
    }
}

/// A difference that [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The top hash block does not hash to the root hash.
    RootHash { hash_block: u64 },
    /// A hash block does not hash to its digest in the level above.
    HashBlock { level: usize, index: u64, hash_block: u64 },
    /// A data block does not hash to its digest in level 0.
    DataBlock { index: u64 },
    /// Bytes of the hash device outside the superblock's fields and the
    /// digests that are not zero.
    NotZero { offset: u64, len: u64 },
    /// Findings past the first [`LISTED`], counted only.
    Omitted { count: u64 },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Finding::RootHash { hash_block } => write!(
                f,
                "the top hash block (hash block {hash_block}) does not \
                 match the root hash"
            ),
            Finding::HashBlock { level, index, hash_block } => write!(
                f,
                "hash block {hash_block} (level {level}, block {index}) \
                 does not match its digest in the level above"
            ),
            Finding::DataBlock { index } => {
                write!(f, "data block {index} does not match its digest")
            }
            Finding::NotZero { offset, len } => write!(
                f,
                "{len} bytes at {offset} of the hash device should be zero"
            ),
            Finding::Omitted { count } => write!(
                f,
                "{count} more blocks or bytes of the hash tree and data do \
                 not match (not listed)"
            ),
        }
    }
}

impl Superblock {
    /// Ours: 4096-byte blocks, SHA-256, the given salt and UUID.
    pub fn new(data_blocks: u64, salt: &[u8], uuid: Guid) -> Superblock {
        assert!(salt.len() <= SALT_SIZE_MAX);
        Superblock {
            uuid,
            data_block_size: BLOCK_SIZE,
            hash_block_size: BLOCK_SIZE,
            data_blocks,
            salt: salt.to_vec(),
        }
    }

    pub fn to_bytes(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        b[0..8].copy_from_slice(SIGNATURE);
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].copy_from_slice(&1u32.to_le_bytes());
        b[16..32].copy_from_slice(&self.uuid.0);
        b[32..32 + ALGORITHM.len()].copy_from_slice(ALGORITHM.as_bytes());
        b[64..68].copy_from_slice(&self.data_block_size.to_le_bytes());
        b[68..72].copy_from_slice(&self.hash_block_size.to_le_bytes());
        b[72..80].copy_from_slice(&self.data_blocks.to_le_bytes());
        b[80..82].copy_from_slice(&(self.salt.len() as u16).to_le_bytes());
        b[88..88 + self.salt.len()].copy_from_slice(&self.salt);
        b
    }

    /// Parses the first 512 bytes of a hash device, with the checks of
    /// cryptsetup's `VERITY_read_sb()`; only what we can hash (version 1,
    /// SHA-256) is accepted.
    pub fn parse(b: &[u8]) -> Result<Superblock, Error> {
        if b.len() < SUPERBLOCK_SIZE {
            return Err(Error::NoSuperblock);
        }
        if &b[0..8] != SIGNATURE {
            return Err(Error::NoSuperblock);
        }
        let u32_at =
            |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let version = u32_at(8);
        if version != 1 {
            return Err(Error::Unsupported(format!(
                "superblock version {version}"
            )));
        }
        let hash_type = u32_at(12);
        if hash_type != 1 {
            return Err(Error::Unsupported(format!("hash type {hash_type}")));
        }
        let algorithm = &b[32..64];
        let name_len =
            algorithm.iter().position(|&c| c == 0).unwrap_or(algorithm.len());
        if &algorithm[..name_len] != ALGORITHM.as_bytes() {
            return Err(Error::Unsupported(format!(
                "hash algorithm {:?}",
                String::from_utf8_lossy(&algorithm[..name_len])
            )));
        }
        let data_block_size = u32_at(64);
        let hash_block_size = u32_at(68);
        for (what, size) in
            [("data", data_block_size), ("hash", hash_block_size)]
        {
            // cryptsetup's VERITY_BLOCK_SIZE_OK.
            if !(512..=512 * 1024).contains(&size) || !size.is_power_of_two() {
                return Err(Error::Corrupt(format!(
                    "{what} block size {size}"
                )));
            }
        }
        let data_blocks = u64::from_le_bytes(b[72..80].try_into().unwrap());
        if data_blocks == 0 {
            return Err(Error::Corrupt("no data blocks".into()));
        }
        let salt_size = u16::from_le_bytes([b[80], b[81]]) as usize;
        if salt_size > SALT_SIZE_MAX {
            return Err(Error::Corrupt(format!("salt size {salt_size}")));
        }
        Ok(Superblock {
            uuid: Guid(b[16..32].try_into().unwrap()),
            data_block_size,
            hash_block_size,
            data_blocks,
            salt: b[88..88 + salt_size].to_vec(),
        })
    }

    pub fn geometry(&self) -> Geometry {
        Geometry::new(self.data_blocks, self.hash_block_size)
    }

    pub fn data_size(&self) -> u64 {
        self.data_blocks.saturating_mul(u64::from(self.data_block_size))
    }
}

/// Where the levels of a tree are, in hash blocks from the start of the
/// hash device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub hash_block_size: u32,
    /// `levels[0]` is level 0 (digests of data blocks).
    pub levels: Vec<Level>,
    /// The whole hash device, superblock included, in hash blocks.
    pub hash_blocks: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    pub first_block: u64,
    pub blocks: u64,
}

impl Geometry {
    /// The layout for `data_blocks` (at least 1); a corrupt superblock's
    /// huge count gives a huge `hash_blocks` (saturated), never a panic.
    pub fn new(data_blocks: u64, hash_block_size: u32) -> Geometry {
        let per_block_bits =
            (hash_block_size as usize / DIGEST_SIZE).trailing_zeros();
        let mut count = 0u32;
        while per_block_bits * count < 64
            && data_blocks.saturating_sub(1) >> (per_block_bits * count) != 0
        {
            count += 1;
        }
        // The superblock's block comes first.
        let mut position = 1u64;
        let mut levels =
            vec![Level { first_block: 0, blocks: 0 }; count as usize];
        for i in (0..count as usize).rev() {
            let shift = (i as u32 + 1) * per_block_bits;
            let blocks =
                if shift >= 64 { 1 } else { data_blocks.div_ceil(1 << shift) };
            levels[i] = Level { first_block: position, blocks };
            position = position.saturating_add(blocks);
        }
        Geometry { hash_block_size, levels, hash_blocks: position }
    }

    pub fn hash_device_size(&self) -> u64 {
        self.hash_blocks.saturating_mul(u64::from(self.hash_block_size))
    }
}

/// `H(salt || block)`.
fn digest(salt: &[u8], block: &[u8]) -> RootHash {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(block);
    h.finalize().into()
}

/// The digests of whole blocks, in parallel.
fn digests(salt: &[u8], blocks: &[u8], block_size: usize) -> Vec<RootHash> {
    blocks.par_chunks(block_size).map(|b| digest(salt, b)).collect()
}

/// The result of [`Builder::finish`].
pub struct HashDevice {
    pub superblock: Superblock,
    pub root_hash: RootHash,
    /// The whole hash device: superblock block, levels top first.
    pub bytes: Vec<u8>,
}

/// Builds the tree from the data, passed in order in chunks.
pub struct Builder {
    salt: Vec<u8>,
    leaves: Vec<RootHash>,
}

impl Builder {
    pub fn new(salt: &[u8]) -> Builder {
        assert!(salt.len() <= SALT_SIZE_MAX);
        Builder { salt: salt.to_vec(), leaves: Vec::new() }
    }

    /// Adds data blocks: `chunk` must be whole 4096-byte blocks.
    pub fn update(&mut self, chunk: &[u8]) {
        assert_eq!(chunk.len() % BLOCK_SIZE as usize, 0);
        self.leaves.extend(digests(&self.salt, chunk, BLOCK_SIZE as usize));
    }

    /// The tree over the blocks passed so far; `uuid` goes into the
    /// superblock only (it is not hashed), so it may be derived from the
    /// root hash, which is given to `uuid`.
    pub fn finish(self, uuid: impl FnOnce(&RootHash) -> Guid) -> HashDevice {
        let data_blocks = self.leaves.len() as u64;
        assert!(data_blocks > 0, "no data blocks");
        let geometry = Geometry::new(data_blocks, BLOCK_SIZE);
        let bs = BLOCK_SIZE as usize;
        let mut bytes = vec![0u8; geometry.hash_device_size() as usize];
        let mut below = self.leaves;
        for level in &geometry.levels {
            let start = level.first_block as usize * bs;
            let area = &mut bytes[start..start + level.blocks as usize * bs];
            for (slot, d) in area.chunks_exact_mut(DIGEST_SIZE).zip(&below) {
                slot.copy_from_slice(d);
            }
            below = digests(&self.salt, area, bs);
        }
        // Without levels, `below` is the single data block's digest.
        let root_hash = below[0];
        let superblock = Superblock {
            uuid: uuid(&root_hash),
            ..Superblock::new(data_blocks, &self.salt, Guid([0; 16]))
        };
        bytes[..SUPERBLOCK_SIZE].copy_from_slice(&superblock.to_bytes());
        HashDevice { superblock, root_hash, bytes }
    }
}

/// Where [`verify`] reads the hash device and the data from: a partition
/// of an image file, or bytes in memory.
pub trait Device {
    /// Its size in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl Device for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|start| self.get(start..start.checked_add(buf.len())?))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

/// How many findings [`verify`] lists; the rest are counted. A hash tree
/// made for other data names every block of it, and a list that long would
/// take memory in proportion to the image and help no one.
pub const LISTED: usize = 100;

/// How much data is read and hashed at a time: large enough that the
/// parallel hashing of one chunk dwarfs starting it.
const CHUNK: usize = 8 << 20;

/// Checks `data` against `hash_device` and `root_hash`. The tree is walked
/// from the top, depth first: a hash block is only blamed when its parent
/// is trusted, and a data block only when its level-0 block is; nothing
/// under a block that does not match is read. The slots after the last
/// digest of each level and the superblock's unused bytes must be zero.
/// Hash blocks are read as the walk reaches them and data in chunks, so
/// that memory does not grow with the devices (a block per level and one
/// chunk), and every block is read at most once.
pub fn verify<H, D>(
    hash_device: &H,
    data: &D,
    root_hash: &RootHash,
) -> Result<Vec<Finding>, Error>
where
    H: Device + ?Sized,
    D: Device + ?Sized,
{
    if hash_device.size() < SUPERBLOCK_SIZE as u64 {
        return Err(Error::NoSuperblock);
    }
    let mut sb = [0u8; SUPERBLOCK_SIZE];
    hash_device.read_at(&mut sb, 0).map_err(Error::read(Side::Hash))?;
    let superblock = Superblock::parse(&sb)?;
    let geometry = superblock.geometry();
    let (size, needed) = (hash_device.size(), geometry.hash_device_size());
    if size < needed {
        return Err(Error::HashDeviceTooSmall {
            size,
            needed,
            data_blocks: superblock.data_blocks,
        });
    }
    if data.size() < superblock.data_size() {
        return Err(Error::DataSize {
            size: data.size(),
            data_blocks: superblock.data_blocks,
            block_size: superblock.data_block_size,
        });
    }
    let mut walk = Walk {
        hash_device,
        data,
        superblock: &superblock,
        levels: &geometry.levels,
        findings: Vec::new(),
        omitted: 0,
        pending: Pending { first: 0, digests: Vec::new() },
    };
    // The bytes of the superblock's block that no field uses.
    let bs = superblock.hash_block_size as usize;
    let mut first = vec![0u8; bs];
    hash_device.read_at(&mut first, 0).map_err(Error::read(Side::Hash))?;
    let mut canonical = superblock.to_bytes().to_vec();
    canonical.resize(bs, 0);
    walk.not_zero(&first, &canonical, 0);
    match geometry.levels.last() {
        // One data block: the root hash is its digest.
        None => walk.queue(0, root_hash)?,
        Some(top) => {
            let block = walk.hash_block(top.first_block)?;
            if digest(&superblock.salt, &block) == *root_hash {
                walk.children(geometry.levels.len() - 1, 0, &block)?;
            } else {
                walk.found(Finding::RootHash { hash_block: top.first_block });
            }
        }
    }
    walk.flush()?;
    let Walk { mut findings, omitted, .. } = walk;
    if omitted > 0 {
        findings.push(Finding::Omitted { count: omitted });
    }
    Ok(findings)
}

/// The state of [`verify`]'s walk.
struct Walk<'a, H: ?Sized, D: ?Sized> {
    hash_device: &'a H,
    data: &'a D,
    superblock: &'a Superblock,
    levels: &'a [Level],
    findings: Vec<Finding>,
    omitted: u64,
    pending: Pending,
}

/// Data blocks whose digests a trusted level-0 block gave, not yet
/// checked: consecutive ones are read and hashed together.
struct Pending {
    first: u64,
    digests: Vec<u8>,
}

impl<H: Device + ?Sized, D: Device + ?Sized> Walk<'_, H, D> {
    fn found(&mut self, finding: Finding) {
        if self.findings.len() < LISTED {
            self.findings.push(finding);
        } else {
            self.omitted += 1;
        }
    }

    fn hash_block(&self, n: u64) -> Result<Vec<u8>, Error> {
        let bs = u64::from(self.superblock.hash_block_size);
        let mut block = vec![0u8; bs as usize];
        self.hash_device
            .read_at(&mut block, n * bs)
            .map_err(Error::read(Side::Hash))?;
        Ok(block)
    }

    /// Checks what the trusted block `index` of `level` holds: the blocks
    /// of the level below, or for level 0 the data blocks.
    fn children(
        &mut self,
        level: usize,
        index: u64,
        block: &[u8],
    ) -> Result<(), Error> {
        let per_block = (block.len() / DIGEST_SIZE) as u64;
        let below = match level {
            0 => self.superblock.data_blocks,
            _ => self.levels[level - 1].blocks,
        };
        let first = index * per_block;
        let count = (below - first).min(per_block);
        let used = count as usize * DIGEST_SIZE;
        let at = (self.levels[level].first_block + index) * block.len() as u64;
        self.not_zero(
            &block[used..],
            &vec![0; block.len() - used],
            at + used as u64,
        );
        if level == 0 {
            return self.queue(first, &block[..used]);
        }
        let child_level = self.levels[level - 1];
        let salt = &self.superblock.salt;
        for (n, expected) in (first..).zip(block[..used].chunks(DIGEST_SIZE)) {
            let hash_block = child_level.first_block + n;
            let child = self.hash_block(hash_block)?;
            if digest(salt, &child)[..] == *expected {
                self.children(level - 1, n, &child)?;
            } else {
                self.found(Finding::HashBlock {
                    level: level - 1,
                    index: n,
                    hash_block,
                });
            }
        }
        Ok(())
    }

    /// Bytes at `offset` of the hash device that differ from `expected`.
    fn not_zero(&mut self, actual: &[u8], expected: &[u8], offset: u64) {
        for (start, len) in differing_runs(actual, expected) {
            self.found(Finding::NotZero {
                offset: offset + start as u64,
                len: len as u64,
            });
        }
    }

    /// Data blocks from `first` on, which must have `digests`.
    fn queue(&mut self, first: u64, digests: &[u8]) -> Result<(), Error> {
        let bs = self.superblock.data_block_size as usize;
        let per_chunk = (CHUNK / bs).max(1) * DIGEST_SIZE;
        let next = self.pending.first
            + (self.pending.digests.len() / DIGEST_SIZE) as u64;
        if next != first {
            self.flush()?;
            self.pending.first = first;
        }
        for part in digests.chunks(per_chunk) {
            if self.pending.digests.len() + part.len() > per_chunk {
                self.flush()?;
            }
            self.pending.digests.extend_from_slice(part);
        }
        Ok(())
    }

    /// Checks the pending data blocks.
    fn flush(&mut self) -> Result<(), Error> {
        let bs = self.superblock.data_block_size as usize;
        let expected = std::mem::take(&mut self.pending.digests);
        let first = self.pending.first;
        self.pending.first += (expected.len() / DIGEST_SIZE) as u64;
        if expected.is_empty() {
            return Ok(());
        }
        let mut data = vec![0u8; expected.len() / DIGEST_SIZE * bs];
        self.data
            .read_at(&mut data, first * bs as u64)
            .map_err(Error::read(Side::Data))?;
        let salt = &self.superblock.salt;
        let mut bad: Vec<u64> = data
            .par_chunks(bs)
            .zip(expected.par_chunks(DIGEST_SIZE))
            .enumerate()
            .filter(|(_, (block, digest_of))| {
                digest(salt, block)[..] != **digest_of
            })
            .map(|(i, _)| first + i as u64)
            .collect();
        bad.sort_unstable();
        for index in bad {
            self.found(Finding::DataBlock { index });
        }
        Ok(())
    }
}

/// The runs of bytes in which `actual` differs from `expected` (of the same
/// length), as (start, length).
fn differing_runs(actual: &[u8], expected: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < actual.len() {
        if actual[i] == expected[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < actual.len() && actual[i] != expected[i] {
            i += 1;
        }
        runs.push((start, i - start));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(blocks: usize) -> Vec<u8> {
        (0..blocks * BLOCK_SIZE as usize)
            .map(|i| (i * 7 / 4096) as u8)
            .collect()
    }

    fn tree(data: &[u8]) -> HashDevice {
        let mut builder = Builder::new(&[0x5a; 32]);
        builder.update(data);
        builder.finish(|_| Guid([1; 16]))
    }

    fn check(hash: &HashDevice, data: &[u8]) -> Vec<Finding> {
        verify(&hash.bytes[..], data, &hash.root_hash).unwrap()
    }

    #[test]
    fn geometry_as_cryptsetup_computes_it() {
        // veritysetup format of 256 blocks: "Hash blocks: 3", 16384 bytes.
        let g = Geometry::new(256, BLOCK_SIZE);
        assert_eq!(
            g.levels,
            [
                Level { first_block: 2, blocks: 2 },
                Level { first_block: 1, blocks: 1 }
            ]
        );
        assert_eq!(g.hash_device_size(), 16384);
        assert_eq!(Geometry::new(1, BLOCK_SIZE).levels, []);
        assert_eq!(Geometry::new(128, BLOCK_SIZE).levels.len(), 1);
        assert_eq!(Geometry::new(128 * 128 + 1, BLOCK_SIZE).levels.len(), 3);
        // A corrupt count saturates instead of overflowing.
        assert_eq!(Geometry::new(u64::MAX, 512).hash_device_size(), u64::MAX);
    }

    #[test]
    fn names_the_changed_block() {
        let good = data(300);
        let hash = tree(&good);
        assert_eq!(check(&hash, &good), []);

        let mut bad = good.clone();
        bad[200 * 4096 + 5] ^= 1;
        assert_eq!(check(&hash, &bad), [Finding::DataBlock { index: 200 }]);

        // Level 0 is hash blocks 2..5, level 1 is hash block 1.
        for (block, expected) in [
            (1, Finding::RootHash { hash_block: 1 }),
            (3, Finding::HashBlock { level: 0, index: 1, hash_block: 3 }),
        ] {
            let mut broken = tree(&good);
            broken.bytes[block * 4096 + 9] ^= 1;
            assert_eq!(check(&broken, &good), [expected]);
        }

        let mut padded = tree(&good);
        padded.bytes[600] = 1;
        assert_eq!(
            check(&padded, &good),
            [Finding::NotZero { offset: 600, len: 1 }]
        );

        // The rest of level 0's last block (hash block 4, 300 - 256 = 44
        // digests), set and hashed up to a root hash of its own: every
        // digest matches, but the tree is not the one for this data.
        let mut hashed = tree(&good);
        let at = 4 * 4096 + 44 * DIGEST_SIZE;
        hashed.bytes[at] = 1;
        let salt = [0x5a; 32];
        let level_0 = digest(&salt, &hashed.bytes[4 * 4096..5 * 4096]);
        hashed.bytes[4096 + 2 * DIGEST_SIZE..4096 + 3 * DIGEST_SIZE]
            .copy_from_slice(&level_0);
        hashed.root_hash = digest(&salt, &hashed.bytes[4096..2 * 4096]);
        assert_eq!(
            check(&hashed, &good),
            [Finding::NotZero { offset: at as u64, len: 1 }]
        );
    }

    #[test]
    fn lists_the_first_findings_and_counts_the_rest() {
        let hash = tree(&data(300));
        let other: Vec<u8> = data(300).iter().map(|b| !b).collect();
        let findings = check(&hash, &other);
        assert_eq!(findings.len(), LISTED + 1);
        assert_eq!(findings[0], Finding::DataBlock { index: 0 });
        assert_eq!(findings[LISTED], Finding::Omitted { count: 200 });
    }

    #[test]
    fn small_blocks_across_chunks() {
        // 512-byte hash blocks hold 16 digests: 40,000 data blocks of 512
        // bytes make four levels and more than one chunk of data.
        let bs = 512usize;
        let blocks = 40_000u64;
        let salt = [3u8; 32];
        let good: Vec<u8> = (0..blocks as usize * bs)
            .map(|i| (i / bs * 31 + i % 7) as u8)
            .collect();
        let geometry = Geometry::new(blocks, bs as u32);
        assert_eq!(geometry.levels.len(), 4);
        let mut device = vec![0u8; geometry.hash_device_size() as usize];
        let mut below: Vec<RootHash> =
            good.chunks(bs).map(|b| digest(&salt, b)).collect();
        for level in &geometry.levels {
            let start = level.first_block as usize * bs;
            let area = &mut device[start..start + level.blocks as usize * bs];
            for (slot, d) in area.chunks_exact_mut(DIGEST_SIZE).zip(&below) {
                slot.copy_from_slice(d);
            }
            below = area.chunks(bs).map(|b| digest(&salt, b)).collect();
        }
        let sb = Superblock {
            data_block_size: bs as u32,
            hash_block_size: bs as u32,
            ..Superblock::new(blocks, &salt, Guid([0; 16]))
        };
        device[..SUPERBLOCK_SIZE].copy_from_slice(&sb.to_bytes());
        assert_eq!(verify(&device[..], &good[..], &below[0]).unwrap(), []);
        let mut bad = good.clone();
        bad[39_999 * bs] ^= 1;
        bad[20_000 * bs + 3] ^= 1;
        assert_eq!(
            verify(&device[..], &bad[..], &below[0]).unwrap(),
            [
                Finding::DataBlock { index: 20_000 },
                Finding::DataBlock { index: 39_999 }
            ]
        );
    }

    #[test]
    fn one_block_has_no_levels() {
        let good = data(1);
        let hash = tree(&good);
        assert_eq!(hash.bytes.len(), 4096);
        assert_eq!(hash.root_hash, digest(&[0x5a; 32], &good));
        let mut bad = good.clone();
        bad[0] ^= 1;
        assert_eq!(check(&hash, &bad), [Finding::DataBlock { index: 0 }]);
    }

    #[test]
    fn superblock_round_trip_and_rejections() {
        let sb = Superblock::new(5, &[1, 2, 3], Guid([9; 16]));
        assert_eq!(Superblock::parse(&sb.to_bytes()).unwrap(), sb);
        let mut bytes = sb.to_bytes();
        bytes[32..38].copy_from_slice(b"sha512");
        assert!(matches!(
            Superblock::parse(&bytes),
            Err(Error::Unsupported(_))
        ));
        let mut bytes = sb.to_bytes();
        bytes[64..68].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(Superblock::parse(&bytes), Err(Error::Corrupt(_))));
        let mut bytes = sb.to_bytes();
        bytes[80..82].copy_from_slice(&300u16.to_le_bytes());
        assert!(matches!(Superblock::parse(&bytes), Err(Error::Corrupt(_))));
        assert!(matches!(
            Superblock::parse(&[0; 100]),
            Err(Error::NoSuperblock)
        ));
        // A hash device too short for its superblock's count of blocks.
        let hash = tree(&data(300));
        assert!(matches!(
            verify(&hash.bytes[..8192], &data(300)[..], &hash.root_hash),
            Err(Error::HashDeviceTooSmall { .. })
        ));
        assert!(matches!(
            verify(&hash.bytes[..], &data(299)[..], &hash.root_hash),
            Err(Error::DataSize { .. })
        ));
    }
}
