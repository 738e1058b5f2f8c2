//! OCI image layouts (tarball or directory) and docker tarballs, as BuildKit's oci
//! and docker exporters write them (`exporter/oci/export.go`, containerd's
//! `images/archive` exporter, `client/ociindex`).
//!
//! A layout holds `oci-layout`, `index.json` and `blobs/sha256/<hex>` for the
//! manifest, the config and every layer. `index.json` lists the manifest once per
//! image name, annotated with `io.containerd.image.name` (the full name,
//! `docker.io/library/app:latest`) and `org.opencontainers.image.ref.name` (the part
//! after the repository: `latest`); without names, a tarball lists it once without
//! name annotations, and a directory lists it with `ref.name` `latest`. A directory
//! that already is a layout keeps its other images; entries with the same name are
//! replaced, as `ociindex` does.
//!
//! The docker tarball adds `manifest.json` (`Config`, `RepoTags` in Docker's short
//! form, `Layers`) and, as `docker save` writes it, `repositories`.
//!
//! Tarball entries are sorted by name; every header has uid/gid 0, no user or group
//! names, mode 0444 for blobs and `oci-layout`, 0644 for `index.json` and
//! `manifest.json`, 0755 for directories, and the mtime `SOURCE_DATE_EPOCH` or 0.
//! Layer blobs are checked against their descriptors (size and digest) as they are
//! copied. Into a file, a blob is copied by the kernel (`copy_file_range`) while
//! another thread reads and hashes it: the store's blobs never change once
//! committed, and copying a large layer that way takes a fraction of a pass
//! through user space. A layer the caller marks
//! [`verified`](crate::ExportLayer::verified) (it computed the digest from these
//! bytes itself, just now) is only checked for its size.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use kiln_graph::Digest;
use kiln_registry::Reference;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::assemble::{Assembled, GoDescriptor, Image};
use crate::atomic::{self, DirTarget, TarSink};
use crate::error::ExportError;
use crate::gojson;

/// `io.containerd.image.name`.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// `org.opencontainers.image.ref.name`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// How much of a blob is copied into a file before its sync to disk is started.
const COPY_STEP: u64 = 64 << 20;
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Where the bytes of a blob come from.
enum Source<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

struct Blob<'a> {
    digest: &'a Digest,
    size: u64,
    source: Source<'a>,
    /// Its digest was computed from these bytes by the caller: not hashed again.
    verified: bool,
}

