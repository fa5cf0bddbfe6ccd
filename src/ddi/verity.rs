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
padding. [`Verifier`] reports padding that is not zero (and the image's
`verify` checks the UUID).

We write 4096-byte data and hash blocks (veritysetup's default; the
kernel takes data blocks up to the page size, 4096 or more everywhere)
and SHA-256;
we read any block sizes cryptsetup accepts, so that images from other
tools (systemd-repart 252 uses 512-byte blocks) can be checked too.

Speed: the digests of the data blocks are the one pass over the data;
they are computed in parallel (rayon) over each chunk the caller passes.
The upper levels are 1/128 of that and stay in memory with the leaves:
the whole hash device is held, 8 MiB per GiB of data.
*/

use std::fmt;

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
}

/// A difference that [`Verifier`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The top hash block does not hash to the root hash.
    RootHash { hash_block: u64 },
    /// A hash block does not hash to its digest in the level above.
    HashBlock { level: usize, index: u64, hash_block: u64 },
    /// A data block does not hash to its digest in level 0.
    DataBlock { index: u64 },
    /// Bytes of the hash device outside the superblock's fields and the
    /// tree that are not zero.
    NotZero { offset: u64, len: u64 },
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
    fn new(data_blocks: u64, hash_block_size: u32) -> Geometry {
        let per_block_bits =
            (hash_block_size as usize / DIGEST_SIZE).trailing_zeros();
        let mut count = 0u32;
        while per_block_bits * count < 64
            && (data_blocks - 1) >> (per_block_bits * count) != 0
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

/// Checks data against a hash device and a root hash. The hash tree is
/// checked when the verifier is made, top down, so that a hash block is
/// only blamed when its parent is trusted; then data is passed in order
/// and each block is compared with its digest in a trusted level-0 block.
pub struct Verifier {
    superblock: Superblock,
    /// The level-0 area of the hash device, and which of its blocks are
    /// trusted.
    leaves: Vec<u8>,
    trusted: Vec<bool>,
    next_block: u64,
    findings: Vec<Finding>,
}

impl Verifier {
    pub fn new(
        hash_device: &[u8],
        root_hash: &RootHash,
    ) -> Result<Verifier, Error> {
        let superblock = Superblock::parse(hash_device)?;
        let geometry = superblock.geometry();
        let size = hash_device.len() as u64;
        let needed = geometry.hash_device_size();
        if size < needed {
            return Err(Error::HashDeviceTooSmall {
                size,
                needed,
                data_blocks: superblock.data_blocks,
            });
        }
        let mut findings = Vec::new();
        let bs = superblock.hash_block_size as usize;
        // The bytes that no field and no level uses.
        let mut canonical = superblock.to_bytes().to_vec();
        canonical.resize(bs, 0);
        zero_findings(&hash_device[..bs], &canonical, 0, &mut findings);
        let tail = &hash_device[needed as usize..];
        zero_findings(tail, &vec![0; tail.len()], needed, &mut findings);

        let salt = &superblock.salt;
        let block =
            |n: u64| &hash_device[n as usize * bs..(n as usize + 1) * bs];
        let per_block = (bs / DIGEST_SIZE) as u64;
        let mut trusted = vec![true];
        if let Some(top) = geometry.levels.last() {
            if digest(salt, block(top.first_block)) != *root_hash {
                findings
                    .push(Finding::RootHash { hash_block: top.first_block });
                trusted[0] = false;
            }
        }
        for i in (0..geometry.levels.len().saturating_sub(1)).rev() {
            let level = geometry.levels[i];
            let parent = geometry.levels[i + 1];
            let below: Vec<bool> = (0..level.blocks)
                .into_par_iter()
                .map(|n| {
                    let p = n / per_block;
                    let entry = (n % per_block) as usize * DIGEST_SIZE;
                    let expected = &block(parent.first_block + p)
                        [entry..entry + DIGEST_SIZE];
                    !trusted[p as usize]
                        || digest(salt, block(level.first_block + n))
                            == expected
                })
                .collect();
            for (n, ok) in (0..).zip(&below) {
                if !ok && trusted[(n / per_block) as usize] {
                    findings.push(Finding::HashBlock {
                        level: i,
                        index: n,
                        hash_block: level.first_block + n,
                    });
                }
            }
            // A block under an untrusted parent is untrusted too.
            trusted = (0..level.blocks)
                .map(|n| {
                    below[n as usize] && trusted[(n / per_block) as usize]
                })
                .collect();
        }
        let leaves = match geometry.levels.first() {
            Some(l) => hash_device[l.first_block as usize * bs
                ..(l.first_block + l.blocks) as usize * bs]
                .to_vec(),
            None => root_hash.to_vec(),
        };
        Ok(Verifier { superblock, leaves, trusted, next_block: 0, findings })
    }

    /// Checks the next data blocks: `chunk` must be whole blocks.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let bs = self.superblock.data_block_size as usize;
        let blocks = (chunk.len() / bs) as u64;
        if !chunk.len().is_multiple_of(bs)
            || self.next_block + blocks > self.superblock.data_blocks
        {
            return Err(self.size_error(chunk.len() as u64));
        }
        let per_block =
            self.superblock.hash_block_size as u64 / DIGEST_SIZE as u64;
        let salt = &self.superblock.salt;
        let first = self.next_block;
        let leaves = &self.leaves;
        let trusted = &self.trusted;
        let mut bad: Vec<u64> = chunk
            .par_chunks(bs)
            .enumerate()
            .filter_map(|(i, b)| {
                let n = first + i as u64;
                if !trusted[(n / per_block) as usize] {
                    return None;
                }
                let at = n as usize * DIGEST_SIZE;
                (digest(salt, b)[..] != leaves[at..at + DIGEST_SIZE])
                    .then_some(n)
            })
            .collect();
        bad.sort_unstable();
        self.findings
            .extend(bad.into_iter().map(|index| Finding::DataBlock { index }));
        self.next_block += blocks;
        Ok(())
    }

    fn size_error(&self, extra: u64) -> Error {
        Error::DataSize {
            size: self.next_block * u64::from(self.superblock.data_block_size)
                + extra,
            data_blocks: self.superblock.data_blocks,
            block_size: self.superblock.data_block_size,
        }
    }

    /// Every difference found, in the order: hash device, then data.
    pub fn finish(self) -> Result<Vec<Finding>, Error> {
        if self.next_block != self.superblock.data_blocks {
            return Err(self.size_error(0));
        }
        Ok(self.findings)
    }
}

/// Runs of bytes in `actual` that differ from `expected`, as `NotZero`
/// findings at `base` + their offset.
fn zero_findings(
    actual: &[u8],
    expected: &[u8],
    base: u64,
    findings: &mut Vec<Finding>,
) {
    findings.extend(differing_runs(actual, expected).into_iter().map(
        |(start, len)| Finding::NotZero {
            offset: base + start as u64,
            len: len as u64,
        },
    ));
}

/// The runs of bytes in which `actual` differs from `expected` (of the same
/// length), as (start, length).
pub fn differing_runs(actual: &[u8], expected: &[u8]) -> Vec<(usize, usize)> {
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
        let mut verifier =
            Verifier::new(&hash.bytes, &hash.root_hash).unwrap();
        verifier.update(data).unwrap();
        verifier.finish().unwrap()
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
            Verifier::new(&hash.bytes[..8192], &hash.root_hash),
            Err(Error::HashDeviceTooSmall { .. })
        ));
    }
}
