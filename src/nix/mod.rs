/*!
Nix's own formats, with no knowledge of images: store paths and how
`builtins.parseDrvName` splits their names, Nix's base-32, the NAR
archive and its hash, and what Nix records of a store path. The crate
`nix-compat` would hold these, but on crates.io it is an empty
placeholder.
*/

pub mod drv_name;
pub mod nar;
pub mod nixbase32;
pub mod path_info;
pub mod store_path;

/// The modes Nix gives what it puts in the store
/// (`canonicalisePathMetaData` in Nix's `local-store.cc`). A NAR records
/// only whether a file is executable, so a store path with other modes
/// holds something its NAR hash does not cover.
pub struct StoreModes {
    pub file: u32,
    pub executable: u32,
    pub directory: u32,
    pub symlink: u32,
}

pub const STORE_MODES: StoreModes = StoreModes {
    file: 0o444,
    executable: 0o555,
    directory: 0o555,
    symlink: 0o777,
};

impl StoreModes {
    /// A file's mode, by whether the NAR says it is executable.
    pub fn of_file(&self, executable: bool) -> u32 {
        if executable {
            self.executable
        } else {
            self.file
        }
    }
}