impl Blob<'_> {
    fn name(&self) -> String {
        format!("blobs/sha256/{}", self.digest.hex())
    }

    /// Copies the blob to the file `out` at its current offset, checking its size and
    /// digest: a file's bytes are copied by the kernel while a thread of its own
    /// hashes them from the source.
    fn copy_to_file(&self, out: &mut File, err_path: &Path) -> Result<(), ExportError> {
        let Source::File(path) = self.source else {
            return self.copy_to(out, err_path);
        };
        let mut file = open_sized(path, self.size)?;
        let (copied, hashed) = std::thread::scope(|scope| {
            let hasher = scope.spawn(|| -> io::Result<(u64, Digest)> {
                if self.verified {
                    return Ok((self.size, self.digest.clone()));
                }
                let mut limited = File::open(path)?.take(self.size);
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                let mut read = 0u64;
                loop {
                    match limited.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            hasher.update(&buf[..n]);
                            read += n as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok((read, Digest::from_sha256(hasher.finalize().into())))
            });
            // File to file: std copies with copy_file_range (or sendfile), a step
            // at a time, each step synced to disk by a third thread while the
            // next is copied, so the sync before the output is renamed into
            // place has little left to do.
            let (kick, steps) = std::sync::mpsc::sync_channel::<()>(1);
            let syncer = out.try_clone().map(|synced| {
                scope.spawn(move || {
                    while steps.recv().is_ok() {
                        // An error here shows again in the final sync.
                        let _ = synced.sync_data();
                    }
                })
            });
            let mut remaining = (&mut file).take(self.size);
            let copied = (|| -> io::Result<u64> {
                let mut copied = 0;
                loop {
                    let n = io::copy(&mut (&mut remaining).take(COPY_STEP), out)?;
                    if n == 0 {
                        return Ok(copied);
                    }
                    copied += n;
                    let _ = kick.try_send(());
                }
            })();
            drop(kick);
            if let Ok(syncer) = syncer {
                let _ = syncer.join();
            }
            let hashed = hasher
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the hashing thread panicked")));
            (copied, hashed)
        });
        let copied = copied.map_err(|e| ExportError::io("write", err_path, e))?;
        let (read, digest) = hashed.map_err(|e| ExportError::io("read layer blob", path, e))?;
        if copied != self.size || read != self.size || digest != *self.digest {
            return Err(ExportError::BlobMismatch {
                path: path.to_path_buf(),
                reason: format!(
                    "read {read} bytes with digest {digest} (copied {copied}), descriptor says {} bytes with digest {}",
                    self.size, self.digest
                ),
            });
        }
        Ok(())
    }

    /// Copies the blob to `out`, checking its size and digest.
    fn copy_to(&self, out: &mut dyn Write, err_path: &Path) -> Result<(), ExportError> {
        match self.source {
            Source::Bytes(b) => out
                .write_all(b)
                .map_err(|e| ExportError::io("write", err_path, e)),
            Source::File(path) => {
                let mut file = open_sized(path, self.size)?;
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                let mut copied = 0u64;
                let mut limited = (&mut file).take(self.size);
                loop {
                    let n = match limited.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(ExportError::io("read layer blob", path, e)),
                    };
                    if !self.verified {
                        hasher.update(&buf[..n]);
                    }
                    out.write_all(&buf[..n])
                        .map_err(|e| ExportError::io("write", err_path, e))?;
                    copied += n as u64;
                }
                let digest = if self.verified {
                    self.digest.clone()
                } else {
                    Digest::from_sha256(hasher.finalize().into())
                };
                if copied != self.size || digest != *self.digest {
                    return Err(ExportError::BlobMismatch {
                        path: path.to_path_buf(),
                        reason: format!(
                            "read {copied} bytes with digest {digest}, descriptor says {} bytes with digest {}",
                            self.size, self.digest
                        ),
                    });
                }
                Ok(())
            }
        }
    }
}

fn blobs<'a>(a: &'a Assembled, image: &'a Image) -> Result<Vec<Blob<'a>>, ExportError> {
    if image.layers.len() != a.layers.len() {
        return Err(ExportError::InvalidImage(format!(
            "the image has {} layers but was assembled with {}",
            image.layers.len(),
            a.layers.len()
        )));
    }
    let mut out = vec![
        Blob {
            digest: &a.manifest_digest,
            size: a.manifest.len() as u64,
            source: Source::Bytes(&a.manifest),
            verified: true,
        },
        Blob {
            digest: &a.config_digest,
            size: a.config.len() as u64,
            source: Source::Bytes(&a.config),
            verified: true,
        },
    ];
    for (layer, desc) in image.layers.iter().zip(&a.layers) {
        if layer.descriptor.digest != desc.digest {
            return Err(ExportError::InvalidImage(format!(
                "layer {} was assembled as {}",
                layer.descriptor.digest, desc.digest
            )));
        }
        out.push(Blob {
            digest: &desc.digest,
            size: desc.size,
            source: Source::File(&layer.blob),
            verified: layer.verified,
        });
    }
    out.sort_by(|x, y| x.digest.cmp(y.digest));
    out.dedup_by(|x, y| x.digest == y.digest);
    Ok(out)
}

/// Image names normalized as BuildKit does (`app` is `docker.io/library/app:latest`).
fn normalize_names(names: &[String]) -> Result<Vec<Reference>, ExportError> {
    names
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| Reference::parse(n).map_err(ExportError::from))
        .collect()
}

/// containerd's `ociReferenceName`: what follows the repository, without a leading
/// `:` (`latest`, `v1@sha256:…`, `@sha256:…`).
fn oci_ref_name(full: &str) -> String {
    let path = full.split_once('/').map_or(full, |(_, p)| p);
    match path.find([':', '@']) {
        Some(i) => path[i..]
            .strip_prefix(':')
            .unwrap_or(&path[i..])
            .to_string(),
        None => full.to_string(),
    }
}

fn name_annotations(a: &Assembled, full: &str) -> BTreeMap<String, String> {
    let mut ann = a.descriptor.annotations.clone();
    ann.insert(ANNOTATION_IMAGE_NAME.into(), full.to_string());
    ann.insert(ANNOTATION_REF_NAME.into(), oci_ref_name(full));
    ann
}

