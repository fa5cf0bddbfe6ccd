/*!
What Nix records of a store path: its NAR hash and size and its
references, as `exportReferencesGraph` writes them into `.attrs.json`
under `__structuredAttrs`. The builder reads them there, and every image
keeps them in its manifest for `verify`.
*/

use serde::{Deserialize, Serialize};

use crate::nix::store_path::StorePath;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PathInfo {
    pub path: StorePath,
    pub nar_hash: String,
    pub nar_size: u64,
    pub references: Vec<StorePath>,
}
