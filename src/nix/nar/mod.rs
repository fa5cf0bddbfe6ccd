/*!
Nix archives (NARs): the serialisation of a store path that Nix hashes for
`narHash` and measures for `narSize`.

`wire` gives the format; `writer` writes it as a caller walks a tree;
`hash` turns the written bytes into a `NarDigest` without keeping them;
`host` walks a path on the host. The image reader walks a tree inside a
squashfs image with the same writer, so that `verify` can compare what an
image holds with what Nix recorded.
*/

pub mod hash;
pub mod host;
pub mod wire;
pub mod writer;

pub use hash::{NarDigest, NarHasher};
