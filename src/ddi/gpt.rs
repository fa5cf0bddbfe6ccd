/*!
The GUID Partition Table of a disk image: writing one for a layout we
chose, and reading one back with every field checked.

# Why our own code and not a crate

Two maintained crates could write this table: `gptman` lets a caller set
the disk GUID and assign entries at exact LBAs and writes a protective
MBR; `gpt` places partitions with its own allocator (`add_partition`) and
makes a random disk GUID unless given one. We still keep our own, because
every byte of the image must follow from its inputs and match what
systemd-repart writes: with a crate, the first usable LBA, the entry
count, the MBR's CHS bytes and the padding are its defaults, to be found,
overridden and re-checked on every update of it. The format is small and
fixed (this module is its specification and its checks), the
crates would add dependencies (`gptman`: `bincode`, `crc` and, by
default, `nix`) to the builder that runs in every image build, and the
reader's checks (both copies agree, the backup header is the last sector,
no partition overlaps another) and its error for each fault are ours to
choose. The CRC32 (IEEE, reflected, as zlib's) is a 256-entry table
built at compile time: it runs over 16.5 KiB per table, so speed does not
matter and a dependency is not worth it.

# Format (UEFI 2.10, section 5.3; 512-byte sectors)

```text
LBA 0        protective MBR: one partition record at byte 446, status 0,
             CHS start 00 02 00, type 0xEE, CHS end ff ff ff, first LBA 1,
             size min(disk sectors - 1, 0xffffffff); 55 aa at byte 510
LBA 1        primary header (92 bytes, rest of the sector zero)
LBA 2..33    partition entry array: 128 entries of 128 bytes
  ...        partitions, between first and last usable LBA
LBA n-33     backup entry array (same bytes as the primary one)
LBA n-1      backup header
```

Header, all integers little-endian:

```text
 0  8  "EFI PART"          40  8  first usable LBA
 8  4  revision 0x00010000 48  8  last usable LBA
12  4  header size (92)    56 16  disk GUID
16  4  CRC32 of the header 72  8  LBA of the entry array
       with this field 0   80  4  number of entries (128)
20  4  reserved (0)        84  4  size of an entry (128)
24  8  this header's LBA   88  4  CRC32 of the entry array
32  8  the other's LBA
```

Entry: type GUID (16 bytes), partition GUID (16), first LBA (8), last LBA
(8, inclusive), attribute bits (8), name (72 bytes: up to 36 UTF-16LE code
units, NUL-padded). An entry whose type GUID is all zero is unused.

A GUID is written with its first three fields little-endian: the string
`01234567-89ab-cdef-0123-456789abcdef` is stored as the bytes
`67 45 23 01 ab 89 ef cd 01 23 45 67 89 ab cd ef`. [`Guid`] holds the
bytes in string order, as systemd's `sd_id128_t` does, and converts at
this boundary only.

The layout follows what systemd-repart writes through libfdisk for a new
image file (checked with `systemd-repart` 252 and `sfdisk -d`): the MBR
above, first usable LBA 2048 (1 MiB), 128 entries, and the last usable LBA
right before the backup array.
*/

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const SECTOR: u64 = 512;
/// Where the first partition may start: 1 MiB, as libfdisk aligns it.
pub const FIRST_USABLE_LBA: u64 = 2048;
pub const ENTRIES: u32 = 128;
pub const ENTRY_SIZE: u32 = 128;
/// Sectors taken by the entry array: 128 * 128 bytes.
pub const ENTRY_SECTORS: u64 = ENTRIES as u64 * ENTRY_SIZE as u64 / SECTOR;
/// Sectors after the last usable one: the backup array and header.
pub const BACKUP_SECTORS: u64 = ENTRY_SECTORS + 1;

const SIGNATURE: &[u8; 8] = b"EFI PART";
const REVISION: u32 = 0x0001_0000;
const HEADER_SIZE: u32 = 92;
/// The longest entry array we read: 128 entries is what everyone writes,
/// and a larger count in a corrupt header must not make us allocate
/// gigabytes.
const MAX_ENTRY_ARRAY: u64 = 1 << 20;
const NAME_UNITS: usize = 36;

/// Attribute bit 60: mount read-only (Discoverable Partitions
/// Specification, "Partition Attribute Flags").
pub const FLAG_READ_ONLY: u64 = 1 << 60;