#[derive(Serialize)]
struct TarIndex<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    manifests: Vec<GoDescriptor<'a>>,
}

/// `index.json` of a tarball: one entry per name, or one unnamed entry.
fn tar_index(a: &Assembled, names: &[Reference]) -> Vec<u8> {
    let annotations: Vec<BTreeMap<String, String>> = if names.is_empty() {
        vec![a.descriptor.annotations.clone()]
    } else {
        names
            .iter()
            .map(|n| name_annotations(a, &n.to_string()))
            .collect()
    };
    gojson::marshal(&TarIndex {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests: annotations.iter().map(|ann| a.index_entry(ann)).collect(),
    })
}

/// Writes the tarball entries; `extra` are files beside the layout's own.
fn write_layout_tar(
    sink: &mut TarSink,
    blobs: &[Blob<'_>],
    index: &[u8],
    extra: &[(&str, &[u8])],
    epoch: Option<i64>,
) -> Result<(), ExportError> {
    let name = sink.name();
    let mtime = epoch.map_or(0, |e| e.max(0) as u64);
    let wrap = |e: io::Error| ExportError::io("write", &name, e);
    let mut direct = sink.file_handle().map_err(wrap)?;
    let mut builder = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, sink.writer()));
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_size(size);
        h
    };
    // Sorted by name, as containerd's archive writer sorts its records.
    let mut files: Vec<(&str, &[u8], u32)> = vec![
        ("index.json", index, 0o644),
        ("oci-layout", OCI_LAYOUT, 0o444),
    ];
    for (n, b) in extra {
        files.push((n, b, 0o644));
    }
    files.sort_by(|x, y| x.0.cmp(y.0));
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        builder
            .append_data(&mut h, dir, io::empty())
            .map_err(wrap)?;
    }
    for blob in blobs {
        let mut h = header(tar::EntryType::Regular, 0o444, blob.size);
        h.set_path(blob.name()).map_err(wrap)?;
        h.set_cksum();
        // The body goes through the verifying copy, so the header and the padding
        // are written by hand around it.
        let out = builder.get_mut();
        out.write_all(h.as_bytes()).map_err(wrap)?;
        match direct.as_mut() {
            Some(file) => {
                // Everything buffered goes first: the handles share the offset.
                out.flush().map_err(wrap)?;
                blob.copy_to_file(file, &name)?;
            }
            None => blob.copy_to(out, &name)?,
        }
        let pad = (512 - (blob.size % 512)) % 512;
        out.write_all(&[0u8; 512][..pad as usize]).map_err(wrap)?;
    }
    for (path, bytes, mode) in files {
        let mut h = header(tar::EntryType::Regular, mode, bytes.len() as u64);
        builder.append_data(&mut h, path, bytes).map_err(wrap)?;
    }
    let mut out = builder.into_inner().map_err(wrap)?;
    out.flush().map_err(wrap)?;
    Ok(())
}

/// Writes `a` as an OCI image layout at `dest`: a tarball (`-` is stdout), or with
/// `tar` false a directory. `names` are image names as the user wrote them.
pub fn write_oci(
    a: &Assembled,
    image: &Image,
    dest: &Path,
    tar: bool,
    names: &[String],
) -> Result<(), ExportError> {
    let names = normalize_names(names)?;
    let blobs = blobs(a, image)?;
    if !tar {
        if dest == Path::new("-") {
            return Err(ExportError::InvalidImage(
                "an OCI layout directory cannot be written to stdout".into(),
            ));
        }
        return write_layout_dir(a, &blobs, dest, &names);
    }
    let index = tar_index(a, &names);
    let mut sink = TarSink::open(dest, "OCI image")?;
    write_layout_tar(&mut sink, &blobs, &index, &[], a.source_date_epoch)?;
    sink.commit()
}

#[derive(Serialize)]
struct DockerManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Option<Vec<String>>,
}

