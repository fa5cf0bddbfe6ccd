/*!
The NAR wire format, as Nix writes it (`nix-store --dump`).

Everything is a sequence of strings and 64-bit numbers. A number is 8
bytes, little-endian. A string is its length as a number, then its bytes,
then zero bytes up to a multiple of 8. File contents are written as one
string, so they are padded too. The grammar, with every literal a string:

```text
nar       = "nix-archive-1" node
node      = "(" "type" kind ")"
kind      = "regular" ["executable" ""] "contents" CONTENTS
          | "symlink" "target" TARGET
          | "directory" entry*
entry     = "entry" "(" "name" NAME "node" node ")"
```

A directory's entries come in strictly increasing order of their names'
bytes (not the locale's order), and a name is never empty, `.` or `..`,
and holds no `/` and no NUL. Nothing else is recorded: no times, owners
or permissions besides the executable bit.
*/

use std::io::{self, Write};

pub const MAGIC: &[u8] = b"nix-archive-1";
pub const OPEN: &[u8] = b"(";
pub const CLOSE: &[u8] = b")";
pub const TYPE: &[u8] = b"type";
pub const REGULAR: &[u8] = b"regular";
pub const EXECUTABLE: &[u8] = b"executable";
pub const CONTENTS: &[u8] = b"contents";
pub const SYMLINK: &[u8] = b"symlink";
pub const TARGET: &[u8] = b"target";
pub const DIRECTORY: &[u8] = b"directory";
pub const ENTRY: &[u8] = b"entry";
pub const NAME: &[u8] = b"name";
pub const NODE: &[u8] = b"node";

const ZEROS: [u8; 8] = [0; 8];

pub fn write_u64(w: &mut impl Write, n: u64) -> io::Result<()> {
    w.write_all(&n.to_le_bytes())
}

/// Writes the zero bytes that follow `len` bytes of a string.
pub fn write_padding(w: &mut impl Write, len: u64) -> io::Result<()> {
    let pad = (8 - len % 8) % 8;
    w.write_all(&ZEROS[..pad as usize])
}

pub fn write_str(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    write_u64(w, bytes.len() as u64)?;
    w.write_all(bytes)?;
    write_padding(w, bytes.len() as u64)
}

/// Writes several strings in a row, as the grammar's fixed runs of
/// literals (`"(" "type" "regular"`).
pub fn write_strs(w: &mut impl Write, strs: &[&[u8]]) -> io::Result<()> {
    strs.iter().try_for_each(|s| write_str(w, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_strings_to_eight_bytes() {
        let mut out = Vec::new();
        write_strs(&mut out, &[b"", b"(", b"contents!"]).unwrap();
        let mut expected = vec![0u8; 8];
        expected.extend([1, 0, 0, 0, 0, 0, 0, 0, b'(', 0, 0, 0, 0, 0, 0, 0]);
        expected.extend([9, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend(b"contents!\0\0\0\0\0\0\0");
        assert_eq!(out, expected);
    }
}