/// A GUID, its bytes in the order of its string form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` at compile time, for
    /// the constants of the specifications; a malformed string does not
    /// compile.
    pub const fn parse_const(s: &str) -> Guid {
        let s = s.as_bytes();
        assert!(s.len() == 36, "a GUID has 36 characters");
        let mut bytes = [0u8; 16];
        let (mut i, mut n) = (0, 0);
        while i < 36 {
            if matches!(i, 8 | 13 | 18 | 23) {
                assert!(s[i] == b'-', "dashes at 8, 13, 18 and 23");
                i += 1;
                continue;
            }
            bytes[n / 2] |= hex_value(s[i]) << if n % 2 == 0 { 4 } else { 0 };
            n += 1;
            i += 1;
        }
        Guid(bytes)
    }

    /// As stored in a GPT: the first three fields byte-swapped.
    pub fn to_gpt_bytes(self) -> [u8; 16] {
        let mut b = self.0;
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        b
    }

    pub fn from_gpt_bytes(bytes: [u8; 16]) -> Guid {
        // The swap is its own inverse.
        Guid(Guid(bytes).to_gpt_bytes())
    }

    pub fn is_nil(self) -> bool {
        self.0 == [0; 16]
    }
}

const fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("not a hex digit"),
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One used entry of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Its place in the entry array: partition `index + 1` to Linux.
    pub index: u32,
    pub type_guid: Guid,
    pub guid: Guid,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub attributes: u64,
    pub name: String,
}

impl Partition {
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }

    pub fn size(&self) -> u64 {
        (self.last_lba - self.first_lba + 1) * SECTOR
    }
}

/// A whole table: what both headers and both entry arrays say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpt {
    pub disk_guid: Guid,
    /// The disk's size in sectors; the backup header is the last one.
    pub sectors: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    /// The used entries, by index.
    pub partitions: Vec<Partition>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Primary,
    Backup,
}

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Which::Primary => "primary",
            Which::Backup => "backup",
        })
    }
}

/// The bytes of one structure of the table and where they go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub structure: Structure,
    /// In the image, in bytes.
    pub offset: u64,
    pub bytes: Vec<u8>,
}

impl Region {
    /// The first byte where `found`, the bytes at the region's place,
    /// differs from the region's. A header's CRC32 is looked at last: it
    /// follows from the other bytes, so a change to any of them is named
    /// where it is, not in the CRC32 before it.
    pub fn first_difference(&self, found: &[u8]) -> Option<usize> {
        let crc = match self.structure {
            Structure::Header(_) => 16..20,
            _ => 0..0,
        };
        let differs = |i: &usize| found.get(*i) != self.bytes.get(*i);
        let mut outside = (0..self.bytes.len()).filter(|i| !crc.contains(i));
        outside.find(differs).or_else(|| crc.clone().find(differs))
    }
}

/// A structure of the table, to say where bytes differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structure {
    ProtectiveMbr,
    /// The header's sector: the header and the zeros after it.
    Header(Which),
    Entries(Which),
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Structure::ProtectiveMbr => f.write_str("the protective MBR"),
            Structure::Header(which) => write!(f, "the {which} GPT header"),
            Structure::Entries(which) => {
                write!(f, "the {which} GPT entry array")
            }
        }
    }
}

impl Structure {
    /// The field at byte `at` of the structure, as the module doc lays
    /// them out.
    pub fn field(self, at: usize) -> String {
        match self {
            Structure::ProtectiveMbr => named(MBR_FIELDS, at).into(),
            Structure::Header(_) => named(HEADER_FIELDS, at).into(),
            Structure::Entries(_) => {
                let size = ENTRY_SIZE as usize;
                let field = named(ENTRY_FIELDS, at % size);
                format!("entry {}'s {field}", at / size + 1)
            }
        }
    }
}

