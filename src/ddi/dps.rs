/*!
The partition types of the Discoverable Partitions Specification that a
portable service image uses: root, root verity and root verity signature,
one triple per architecture.

Source: `uapi-group/specifications`
`specs/discoverable_partitions_specification.md` (the tables "Partition
Names"), the same values as `src/systemd/sd-gpt.h` in systemd-stable
v252.31. systemd dissects an image only if its root partition has the
type of the architecture systemd itself runs on, so the image's
architecture is that of the binaries inside it.

The partition names (GPT labels) are the ones systemd-repart gives when a
definition sets no `Label=`: the type's name from systemd's table,
`"root-" name`, `"root-" name "-verity"` and `"root-" name "-verity-sig"`
(systemd-stable v252.31 `src/shared/gpt.c:18-20`, used by
`partition_acquire_label()` in `src/partition/repart.c:3956`). Nothing in
systemd reads them for a single root partition; matching repart keeps our
tables next to its output easy to compare.
*/

use super::gpt::Guid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    X86_64,
    Arm64,
    X86,
    Arm,
    RiscV64,
    Ppc64Le,
    S390x,
    LoongArch64,
}

/// The three partition types of one architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootTypes {
    pub root: Guid,
    pub verity: Guid,
    pub verity_sig: Guid,
}

const fn types(root: &str, verity: &str, verity_sig: &str) -> RootTypes {
    RootTypes {
        root: Guid::parse_const(root),
        verity: Guid::parse_const(verity),
        verity_sig: Guid::parse_const(verity_sig),
    }
}

impl Architecture {
    pub const ALL: [Architecture; 8] = [
        Architecture::X86_64,
        Architecture::Arm64,
        Architecture::X86,
        Architecture::Arm,
        Architecture::RiscV64,
        Architecture::Ppc64Le,
        Architecture::S390x,
        Architecture::LoongArch64,
    ];

    /// From the CPU part of a Nix system double (`x86_64-linux`).
    pub fn from_nix_system(system: &str) -> Option<Architecture> {
        let cpu = system.strip_suffix("-linux")?;
        Some(match cpu {
            "x86_64" => Architecture::X86_64,
            "aarch64" => Architecture::Arm64,
            "i686" => Architecture::X86,
            "armv6l" | "armv7l" => Architecture::Arm,
            "riscv64" => Architecture::RiscV64,
            "powerpc64le" => Architecture::Ppc64Le,
            "s390x" => Architecture::S390x,
            "loongarch64" => Architecture::LoongArch64,
            _ => return None,
        })
    }

    /// systemd's name for it, as in the partition names.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86-64",
            Architecture::Arm64 => "arm64",
            Architecture::X86 => "x86",
            Architecture::Arm => "arm",
            Architecture::RiscV64 => "riscv64",
            Architecture::Ppc64Le => "ppc64-le",
            Architecture::S390x => "s390x",
            Architecture::LoongArch64 => "loongarch64",
        }
    }

    pub fn types(self) -> RootTypes {
        match self {
            Architecture::X86_64 => types(
                "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
                "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5",
                "41092b05-9fc8-4523-994f-2def0408b176",
            ),
            Architecture::Arm64 => types(
                "b921b045-1df0-41c3-af44-4c6f280d3fae",
                "df3300ce-d69f-4c92-978c-9bfb0f38d820",
                "6db69de6-29f4-4758-a7a5-962190f00ce3",
            ),
            Architecture::X86 => types(
                "44479540-f297-41b2-9af7-d131d5f0458a",
                "d13c5d3b-b5d1-422a-b29f-9454fdc89d76",
                "5996fc05-109c-48de-808b-23fa0830b676",
            ),
            Architecture::Arm => types(
                "69dad710-2ce4-4e3c-b16c-21a1d49abed3",
                "7386cdf2-203c-47a9-a498-f2ecce45a2d6",
                "42b0455f-eb11-491d-98d3-56145ba9d037",
            ),
            Architecture::RiscV64 => types(
                "72ec70a6-cf74-40e6-bd49-4bda08e8f224",
                "b6ed5582-440b-4209-b8da-5ff7c419ea3d",
                "efe0f087-ea8d-4469-821a-4c2a96a8386a",
            ),
            Architecture::Ppc64Le => types(
                "c31c45e6-3f39-412e-80fb-4809c4980599",
                "906bd944-4589-4aae-a4e4-dd983917446a",
                "d4a236e7-e873-4c07-bf1d-bf6cf7f1c3c6",
            ),
            Architecture::S390x => types(
                "5eead9a9-fe09-4a1e-a1d7-520d00531306",
                "b325bfbe-c7be-4ab8-8357-139e652d2f6b",
                "c80187a5-73a3-491a-901a-017c3fa953e9",
            ),
            Architecture::LoongArch64 => types(
                "77055800-792c-4f94-b39a-98c91b762bb6",
                "f3393b22-e9af-4613-a948-9d3bfbd0c535",
                "5afb67eb-ecc8-4f85-ae8e-ac1e7c50e7d0",
            ),
        }
    }

    /// The architecture whose root type is `root`.
    pub fn from_root_type(root: Guid) -> Option<Architecture> {
        Architecture::ALL.into_iter().find(|a| a.types().root == root)
    }

    pub fn root_label(self) -> String {
        format!("root-{}", self.name())
    }

    pub fn verity_label(self) -> String {
        format!("root-{}-verity", self.name())
    }

    pub fn verity_sig_label(self) -> String {
        format!("root-{}-verity-sig", self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_distinct_and_found_back() {
        let mut all: Vec<Guid> = Architecture::ALL
            .iter()
            .flat_map(|a| {
                let t = a.types();
                [t.root, t.verity, t.verity_sig]
            })
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 3 * Architecture::ALL.len());
        for a in Architecture::ALL {
            assert_eq!(Architecture::from_root_type(a.types().root), Some(a));
        }
        assert_eq!(
            Architecture::from_nix_system("aarch64-linux"),
            Some(Architecture::Arm64)
        );
        assert_eq!(Architecture::from_nix_system("x86_64-darwin"), None);
    }
}