/// Writes `a` as a tarball `docker load` and `podman load` accept (`-` is stdout):
/// the OCI layout plus `manifest.json` and `repositories`.
pub fn write_docker(
    a: &Assembled,
    image: &Image,
    dest: &Path,
    names: &[String],
) -> Result<(), ExportError> {
    let names = normalize_names(names)?;
    let blobs = blobs(a, image)?;
    let index = tar_index(a, &names);
    let blob_path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let repo_tags: Vec<String> = names.iter().map(Reference::familiar).collect();
    let manifest = gojson::marshal(&[DockerManifest {
        config: blob_path(&a.config_digest),
        repo_tags: (!repo_tags.is_empty()).then_some(repo_tags),
        layers: (!a.layers.is_empty())
            .then(|| a.layers.iter().map(|l| blob_path(&l.digest)).collect()),
    }]);
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    if let Some(top) = a.layers.last() {
        for n in &names {
            if let Some(tag) = n.tag() {
                repositories
                    .entry(n.repository().familiar())
                    .or_default()
                    .insert(tag.to_string(), top.digest.hex().to_string());
            }
        }
    }
    let repositories = gojson::marshal(&repositories);
    let mut extra: Vec<(&str, &[u8])> = vec![("manifest.json", &manifest)];
    if !names.is_empty() && !a.layers.is_empty() {
        extra.push(("repositories", &repositories));
    }
    let mut sink = TarSink::open(dest, "docker image")?;
    write_layout_tar(&mut sink, &blobs, &index, &extra, a.source_date_epoch)?;
    sink.commit()
}

/// `ocispecs.Platform`, owned, for reading and rewriting an existing `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct OwnedPlatform {
    architecture: String,
    os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    os_version: String,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    variant: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    features: Vec<String>,
}

/// `ocispecs.Descriptor`, owned, in Go's field order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct OwnedDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<OwnedPlatform>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    artifact_type: String,
}

/// `ocispecs.Index`, owned, in Go's field order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct OwnedIndex {
    #[serde(rename = "schemaVersion", default)]
    schema_version: i64,
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    media_type: String,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    artifact_type: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    manifests: Vec<OwnedDescriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<OwnedDescriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<OwnedDescriptor>, D::Error> {
    Ok(Option::<Vec<OwnedDescriptor>>::deserialize(d)?.unwrap_or_default())
}

/// `ociindex`'s `insertDesc`: drops entries with the same name, appends ours.
fn insert_entry(index: &mut OwnedIndex, entry: OwnedDescriptor) {
    let image_name = entry
        .annotations
        .get(ANNOTATION_IMAGE_NAME)
        .cloned()
        .unwrap_or_default();
    let ref_name = entry
        .annotations
        .get(ANNOTATION_REF_NAME)
        .cloned()
        .unwrap_or_default();
    index.manifests.retain(|m| {
        m.annotations
            .get(ANNOTATION_REF_NAME)
            .map_or("", String::as_str)
            != ref_name
            || m.annotations
                .get(ANNOTATION_IMAGE_NAME)
                .map_or("", String::as_str)
                != image_name
    });
    index.manifests.push(entry);
}