/// Where each field starts.
const MBR_FIELDS: &[(usize, &str)] = &[
    (0, "the boot code"),
    (446, "the partition record's status"),
    (447, "the partition record's CHS start"),
    (450, "the partition record's type"),
    (451, "the partition record's CHS end"),
    (454, "the partition record's first LBA"),
    (458, "the partition record's size"),
    (462, "the other partition records"),
    (510, "the boot signature"),
];
const HEADER_FIELDS: &[(usize, &str)] = &[
    (0, "the signature"),
    (8, "the revision"),
    (12, "the header size"),
    (16, "the header's CRC32"),
    (20, "the reserved field"),
    (24, "this header's LBA"),
    (32, "the other header's LBA"),
    (40, "the first usable LBA"),
    (48, "the last usable LBA"),
    (56, "the disk GUID"),
    (72, "the entry array's LBA"),
    (80, "the number of entries"),
    (84, "the size of an entry"),
    (88, "the entry array's CRC32"),
    (HEADER_SIZE as usize, "the rest of the sector"),
];
const ENTRY_FIELDS: &[(usize, &str)] = &[
    (0, "type GUID"),
    (16, "partition GUID"),
    (32, "first LBA"),
    (40, "last LBA"),
    (48, "attributes"),
    (56, "name"),
];

/// The field of `fields` that byte `at` is in.
fn named(fields: &[(usize, &'static str)], at: usize) -> &'static str {
    fields.iter().rev().find(|(start, _)| *start <= at).map_or("", |f| f.1)
}

/// What is wrong with a table that [`Gpt::read`] rejects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("reading the partition table: {0}")]
    Io(#[from] io::Error),
    #[error(
        "the file is {size} bytes, too small for a GPT \
         ({min} bytes at least)"
    )]
    TooSmall { size: u64, min: u64 },
    #[error(
        "the file's size, {size} bytes, is not a multiple of the \
         512-byte sector"
    )]
    NotWholeSectors { size: u64 },
    #[error("no GPT: no \"EFI PART\" signature at byte 512")]
    NoGpt,
    #[error(
        "the GPT uses 4096-byte sectors; only 512-byte sectors are \
         supported"
    )]
    SectorSize4096,
    #[error("the {which} GPT header at LBA {lba}: {problem}")]
    BadHeader { which: Which, lba: u64, problem: String },
    #[error(
        "the {which} GPT header's CRC32 is {stored:#010x}, \
         its contents give {computed:#010x}"
    )]
    HeaderCrc { which: Which, stored: u32, computed: u32 },
    #[error(
        "the {which} GPT entry array's CRC32 is {stored:#010x}, \
         its contents give {computed:#010x}"
    )]
    EntriesCrc { which: Which, stored: u32, computed: u32 },
    #[error(
        "the backup GPT header should be at LBA {expected} (the last \
         sector), the primary header says {found}"
    )]
    BackupMisplaced { expected: u64, found: u64 },
    #[error("the primary and backup GPTs differ in {field}")]
    Mismatch { field: &'static str },
    #[error("GPT partition {number}: {problem}")]
    BadPartition { number: u32, problem: String },
    #[error(
        "GPT partitions {a} and {b} overlap (LBA {a_first}..={a_last} \
         and {b_first}..={b_last})"
    )]
    Overlap {
        a: u32,
        a_first: u64,
        a_last: u64,
        b: u32,
        b_first: u64,
        b_last: u64,
    },
}

impl Gpt {
    /// A table for a disk of `sectors` sectors with `partitions` at
    /// entries 0, 1, ... (their `index` is set from their order).
    pub fn new(
        disk_guid: Guid,
        sectors: u64,
        partitions: Vec<Partition>,
    ) -> Gpt {
        let partitions = partitions
            .into_iter()
            .zip(0..)
            .map(|(p, index)| Partition { index, ..p })
            .collect();
        Gpt {
            disk_guid,
            sectors,
            first_usable_lba: FIRST_USABLE_LBA,
            last_usable_lba: sectors - BACKUP_SECTORS - 1,
            partitions,
        }
    }

    /// Writes the protective MBR, both headers and both entry arrays into
    /// `file`, which must already be `sectors` long or be grown by the
    /// caller; nothing else is touched.
    pub fn write(&self, file: &File) -> io::Result<()> {
        let entries_crc = crc32(&self.entry_array());
        for region in self.regions(entries_crc) {
            file.write_all_at(&region.bytes, region.offset)?;
        }
        Ok(())
    }

