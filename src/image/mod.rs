/*!
The read side: a built image, read back from its file without root and
without mounting it, with `crate::squashfs`. `nar` writes the NAR of any
subtree, as Nix would of a store path; `survey` gathers what the image
holds by portabled's rules; `inspect` shows a survey, `verify` checks
one and `sbom` writes it as a CycloneDX document; `sign` signs a disk
image that `verify` finds nothing wrong with.
*/

pub mod inspect;
pub mod nar;
pub mod sbom;
pub mod sign;
pub mod survey;
pub mod verify;