fn write_layout_dir(
    a: &Assembled,
    blobs: &[Blob<'_>],
    dest: &Path,
    names: &[Reference],
) -> Result<(), ExportError> {
    let entry_for =
        |annotations: BTreeMap<String, String>| -> Result<OwnedDescriptor, ExportError> {
            let bytes = gojson::marshal(&a.index_entry(&annotations));
            serde_json::from_slice(&bytes).map_err(|e| {
                ExportError::InvalidImage(format!("index entry does not round-trip: {e}"))
            })
        };
    let entries = if names.is_empty() {
        let mut ann = a.descriptor.annotations.clone();
        ann.insert(ANNOTATION_REF_NAME.into(), "latest".into());
        vec![entry_for(ann)?]
    } else {
        names
            .iter()
            .map(|n| entry_for(name_annotations(a, &n.to_string())))
            .collect::<Result<_, _>>()?
    };
    let target = DirTarget::open(dest)?;
    fill_layout_dir(&target, blobs, entries).map_err(|e| target.relocate(e))?;
    target.commit(0o755)
}

/// Writes the blobs and `oci-layout` of an OCI layout directory, and adds `entries`
/// to its `index.json` (replacing entries of the same names).
fn fill_layout_dir(
    target: &DirTarget,
    blobs: &[Blob<'_>],
    entries: Vec<OwnedDescriptor>,
) -> Result<(), ExportError> {
    let root = target.root().to_path_buf();
    let index_path = root.join("index.json");
    let mut index = if target.is_fresh() {
        None
    } else {
        match fs::read(&index_path) {
            Ok(bytes) if !bytes.is_empty() => {
                Some(serde_json::from_slice::<OwnedIndex>(&bytes).map_err(|e| {
                    ExportError::io(
                        "read the existing OCI index",
                        &index_path,
                        io::Error::new(io::ErrorKind::InvalidData, e),
                    )
                })?)
            }
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(ExportError::io("read", &index_path, e)),
        }
    }
    .unwrap_or(OwnedIndex {
        schema_version: 0,
        media_type: String::new(),
        artifact_type: String::new(),
        manifests: Vec::new(),
        subject: None,
        annotations: BTreeMap::new(),
    });
    if index.schema_version == 0 {
        index.schema_version = 2;
    }
    if index.media_type.is_empty() {
        index.media_type = OCI_INDEX.to_string();
    }

    let blob_dir = root.join("blobs").join("sha256");
    for dir in [root.join("blobs"), blob_dir.clone()] {
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(ExportError::io("create directory", &dir, e)),
        }
    }
    for blob in blobs {
        let path = blob_dir.join(blob.digest.hex());
        if path.is_file() {
            continue; // content-addressed: the same name holds the same bytes
        }
        let mut f = atomic::AtomicFile::create(&path, 0o444)?;
        blob.copy_to_file(f.file(), &path)?;
        f.commit()?;
    }
    atomic::write_file(&root.join("oci-layout"), OCI_LAYOUT, 0o644)?;
    for entry in entries {
        insert_entry(&mut index, entry);
    }
    atomic::write_file(&index_path, &gojson::marshal(&index), 0o644)
}

/// The index (OCI) or manifest list (Docker media types) of a multi-platform image:
/// its bytes and its descriptor's media type.
pub fn platform_index(parts: &[&Assembled]) -> (Vec<u8>, &'static str) {
    let docker = parts
        .first()
        .is_some_and(|a| a.media_types == crate::assemble::MediaTypes::Docker);
    let media_type = if docker {
        "application/vnd.docker.distribution.manifest.list.v2+json"
    } else {
        OCI_INDEX
    };
    let annotations: Vec<&BTreeMap<String, String>> =
        parts.iter().map(|a| &a.descriptor.annotations).collect();
    let bytes = gojson::marshal(&TarIndex {
        schema_version: 2,
        media_type,
        manifests: parts
            .iter()
            .zip(&annotations)
            .map(|(a, ann)| a.index_entry(ann))
            .collect(),
    });
    (bytes, media_type)
}

/// Writes a multi-platform image as an OCI layout, a tarball (`-` is stdout) or, with
/// `tar` false, a directory (added to an existing layout there): the layout's
/// `index.json` names an index listing one manifest per platform, as BuildKit's oci
/// exporter writes it.
pub fn write_oci_multi(
    parts: &[(&Assembled, &Image)],
    dest: &Path,
    tar: bool,
    names: &[String],
) -> Result<(), ExportError> {
    let names = normalize_names(names)?;
    let assembled: Vec<&Assembled> = parts.iter().map(|(a, _)| *a).collect();
    let (index_bytes, media_type) = platform_index(&assembled);
    let index_digest = Digest::of(&index_bytes);
    let mut all = Vec::new();
    for (a, image) in parts {
        all.extend(blobs(a, image)?);
    }
    all.push(Blob {
        digest: &index_digest,
        size: index_bytes.len() as u64,
        source: Source::Bytes(&index_bytes),
        verified: true,
    });
    all.sort_by(|x, y| x.digest.cmp(y.digest));
    all.dedup_by(|x, y| x.digest == y.digest);
    let mut entries = Vec::new();
    let name_list: Vec<Option<String>> = if names.is_empty() {
        vec![None]
    } else {
        names.iter().map(|n| Some(n.to_string())).collect()
    };
    if !tar {
        if dest == Path::new("-") {
            return Err(ExportError::InvalidImage(
                "an OCI layout directory cannot be written to stdout".into(),
            ));
        }
        let entry = |annotations: BTreeMap<String, String>| OwnedDescriptor {
            media_type: media_type.to_string(),
            digest: index_digest.to_string(),
            size: index_bytes.len() as i64,
            urls: Vec::new(),
            annotations,
            data: None,
            platform: None,
            artifact_type: String::new(),
        };
        let entries = name_list
            .iter()
            .map(|n| {
                let mut ann = BTreeMap::new();
                match n {
                    Some(full) => {
                        ann.insert(ANNOTATION_IMAGE_NAME.to_string(), full.clone());
                        ann.insert(ANNOTATION_REF_NAME.to_string(), oci_ref_name(full));
                    }
                    None => {
                        ann.insert(ANNOTATION_REF_NAME.to_string(), "latest".to_string());
                    }
                }
                entry(ann)
            })
            .collect();
        let target = DirTarget::open(dest)?;
        fill_layout_dir(&target, &all, entries).map_err(|e| target.relocate(e))?;
        return target.commit(0o755);
    }
    for n in &name_list {
        let mut e = serde_json::Map::new();
        e.insert("mediaType".into(), media_type.into());
        e.insert("digest".into(), index_digest.to_string().into());
        e.insert("size".into(), (index_bytes.len() as u64).into());
        if let Some(full) = n {
            let mut ann = serde_json::Map::new();
            ann.insert(ANNOTATION_IMAGE_NAME.into(), full.clone().into());
            ann.insert(ANNOTATION_REF_NAME.into(), oci_ref_name(full).into());
            e.insert("annotations".into(), ann.into());
        }
        entries.push(serde_json::Value::Object(e));
    }
    let mut root = serde_json::Map::new();
    root.insert("schemaVersion".into(), 2.into());
    root.insert("mediaType".into(), OCI_INDEX.into());
    root.insert("manifests".into(), entries.into());
    let index_json = serde_json::to_vec(&serde_json::Value::Object(root))
        .map_err(|e| ExportError::InvalidImage(format!("index.json: {e}")))?;
    let epoch = parts.first().and_then(|(a, _)| a.source_date_epoch);
    let mut sink = TarSink::open(dest, "OCI image")?;
    write_layout_tar(&mut sink, &all, &index_json, &[], epoch)?;
    sink.commit()
}

/// Opens a blob file, refusing it unless it has the size its descriptor gives.
fn open_sized(path: &Path, size: u64) -> Result<File, ExportError> {
    let file = File::open(path).map_err(|e| ExportError::io("open layer blob", path, e))?;
    let actual = file
        .metadata()
        .map_err(|e| ExportError::io("inspect layer blob", path, e))?
        .len();
    if actual != size {
        return Err(ExportError::BlobMismatch {
            path: path.to_path_buf(),
            reason: format!("size {actual}, descriptor says {size}"),
        });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_ref_names_follow_containerd() {
        assert_eq!(oci_ref_name("docker.io/library/busybox:latest"), "latest");
        assert_eq!(oci_ref_name("127.0.0.1:5000/a/b:v1"), "v1");
        assert_eq!(
            oci_ref_name("docker.io/a/b:v1@sha256:0000"),
            "v1@sha256:0000"
        );
        assert_eq!(oci_ref_name("docker.io/a/b@sha256:0000"), "@sha256:0000");
    }

    #[test]
    fn insert_replaces_same_name_only() {
        let d = |img: &str, r: &str| OwnedDescriptor {
            media_type: "m".into(),
            digest: format!("sha256:{img}{r}"),
            size: 1,
            urls: vec![],
            annotations: [
                (ANNOTATION_IMAGE_NAME.to_string(), img.to_string()),
                (ANNOTATION_REF_NAME.to_string(), r.to_string()),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect(),
            data: None,
            platform: None,
            artifact_type: String::new(),
        };
        let mut index = OwnedIndex {
            schema_version: 2,
            media_type: OCI_INDEX.into(),
            artifact_type: String::new(),
            manifests: vec![d("a", "1"), d("b", "1"), d("", "latest")],
            subject: None,
            annotations: BTreeMap::new(),
        };
        insert_entry(&mut index, d("a", "1"));
        insert_entry(&mut index, d("", "latest"));
        let names: Vec<_> = index.manifests.iter().map(|m| m.digest.as_str()).collect();
        assert_eq!(names, ["sha256:b1", "sha256:a1", "sha256:latest"]);
    }
}