    /// The protective MBR, both headers and both entry arrays, with their
    /// places in the image: what [`Gpt::write`] writes, but with headers
    /// that record `entries_crc` as the entry array's CRC32. A verifier
    /// gives the CRC32 it found, which the reader checked against the
    /// entries: a difference in the entries is then named there, not
    /// again in both headers.
    pub fn regions(&self, entries_crc: u32) -> [Region; 5] {
        let entries = self.entry_array();
        let backup_entries_lba = self.sectors - BACKUP_SECTORS;
        let region = |structure, lba: u64, bytes| Region {
            structure,
            offset: lba * SECTOR,
            bytes,
        };
        let header = |which, my_lba, alternate_lba, entries_lba| {
            let h =
                self.header(my_lba, alternate_lba, entries_lba, entries_crc);
            region(Structure::Header(which), my_lba, h.to_vec())
        };
        [
            region(
                Structure::ProtectiveMbr,
                0,
                self.protective_mbr().to_vec(),
            ),
            header(Which::Primary, 1, self.sectors - 1, 2),
            region(Structure::Entries(Which::Primary), 2, entries.clone()),
            region(
                Structure::Entries(Which::Backup),
                backup_entries_lba,
                entries,
            ),
            header(Which::Backup, self.sectors - 1, 1, backup_entries_lba),
        ]
    }

