/*!
What systemd and portabled accept, as their own code decides it: unit
names and portabled's prefix rule, the image's file name and the prefix
portablectl derives from it, and os-release files. Both the builder and
the reader of images apply these rules. `unit_file` reads unit files and
says what their services need from a read-only image. For feeds that
hosts follow with systemd-sysupdate: `version`, systemd's order of
versions, and `sha256sums`, the manifest sysupdate reads.
*/

pub mod image_name;
pub mod os_release;
pub mod sha256sums;
pub mod unit_file;
pub mod unit_name;
pub mod version;
