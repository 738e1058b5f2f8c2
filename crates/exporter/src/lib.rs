//! kiln's exporters: a built image turned into every output `docker buildx build -o`
//! offers, in the formats BuildKit v0.24 writes.
//!
//! - [`assemble`] turns an [`Image`] (the frontend's [`kiln_graph::ImageConfig`] and
//!   the layer blobs, [`ExportLayer`]) into an [`Assembled`] image: the config with
//!   `rootfs`, history times and `created` filled in as BuildKit's image writer fills
//!   them (with and without `SOURCE_DATE_EPOCH`), and the manifest, both as the
//!   exact bytes BuildKit would produce from the same inputs.
//! - [`OutputSpec::parse`] reads the `-o` syntax (`type=oci,dest=out.tar,...`, `-o DIR`,
//!   `-o -`), and gives the [`AssembleOptions`] (media types, epoch, annotations)
//!   each output implies.
//! - [`write_oci`] and [`write_docker`] write an OCI layout (tarball or directory) or
//!   a tarball for `docker load`/`podman load`; [`push()`] sends the image to
//!   registries, skipping and mounting blobs; [`write_local`] and [`write_tar`] export
//!   the final filesystem.
//!
//! Outputs are deterministic (the same inputs give the same bytes) and never
//! half-written: files and new directories are built beside their destination and
//! renamed into place.
//!
//! ```no_run
//! use std::path::Path;
//! use kiln_exporter::{assemble, write_oci, Image, OutputSpec};
//!
//! # fn export(image: &Image) -> Result<(), kiln_exporter::ExportError> {
//! let spec = OutputSpec::parse("type=oci,dest=out.tar,name=app:1")?;
//! let platform = image.config.platform();
//! let opts = spec.assemble_options(&platform, None)?.expect("an image output");
//! let assembled = assemble(image, &opts)?;
//! let names = &spec.image().expect("an image output").names;
//! write_oci(&assembled, image, Path::new("out.tar"), true, names)?;
//! # Ok(()) }
//! ```
//!
//! # Written by hand, and why
//!
//! - Go-compatible JSON (`gojson`): serde_json does not escape `<`, `>`, `&` as Go
//!   does; a small formatter wrapper adds that, so digests match BuildKit's.
//! - The OCI layout and docker tarball writers: `ocidir` writes layout directories
//!   only, with its own index handling; BuildKit's exact index annotations, merge
//!   rules and tarball layout take less code written here than adapted.
//! - The `-o` CSV splitter: one record with Go's quoting rules is a few lines; the
//!   `csv` crate is lenient where Go's reader reports errors.

mod assemble;
mod atomic;
mod error;
mod fs;
mod gojson;
mod gotime;
mod layout;
mod push;
mod spec;

pub use assemble::{
    ANNOTATION_CREATED, AssembleOptions, Assembled, ExportLayer, Image, MediaTypes, assemble,
};
pub use error::ExportError;
pub use fs::{write_local, write_tar};
pub use kiln_registry::Descriptor;
pub use layout::{
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, platform_index, write_docker, write_oci,
    write_oci_multi,
};
pub use push::{PushProgress, push, push_multi};
pub use spec::{Annotations, CompressionSpec, CompressionType, Destination, ImageSpec, OutputSpec};