    fn protective_mbr(&self) -> [u8; SECTOR as usize] {
        let mut mbr = [0u8; SECTOR as usize];
        let size = u32::try_from(self.sectors - 1).unwrap_or(u32::MAX);
        mbr[446..462].copy_from_slice(&[
            0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0,
            0, 0,
        ]);
        mbr[458..462].copy_from_slice(&size.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        mbr
    }

    fn header(
        &self,
        my_lba: u64,
        alternate_lba: u64,
        entries_lba: u64,
        entries_crc: u32,
    ) -> [u8; SECTOR as usize] {
        let mut h = [0u8; SECTOR as usize];
        h[0..8].copy_from_slice(SIGNATURE);
        h[8..12].copy_from_slice(&REVISION.to_le_bytes());
        h[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        h[24..32].copy_from_slice(&my_lba.to_le_bytes());
        h[32..40].copy_from_slice(&alternate_lba.to_le_bytes());
        h[40..48].copy_from_slice(&self.first_usable_lba.to_le_bytes());
        h[48..56].copy_from_slice(&self.last_usable_lba.to_le_bytes());
        h[56..72].copy_from_slice(&self.disk_guid.to_gpt_bytes());
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&ENTRIES.to_le_bytes());
        h[84..88].copy_from_slice(&ENTRY_SIZE.to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32(&h[..HEADER_SIZE as usize]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The 128 entries. A table read from a file may have partitions past
    /// them (its header can give more entries); those have no place here,
    /// and what the file holds there is compared with zero instead.
    fn entry_array(&self) -> Vec<u8> {
        let mut array = vec![0u8; (ENTRIES * ENTRY_SIZE) as usize];
        for p in self.partitions.iter().filter(|p| p.index < ENTRIES) {
            let start = p.index as usize * ENTRY_SIZE as usize;
            let e = &mut array[start..start + ENTRY_SIZE as usize];
            e[0..16].copy_from_slice(&p.type_guid.to_gpt_bytes());
            e[16..32].copy_from_slice(&p.guid.to_gpt_bytes());
            e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
            e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
            e[48..56].copy_from_slice(&p.attributes.to_le_bytes());
            let units = p.name.encode_utf16().take(NAME_UNITS);
            for (i, unit) in units.enumerate() {
                e[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
            }
        }
        array
    }

    /// Reads and checks the table of `file`: the signature, both headers
    /// and their CRC32s, both entry arrays and theirs, that the two copies
    /// agree, that the backup header is the file's last sector, and that
    /// every partition lies within the usable sectors without overlapping
    /// another.
    pub fn read(file: &File) -> Result<Gpt, Error> {
        let size = file.metadata()?.len();
        let min = (2 + ENTRY_SECTORS + BACKUP_SECTORS) * SECTOR;
        if size < min {
            return Err(Error::TooSmall { size, min });
        }
        if size % SECTOR != 0 {
            return Err(Error::NotWholeSectors { size });
        }
        let sectors = size / SECTOR;
        let primary = read_sector(file, 1)?;
        if &primary[0..8] != SIGNATURE {
            let at_4096 = read_at(file, 4096, 8)?;
            return Err(if at_4096 == SIGNATURE {
                Error::SectorSize4096
            } else {
                Error::NoGpt
            });
        }
        let primary = Header::parse(Which::Primary, 1, &primary, sectors)?;
        if primary.alternate_lba != sectors - 1 {
            return Err(Error::BackupMisplaced {
                expected: sectors - 1,
                found: primary.alternate_lba,
            });
        }
        let backup_sector = read_sector(file, sectors - 1)?;
        let backup = Header::parse(
            Which::Backup,
            sectors - 1,
            &backup_sector,
            sectors,
        )?;
        let entries = primary.read_entries(file)?;
        let backup_entries = backup.read_entries(file)?;
        primary.agrees_with(&backup)?;
        if entries != backup_entries {
            return Err(Error::Mismatch { field: "the entry arrays" });
        }
        let gpt = Gpt {
            disk_guid: primary.disk_guid,
            sectors,
            first_usable_lba: primary.first_usable_lba,
            last_usable_lba: primary.last_usable_lba,
            partitions: parse_entries(&entries, primary.entry_size)?,
        };
        gpt.check_partitions()?;
        Ok(gpt)
    }

    fn check_partitions(&self) -> Result<(), Error> {
        for p in &self.partitions {
            let bad = |problem: String| Error::BadPartition {
                number: p.index + 1,
                problem,
            };
            if p.first_lba > p.last_lba {
                return Err(bad(format!(
                    "its first LBA {} is after its last LBA {}",
                    p.first_lba, p.last_lba
                )));
            }
            if p.first_lba < self.first_usable_lba
                || p.last_lba > self.last_usable_lba
            {
                return Err(bad(format!(
                    "LBA {}..={} is outside the usable LBA {}..={}",
                    p.first_lba,
                    p.last_lba,
                    self.first_usable_lba,
                    self.last_usable_lba
                )));
            }
        }
        let mut by_start: Vec<&Partition> = self.partitions.iter().collect();
        by_start.sort_by_key(|p| p.first_lba);
        for pair in by_start.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.first_lba <= a.last_lba {
                return Err(Error::Overlap {
                    a: a.index + 1,
                    a_first: a.first_lba,
                    a_last: a.last_lba,
                    b: b.index + 1,
                    b_first: b.first_lba,
                    b_last: b.last_lba,
                });
            }
        }
        Ok(())
    }
}

/// The fields of one header that matter after it was checked.
struct Header {
    which: Which,
    alternate_lba: u64,
    first_usable_lba: u64,
    last_usable_lba: u64,
    disk_guid: Guid,
    entries_lba: u64,
    entry_count: u32,
    entry_size: u32,
    entries_crc: u32,
}

impl Header {
    fn parse(
        which: Which,
        lba: u64,
        s: &[u8],
        sectors: u64,
    ) -> Result<Header, Error> {
        let bad = |problem: String| Error::BadHeader { which, lba, problem };
        if &s[0..8] != SIGNATURE {
            return Err(bad("no \"EFI PART\" signature".into()));
        }
        let u32_at =
            |i: usize| u32::from_le_bytes(s[i..i + 4].try_into().unwrap());
        let u64_at =
            |i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap());
        let header_size = u32_at(12);
        if !(HEADER_SIZE..=SECTOR as u32).contains(&header_size) {
            return Err(bad(format!("header size {header_size}")));
        }
        let stored = u32_at(16);
        let mut copy = s[..header_size as usize].to_vec();
        copy[16..20].fill(0);
        let computed = crc32(&copy);
        if stored != computed {
            return Err(Error::HeaderCrc { which, stored, computed });
        }
        if u64_at(24) != lba {
            return Err(bad(format!("it says it is at LBA {}", u64_at(24))));
        }
        let h = Header {
            which,
            alternate_lba: u64_at(32),
            first_usable_lba: u64_at(40),
            last_usable_lba: u64_at(48),
            disk_guid: Guid::from_gpt_bytes(s[56..72].try_into().unwrap()),
            entries_lba: u64_at(72),
            entry_count: u32_at(80),
            entry_size: u32_at(84),
            entries_crc: u32_at(88),
        };
        if h.entry_size < 128 || !h.entry_size.is_multiple_of(8) {
            return Err(bad(format!("entry size {}", h.entry_size)));
        }
        let array = u64::from(h.entry_count) * u64::from(h.entry_size);
        if array > MAX_ENTRY_ARRAY {
            return Err(bad(format!(
                "{} entries of {} bytes",
                h.entry_count, h.entry_size
            )));
        }
        let array_sectors = array.div_ceil(SECTOR);
        let fits = |first: u64, count: u64| {
            first.checked_add(count).is_some_and(|end| end <= sectors)
        };
        if h.entries_lba < 2 || !fits(h.entries_lba, array_sectors) {
            return Err(bad(format!(
                "its entry array at LBA {} ({array_sectors} sectors) is \
                 outside the disk's {sectors} sectors",
                h.entries_lba
            )));
        }
        if h.first_usable_lba > h.last_usable_lba
            || h.last_usable_lba >= sectors
        {
            return Err(bad(format!(
                "usable LBA {}..={} on a disk of {sectors} sectors",
                h.first_usable_lba, h.last_usable_lba
            )));
        }
        Ok(h)
    }

    fn read_entries(&self, file: &File) -> Result<Vec<u8>, Error> {
        let len = self.entry_count as usize * self.entry_size as usize;
        let entries = read_at(file, self.entries_lba * SECTOR, len)?;
        let computed = crc32(&entries);
        if computed != self.entries_crc {
            return Err(Error::EntriesCrc {
                which: self.which,
                stored: self.entries_crc,
                computed,
            });
        }
        Ok(entries)
    }

    fn agrees_with(&self, backup: &Header) -> Result<(), Error> {
        let fields = [
            ("the disk GUID", self.disk_guid == backup.disk_guid),
            (
                "the usable sectors",
                (self.first_usable_lba, self.last_usable_lba)
                    == (backup.first_usable_lba, backup.last_usable_lba),
            ),
            (
                "the entry count or size",
                (self.entry_count, self.entry_size)
                    == (backup.entry_count, backup.entry_size),
            ),
            ("the backup header's pointer back", backup.alternate_lba == 1),
        ];
        match fields.into_iter().find(|(_, same)| !same) {
            Some((field, _)) => Err(Error::Mismatch { field }),
            None => Ok(()),
        }
    }
}

/// The entry array's CRC32 that the header in `sector` records (unchecked:
/// [`Gpt::read`] checks it against the entries).
pub fn recorded_entries_crc(sector: &[u8]) -> u32 {
    u32::from_le_bytes(sector[88..92].try_into().unwrap())
}

fn parse_entries(
    entries: &[u8],
    entry_size: u32,
) -> Result<Vec<Partition>, Error> {
    let mut partitions = Vec::new();
    for (index, e) in (0..).zip(entries.chunks_exact(entry_size as usize)) {
        let type_guid = Guid::from_gpt_bytes(e[0..16].try_into().unwrap());
        if type_guid.is_nil() {
            continue;
        }
        let u64_at =
            |i: usize| u64::from_le_bytes(e[i..i + 8].try_into().unwrap());
        let units: Vec<u16> = e[56..56 + 2 * NAME_UNITS]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let name =
            String::from_utf16(&units).map_err(|_| Error::BadPartition {
                number: index + 1,
                problem: "its name is not valid UTF-16".into(),
            })?;
        partitions.push(Partition {
            index,
            type_guid,
            guid: Guid::from_gpt_bytes(e[16..32].try_into().unwrap()),
            first_lba: u64_at(32),
            last_lba: u64_at(40),
            attributes: u64_at(48),
            name,
        });
    }
    Ok(partitions)
}

fn read_sector(file: &File, lba: u64) -> io::Result<Vec<u8>> {
    read_at(file, lba * SECTOR, SECTOR as usize)
}

fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// The CRC-32 of `bytes` that GPT headers and entry arrays carry (that of
/// zlib and PNG): flate2's, which zlib-rs computes.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT_X86_64: Guid =
        Guid::parse_const("4f68bce3-e8cd-4db1-96e7-fbcaf984b709");

    #[test]
    fn crc32_check_value() {
        // The catalogue's check value for CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn guids_are_stored_mixed_endian() {
        let g = Guid::parse_const("01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(g.to_string(), "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(
            g.to_gpt_bytes(),
            [
                0x67, 0x45, 0x23, 0x01, 0xab, 0x89, 0xef, 0xcd, 0x01, 0x23,
                0x45, 0x67, 0x89, 0xab, 0xcd, 0xef
            ]
        );
        assert_eq!(Guid::from_gpt_bytes(g.to_gpt_bytes()), g);
        // As systemd-repart's table holds the x86-64 root type.
        assert_eq!(
            ROOT_X86_64.to_gpt_bytes()[..8],
            [0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d]
        );
    }

    fn sample(sectors: u64) -> Gpt {
        Gpt::new(
            Guid([7; 16]),
            sectors,
            vec![
                Partition {
                    index: 0,
                    type_guid: ROOT_X86_64,
                    guid: Guid([1; 16]),
                    first_lba: 2048,
                    last_lba: 2055,
                    attributes: FLAG_READ_ONLY,
                    name: "root-x86-64".into(),
                },
                Partition {
                    index: 0,
                    type_guid: ROOT_X86_64,
                    guid: Guid([2; 16]),
                    first_lba: 2056,
                    last_lba: 2063,
                    attributes: 0,
                    name: "ünïcödé".into(),
                },
            ],
        )
    }

    fn written(gpt: &Gpt) -> File {
        let file = tempfile::tempfile().unwrap();
        file.set_len(gpt.sectors * SECTOR).unwrap();
        gpt.write(&file).unwrap();
        file
    }

    #[test]
    fn reads_back_what_it_writes() {
        let gpt = sample(2064 + BACKUP_SECTORS);
        assert_eq!(gpt.partitions[1].index, 1);
        assert_eq!(Gpt::read(&written(&gpt)).unwrap(), gpt);
    }

    fn flip(file: &File, offset: u64) {
        let mut b = [0u8];
        file.read_exact_at(&mut b, offset).unwrap();
        file.write_all_at(&[b[0] ^ 1], offset).unwrap();
    }

    #[test]
    fn names_each_kind_of_damage() {
        let gpt = sample(2064 + BACKUP_SECTORS);
        let last = gpt.sectors - 1;
        type Expect = fn(&Error) -> bool;
        let cases: Vec<(u64, Expect)> = vec![
            (512 + 60, |e| {
                matches!(e, Error::HeaderCrc { which: Which::Primary, .. })
            }),
            (1024 + 20, |e| {
                matches!(e, Error::EntriesCrc { which: Which::Primary, .. })
            }),
            (last * 512 + 60, |e| {
                matches!(e, Error::HeaderCrc { which: Which::Backup, .. })
            }),
            ((last - 32) * 512, |e| {
                matches!(e, Error::EntriesCrc { which: Which::Backup, .. })
            }),
            (512, |e| matches!(e, Error::NoGpt)),
        ];
        for (offset, expected) in cases {
            let file = written(&gpt);
            flip(&file, offset);
            let err = Gpt::read(&file).unwrap_err();
            assert!(expected(&err), "byte {offset}: {err}");
        }
    }

    #[test]
    fn rejects_truncation_and_overlap() {
        let gpt = sample(2064 + BACKUP_SECTORS);
        let file = written(&gpt);
        file.set_len((gpt.sectors - 1) * SECTOR).unwrap();
        let err = Gpt::read(&file).unwrap_err();
        assert!(matches!(err, Error::BackupMisplaced { .. }), "{err}");
        file.set_len(1000).unwrap();
        assert!(matches!(Gpt::read(&file), Err(Error::TooSmall { .. })));

        let mut overlapping = gpt.clone();
        overlapping.partitions[1].first_lba = 2055;
        let err = Gpt::read(&written(&overlapping)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GPT partitions 1 and 2 overlap (LBA 2048..=2055 and \
             2055..=2063)"
        );
        let mut outside = gpt.clone();
        outside.partitions[1].last_lba = gpt.last_usable_lba + 1;
        let err = Gpt::read(&written(&outside)).unwrap_err();
        assert!(matches!(err, Error::BadPartition { number: 2, .. }));
    }

    #[test]
    fn never_panics_on_garbage() {
        // Headers with valid CRCs but wild fields.
        for field in [12usize, 24, 32, 40, 48, 72, 80, 84] {
            for value in [0u64, 3, u32::MAX as u64, u64::MAX] {
                let file = written(&sample(2064 + BACKUP_SECTORS));
                let mut h = read_sector(&file, 1).unwrap();
                let width = if field >= 80 || field == 12 { 4 } else { 8 };
                h[field..field + width]
                    .copy_from_slice(&value.to_le_bytes()[..width]);
                h[16..20].fill(0);
                let crc = crc32(&h[..92]);
                h[16..20].copy_from_slice(&crc.to_le_bytes());
                file.write_all_at(&h, SECTOR).unwrap();
                assert!(Gpt::read(&file).is_err(), "field {field} = {value}");
            }
        }
    }
}
