/*!
The read side: a built image, read back from its file without root and
without mounting it. `reader` opens the squashfs and gives its tree, its
files and the NAR digest of any subtree; `survey` gathers what the image
holds by portabled's rules; `inspect` shows a survey and `verify` checks
one.
*/

pub mod inspect;
pub mod reader;
pub mod survey;
pub mod verify;
