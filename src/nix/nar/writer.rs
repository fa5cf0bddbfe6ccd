/*!
Writes a NAR as the caller walks a tree, so that the tree can be a path on
the host or one read out of a squashfs image.

The types keep the archive well-formed: `open` gives the root `Node`; a
`Node` is consumed by writing it as a file, a symlink or a directory; a
`Directory` hands out one entry's `Node` at a time (the borrow ends before
the next entry) and must be `close`d. Everything the types cannot check is
checked as it is written, and refused with an `InvalidInput` error rather
than written: entry names (not empty, `.` or `..`, no `/` or NUL), their
order (strictly increasing bytes, as Nix requires), symlink targets (not
empty, no NUL) and that a file's reader gives exactly the size announced.
An archive whose writing failed is incomplete and must be thrown away.
*/

use std::io::{self, Read, Write};

use super::wire::{self, write_str, write_strs};

/// Starts an archive in `w`; the returned node is its root.
pub fn open<W: Write>(w: &mut W) -> io::Result<Node<'_, W>> {
    write_str(w, wire::MAGIC)?;
    Ok(Node { w })
}

/// A place in the archive that must be written as exactly one file,
/// symlink or directory.
#[must_use = "a node must be written, or the archive is incomplete"]
pub struct Node<'a, W: Write> {
    w: &'a mut W,
}

impl<'a, W: Write> Node<'a, W> {
    /// Writes a regular file of `size` bytes read from `contents`.
    pub fn file(
        self,
        executable: bool,
        size: u64,
        mut contents: impl Read,
    ) -> io::Result<()> {
        write_strs(self.w, &[wire::OPEN, wire::TYPE, wire::REGULAR])?;
        if executable {
            write_strs(self.w, &[wire::EXECUTABLE, b""])?;
        }
        write_str(self.w, wire::CONTENTS)?;
        wire::write_u64(self.w, size)?;
        let copied = io::copy(&mut (&mut contents).take(size), self.w)?;
        if copied != size {
            return Err(invalid(format!(
                "a file announced as {size} bytes ended after {copied}"
            )));
        }
        // A file that grew since its size was taken would be cut short.
        if contents.read(&mut [0])? != 0 {
            return Err(invalid(format!(
                "a file announced as {size} bytes is longer"
            )));
        }
        wire::write_padding(self.w, size)?;
        write_str(self.w, wire::CLOSE)
    }

    pub fn symlink(self, target: &[u8]) -> io::Result<()> {
        if target.is_empty() || target.contains(&0) {
            return Err(invalid(format!(
                "symlink target {:?} is empty or holds a NUL",
                target.escape_ascii().to_string()
            )));
        }
        write_strs(self.w, &[wire::OPEN, wire::TYPE, wire::SYMLINK])?;
        write_strs(self.w, &[wire::TARGET, target, wire::CLOSE])
    }

    pub fn directory(self) -> io::Result<Directory<'a, W>> {
        write_strs(self.w, &[wire::OPEN, wire::TYPE, wire::DIRECTORY])?;
        Ok(Directory { w: self.w, last_name: None })
    }
}

#[must_use = "a directory must be closed, or the archive is incomplete"]
pub struct Directory<'a, W: Write> {
    w: &'a mut W,
    /// The previous entry's name: its `)` is still to be written, and the
    /// next name must sort after it.
    last_name: Option<Vec<u8>>,
}

impl<W: Write> Directory<'_, W> {
    /// Starts the entry `name`; the returned node is its contents.
    pub fn entry(&mut self, name: &[u8]) -> io::Result<Node<'_, W>> {
        if name.is_empty()
            || name == b"."
            || name == b".."
            || name.contains(&b'/')
            || name.contains(&0)
        {
            return Err(invalid(format!(
                "{:?} cannot be the name of a directory entry",
                name.escape_ascii().to_string()
            )));
        }
        if let Some(last) = &self.last_name {
            if name <= last.as_slice() {
                return Err(invalid(format!(
                    "directory entry {:?} does not sort after {:?}",
                    name.escape_ascii().to_string(),
                    last.escape_ascii().to_string()
                )));
            }
            write_str(self.w, wire::CLOSE)?;
        }
        self.last_name = Some(name.to_vec());
        write_strs(self.w, &[wire::ENTRY, wire::OPEN, wire::NAME, name])?;
        write_str(self.w, wire::NODE)?;
        Ok(Node { w: self.w })
    }

    pub fn close(self) -> io::Result<()> {
        if self.last_name.is_some() {
            write_str(self.w, wire::CLOSE)?;
        }
        write_str(self.w, wire::CLOSE)
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strings of a NAR, padding checked and stripped, to compare with
    /// the grammar.
    fn strings(mut nar: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !nar.is_empty() {
            let len = u64::from_le_bytes(nar[..8].try_into().unwrap());
            let len = len as usize;
            let padded = len.div_ceil(8) * 8;
            assert!(nar[8 + len..8 + padded].iter().all(|&b| b == 0));
            out.push(String::from_utf8_lossy(&nar[8..8 + len]).into_owned());
            nar = &nar[8 + padded..];
        }
        out
    }

    #[test]
    fn writes_the_grammar() {
        let mut nar = Vec::new();
        let mut root = open(&mut nar).unwrap().directory().unwrap();
        root.entry(b"a").unwrap().file(true, 3, &b"abc"[..]).unwrap();
        let mut sub = root.entry(b"b").unwrap().directory().unwrap();
        sub.entry(b"c").unwrap().symlink(b"../a").unwrap();
        sub.close().unwrap();
        root.entry(b"d").unwrap().directory().unwrap().close().unwrap();
        root.entry(b"e").unwrap().file(false, 0, io::empty()).unwrap();
        root.close().unwrap();
        #[rustfmt::skip]
        let expected = [
            "nix-archive-1", "(", "type", "directory",
            "entry", "(", "name", "a", "node",
              "(", "type", "regular", "executable", "", "contents", "abc", ")",
            ")",
            "entry", "(", "name", "b", "node", "(", "type", "directory",
              "entry", "(", "name", "c", "node",
                "(", "type", "symlink", "target", "../a", ")",
              ")",
            ")", ")",
            "entry", "(", "name", "d", "node", "(", "type", "directory", ")",
            ")",
            "entry", "(", "name", "e", "node",
              "(", "type", "regular", "contents", "", ")",
            ")",
            ")",
        ];
        assert_eq!(strings(&nar), expected);
    }

    #[test]
    fn refuses_what_nix_would_not_read() {
        let mut nar = Vec::new();
        let mut dir = open(&mut nar).unwrap().directory().unwrap();
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
            let err = dir.entry(bad).err().expect("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        dir.entry(b"b").unwrap().symlink(b"x").unwrap();
        for out_of_order in [&b"b"[..], b"B", b"a"] {
            let err = dir.entry(out_of_order).err().expect("refused");
            assert!(err.to_string().contains("does not sort after"), "{err}");
        }
        let err = dir.entry(b"c").unwrap().symlink(b"").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let longer = dir.entry(b"ca").unwrap().file(false, 2, &b"abc"[..]);
        assert!(longer.unwrap_err().to_string().contains("is longer"));
        let err = dir.entry(b"d").unwrap().file(false, 4, &b"abc"[..]);
        let err = err.unwrap_err().to_string();
        assert!(err.contains("announced as 4 bytes ended after 3"), "{err}");
    }
}

/// The writer against NARs that `nix-store --dump` wrote (Nix 2.8), and
/// their hashes as `nix-hash --type sha256 --base32` gave them: real NAR
/// bytes, checked without Nix, as the Nix build of the builder runs these
/// tests.
#[cfg(test)]
mod golden {
    use super::*;
    use crate::nix::nar::NarHasher;

    fn nar(write: impl FnOnce(Node<Vec<u8>>) -> io::Result<()>) -> Vec<u8> {
        let mut bytes = Vec::new();
        write(open(&mut bytes).unwrap()).unwrap();
        bytes
    }

    #[track_caller]
    fn assert_golden(ours: Vec<u8>, golden: &[u8], nix_hash: &str) {
        assert!(ours == golden, "our NAR differs from nix-store --dump's");
        let mut hasher = NarHasher::new();
        hasher.write_all(&ours).unwrap();
        let digest = hasher.finish();
        assert_eq!(digest.nar_hash(), nix_hash);
        assert_eq!(digest.size, golden.len() as u64);
    }

    #[test]
    fn a_file() {
        let contents = b"hello, world\n";
        let ours = nar(|root| root.file(false, 13, &contents[..]));
        assert_golden(
            ours,
            include_bytes!("../../../tests/data/nar/file.nar"),
            "sha256:0nya2hjn923syqd433mabf0rabla032jajqil5r8lm972qk07z71",
        );
    }

    #[test]
    fn a_symlink() {
        let target =
            b"/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-bash/bin/sh";
        let ours = nar(|root| root.symlink(target));
        assert_golden(
            ours,
            include_bytes!("../../../tests/data/nar/link.nar"),
            "sha256:1ij5bkd52ba79dr7nkaba6qm9hvkc33h39p86swj0828fk45vj2d",
        );
    }

    /// A directory with a file, an executable, a symlink, an empty file,
    /// an empty directory and a file whose length needs padding.
    #[test]
    fn a_tree() {
        let ours = nar(|root| {
            let mut dir = root.directory()?;
            dir.entry(b"README")?.file(false, 7, &b"golden\n"[..])?;
            let mut bin = dir.entry(b"bin")?.directory()?;
            let hello = b"#!/bin/sh\necho hello\n";
            bin.entry(b"hello")?.file(true, 21, &hello[..])?;
            bin.entry(b"hi")?.symlink(b"hello")?;
            bin.close()?;
            dir.entry(b"empty")?.file(false, 0, &b""[..])?;
            dir.entry(b"lib")?.directory()?.close()?;
            dir.entry(b"odd")?.file(false, 1001, &[0xa5; 1001][..])?;
            dir.close()
        });
        assert_golden(
            ours,
            include_bytes!("../../../tests/data/nar/tree.nar"),
            "sha256:0vm29iy7qq4sl2p5ng0cirx71cbvjcihbhsvjc7k6cah4sf7zb3s",
        );
    }
}
