//! The `-o`/`--output` syntax of `docker buildx build`, parsed into an [`OutputSpec`].
//!
//! An output is a CSV record of `key=value` fields (fields holding a comma are
//! quoted, `"name=a,b"`); keys are case-insensitive. Two shorthands: a value that
//! is a single field not starting with `type=` is a local directory (`-o out` is
//! `type=local,dest=out`), and `-o -` is the filesystem as a tar on stdout.
//! `type=registry` is `type=image,push=true`. `oci`, `docker` and `tar` without
//! `dest` write to stdout; `docker` without `dest` would load the image into a
//! Docker daemon, which kiln does not do, so it is an error.
//!
//! The keys are BuildKit v0.24's for each exporter. Keys kiln does not implement
//! are errors that say so; keys no exporter knows are errors naming them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_graph::Platform;

use crate::assemble::{AssembleOptions, MediaTypes};
use crate::error::ExportError;

/// The layer compression an output asks the engine for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompressionType {
    Uncompressed,
    Gzip,
    Estargz,
    Zstd,
}

/// `compression`, `compression-level` and `force-compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompressionSpec {
    pub kind: CompressionType,
    pub level: Option<i64>,
    /// Recompress layers that exist with another compression.
    pub force: bool,
}

impl Default for CompressionSpec {
    fn default() -> Self {
        CompressionSpec {
            kind: CompressionType::Gzip,
            level: None,
            force: false,
        }
    }
}

/// An annotation key's scope and the platform it is limited to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Annotations {
    /// Manifest annotations (`annotation.K`, `annotation-manifest.K`), with the
    /// platform they are limited to (`annotation-manifest[linux/amd64].K`).
    pub manifest: Vec<(Option<Platform>, String, String)>,
    /// Annotations of the manifest's index entry (`annotation-manifest-descriptor.K`).
    pub manifest_descriptor: Vec<(Option<Platform>, String, String)>,
    /// `annotation-index.K`: only meaningful for multi-platform images.
    pub index: Vec<(String, String)>,
    /// `annotation-index-descriptor.K`: likewise.
    pub index_descriptor: Vec<(String, String)>,
}

/// What the image outputs (`oci`, `docker`, `image`) share.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageSpec {
    /// `name=`: image names, split at commas, as written.
    pub names: Vec<String>,
    pub compression: CompressionSpec,
    /// `oci-mediatypes=`, when given.
    pub oci_media_types: Option<bool>,
    /// `source-date-epoch=`, when given (overrides the build's).
    pub source_date_epoch: Option<i64>,
    /// `rewrite-timestamp=`: the engine rewrites layer file times to the epoch.
    pub rewrite_timestamp: bool,
    pub annotations: Annotations,
}

/// Where a file output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Path(PathBuf),
    Stdout,
}

/// One `-o` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// An OCI image layout, as a tarball or (`tar=false`) a directory.
    Oci {
        dest: Destination,
        tar: bool,
        image: ImageSpec,
    },
    /// A tarball `docker load` and `podman load` accept (`tar=false`: a layout directory).
    Docker {
        dest: Destination,
        tar: bool,
        image: ImageSpec,
    },
    /// An image pushed to a registry (`type=image,push=true`, `type=registry`).
    Image {
        push: bool,
        push_by_digest: bool,
        /// `registry.insecure=`: the registry may be reached over plain HTTP.
        insecure: bool,
        image: ImageSpec,
    },
    /// The final filesystem copied into a directory.
    Local {
        dest: PathBuf,
        source_date_epoch: Option<i64>,
        platform_split: Option<bool>,
    },
    /// The final filesystem as one tar.
    Tar {
        dest: Destination,
        source_date_epoch: Option<i64>,
        platform_split: Option<bool>,
    },
}

impl OutputSpec {
    /// Parses one `-o` value.
    pub fn parse(spec: &str) -> Result<OutputSpec, ExportError> {
        let fields = split_csv(spec)?;
        if fields.len() == 1 && fields[0] == spec && !spec.starts_with("type=") {
            return Ok(if spec == "-" {
                OutputSpec::Tar {
                    dest: Destination::Stdout,
                    source_date_epoch: None,
                    platform_split: None,
                }
            } else {
                OutputSpec::Local {
                    dest: PathBuf::from(spec),
                    source_date_epoch: None,
                    platform_split: None,
                }
            });
        }
        let mut kind = None;
        let mut attrs = Vec::new();
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                return Err(ExportError::InvalidSpec {
                    spec: spec.to_string(),
                    reason: format!("field {field:?} is not key=value"),
                });
            };
            let key = key.trim().to_ascii_lowercase();
            if key == "type" {
                kind = Some(value.to_string());
            } else {
                attrs.push((key, value.to_string()));
            }
        }
        let Some(kind) = kind else {
            return Err(ExportError::InvalidSpec {
                spec: spec.to_string(),
                reason: "type is required for output".into(),
            });
        };
        Parser {
            spec,
            kind: &kind,
            attrs,
        }
        .parse()
    }

    /// Parses every `-o` value of a build; at most one may write to stdout.
    pub fn parse_all<S: AsRef<str>>(specs: &[S]) -> Result<Vec<OutputSpec>, ExportError> {
        let mut out = Vec::new();
        let mut stdout_by: Option<&str> = None;
        for spec in specs {
            let spec = spec.as_ref();
            if spec.is_empty() {
                continue;
            }
            let parsed = OutputSpec::parse(spec)?;
            if parsed.destination() == Some(&Destination::Stdout) {
                if let Some(first) = stdout_by {
                    return Err(ExportError::InvalidSpec {
                        spec: spec.to_string(),
                        reason: format!("{first:?} already writes to stdout"),
                    });
                }
                stdout_by = Some(spec);
            }
            out.push(parsed);
        }
        Ok(out)
    }

    /// The file or stdout an output writes to, if it writes one.
    pub fn destination(&self) -> Option<&Destination> {
        match self {
            OutputSpec::Oci { dest, .. }
            | OutputSpec::Docker { dest, .. }
            | OutputSpec::Tar { dest, .. } => Some(dest),
            _ => None,
        }
    }

    /// The image settings of `oci`, `docker` and `image` outputs.
    pub fn image(&self) -> Option<&ImageSpec> {
        match self {
            OutputSpec::Oci { image, .. }
            | OutputSpec::Docker { image, .. }
            | OutputSpec::Image { image, .. } => Some(image),
            _ => None,
        }
    }

    /// The media types BuildKit v0.24 uses for this output: OCI for `oci`, Docker
    /// for `docker` and for `image`/`registry` (BuildKit's image exporter defaults
    /// `oci-mediatypes` to false), unless `oci-mediatypes` says otherwise; OCI
    /// whatever it says for eStargz layers and for descriptor annotations.
    pub fn media_types(&self) -> Option<MediaTypes> {
        let image = self.image()?;
        let default = matches!(self, OutputSpec::Oci { .. });
        let forced = image.compression.kind == CompressionType::Estargz
            || !image.annotations.manifest_descriptor.is_empty()
            || !image.annotations.index.is_empty()
            || !image.annotations.index_descriptor.is_empty();
        let oci = forced || image.oci_media_types.unwrap_or(default);
        Some(if oci {
            MediaTypes::Oci
        } else {
            MediaTypes::Docker
        })
    }

    /// The [`AssembleOptions`] for an image of `platform` exported by this output;
    /// `build_epoch` is the build's `SOURCE_DATE_EPOCH`, which `source-date-epoch=`
    /// overrides. `None` for filesystem outputs.
    pub fn assemble_options(
        &self,
        platform: &Platform,
        build_epoch: Option<i64>,
    ) -> Result<Option<AssembleOptions>, ExportError> {
        let (Some(image), Some(media_types)) = (self.image(), self.media_types()) else {
            return Ok(None);
        };
        if let Some((key, _)) = image
            .annotations
            .index
            .iter()
            .chain(&image.annotations.index_descriptor)
            .next()
        {
            return Err(ExportError::InvalidImage(format!(
                "index annotation {key:?}: index annotations are not supported for a single-platform export"
            )));
        }
        let pick = |list: &[(Option<Platform>, String, String)]| -> Result<BTreeMap<String, String>, ExportError> {
            let mut out = BTreeMap::new();
            // Unscoped annotations first, then those for this platform, which win.
            for scoped in [false, true] {
                for (p, k, v) in list {
                    match p {
                        None if !scoped => {
                            out.insert(k.clone(), v.clone());
                        }
                        Some(p) if scoped && p == platform => {
                            out.insert(k.clone(), v.clone());
                        }
                        Some(p) if scoped => {
                            return Err(ExportError::InvalidImage(format!(
                                "annotation {k:?} is for platform {p}, which this build does not produce ({platform})"
                            )));
                        }
                        _ => {}
                    }
                }
            }
            Ok(out)
        };
        Ok(Some(AssembleOptions {
            media_types,
            source_date_epoch: image.source_date_epoch.or(build_epoch),
            manifest_annotations: pick(&image.annotations.manifest)?,
            descriptor_annotations: pick(&image.annotations.manifest_descriptor)?,
        }))
    }
}

struct Parser<'a> {
    spec: &'a str,
    kind: &'a str,
    attrs: Vec<(String, String)>,
}

impl Parser<'_> {
    fn invalid(&self, key: &str, value: &str, reason: impl Into<String>) -> ExportError {
        ExportError::InvalidValue {
            spec: self.spec.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Go's `strconv.ParseBool`, with an empty value meaning true as BuildKit reads
    /// its boolean options.
    fn boolean(&self, key: &str, value: &str) -> Result<bool, ExportError> {
        match value {
            "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(self.invalid(key, value, "expected true or false")),
        }
    }

    fn epoch(&self, key: &str, value: &str) -> Result<Option<i64>, ExportError> {
        if value.is_empty() {
            return Ok(None);
        }
        value
            .parse()
            .map(Some)
            .map_err(|_| self.invalid(key, value, "expected seconds since the Unix epoch"))
    }

    fn unknown(&self, key: &str) -> ExportError {
        ExportError::UnknownKey {
            spec: self.spec.to_string(),
            kind: self.kind.to_string(),
            key: key.to_string(),
        }
    }

    fn unsupported(&self, key: &str) -> ExportError {
        ExportError::UnsupportedKey {
            spec: self.spec.to_string(),
            kind: self.kind.to_string(),
            key: key.to_string(),
        }
    }

    fn parse(self) -> Result<OutputSpec, ExportError> {
        match self.kind {
            "local" | "tar" => self.parse_fs(),
            "oci" | "docker" | "image" | "registry" => self.parse_image(),
            other => Err(ExportError::UnknownType {
                spec: self.spec.to_string(),
                kind: other.to_string(),
            }),
        }
    }

    fn parse_fs(self) -> Result<OutputSpec, ExportError> {
        let mut dest = None;
        let mut epoch = None;
        let mut platform_split = None;
        for (key, value) in &self.attrs {
            match key.as_str() {
                "dest" => dest = Some(value.clone()),
                "source-date-epoch" => epoch = self.epoch(key, value)?,
                "platform-split" => platform_split = Some(self.boolean(key, value)?),
                "attestation-prefix" => return Err(self.unsupported(key)),
                _ => return Err(self.unknown(key)),
            }
        }
        if self.kind == "local" {
            let dest = match dest.as_deref() {
                None | Some("") => {
                    return Err(ExportError::InvalidSpec {
                        spec: self.spec.to_string(),
                        reason: "dest is required for the local exporter".into(),
                    });
                }
                Some("-") => {
                    return Err(ExportError::InvalidSpec {
                        spec: self.spec.to_string(),
                        reason: "dest cannot be stdout for the local exporter".into(),
                    });
                }
                Some(d) => PathBuf::from(d),
            };
            return Ok(OutputSpec::Local {
                dest,
                source_date_epoch: epoch,
                platform_split,
            });
        }
        Ok(OutputSpec::Tar {
            dest: file_destination(dest.as_deref()),
            source_date_epoch: epoch,
            platform_split,
        })
    }

    fn parse_image(self) -> Result<OutputSpec, ExportError> {
        let mut image = ImageSpec::default();
        let mut dest = None;
        let mut tar = true;
        let mut push = self.kind == "registry";
        let mut push_by_digest = false;
        let mut insecure = false;
        let file_output = matches!(self.kind, "oci" | "docker");
        for (key, value) in &self.attrs {
            let key = key.as_str();
            if key.starts_with("annotation") {
                self.annotation(&mut image.annotations, key, value)?;
                continue;
            }
            match key {
                "name" => {
                    image.names = value
                        .split(',')
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                "compression" => {
                    image.compression.kind = match value.as_str() {
                        "uncompressed" => CompressionType::Uncompressed,
                        "gzip" => CompressionType::Gzip,
                        "estargz" => CompressionType::Estargz,
                        "zstd" => CompressionType::Zstd,
                        _ => {
                            return Err(self.invalid(
                                key,
                                value,
                                "expected uncompressed, gzip, estargz or zstd",
                            ));
                        }
                    }
                }
                "compression-level" => {
                    let level = value
                        .parse()
                        .map_err(|_| self.invalid(key, value, "expected an integer"))?;
                    image.compression.level = Some(level);
                }
                "force-compression" => image.compression.force = self.boolean(key, value)?,
                "oci-mediatypes" => image.oci_media_types = Some(self.boolean(key, value)?),
                "source-date-epoch" => image.source_date_epoch = self.epoch(key, value)?,
                "rewrite-timestamp" => image.rewrite_timestamp = self.boolean(key, value)?,
                "dest" if file_output => dest = Some(value.clone()),
                "tar" if file_output => tar = self.boolean(key, value)?,
                // `registry` always pushes, as buildx forces it.
                "push" if self.kind == "image" => push = self.boolean(key, value)?,
                "push" if self.kind == "registry" => {}
                "push-by-digest" if !file_output => push_by_digest = self.boolean(key, value)?,
                "registry.insecure" if !file_output => insecure = self.boolean(key, value)?,
                // kiln keeps no local image store: there is nothing to unpack or store.
                "unpack" | "store" if !file_output => {
                    self.boolean(key, value)?;
                }
                "oci-artifact"
                | "attestation-inline"
                | "prefer-nondist-layers"
                | "buildinfo"
                | "buildinfo-attrs" => return Err(self.unsupported(key)),
                "dangling-name-prefix" | "danging-name-empty-only" | "name-canonical"
                    if !file_output =>
                {
                    return Err(self.unsupported(key));
                }
                _ => return Err(self.unknown(key)),
            }
        }
        match self.kind {
            "oci" | "docker" => {
                let dest = if tar {
                    if self.kind == "docker" && dest.as_deref().is_none_or(str::is_empty) {
                        return Err(ExportError::InvalidSpec {
                            spec: self.spec.to_string(),
                            reason: "type=docker needs dest=FILE: kiln does not load images into a Docker daemon".into(),
                        });
                    }
                    file_destination(dest.as_deref())
                } else {
                    match dest.as_deref() {
                        None | Some("") => {
                            return Err(ExportError::InvalidSpec {
                                spec: self.spec.to_string(),
                                reason: format!(
                                    "dest is required for the {} exporter with tar=false",
                                    self.kind
                                ),
                            });
                        }
                        Some("-") => {
                            return Err(ExportError::InvalidSpec {
                                spec: self.spec.to_string(),
                                reason: format!(
                                    "dest cannot be stdout for the {} exporter with tar=false",
                                    self.kind
                                ),
                            });
                        }
                        Some(d) => Destination::Path(PathBuf::from(d)),
                    }
                };
                Ok(if self.kind == "oci" {
                    OutputSpec::Oci { dest, tar, image }
                } else {
                    OutputSpec::Docker { dest, tar, image }
                })
            }
            _ => {
                if push_by_digest && !push {
                    return Err(self.invalid("push-by-digest", "true", "needs push=true"));
                }
                Ok(OutputSpec::Image {
                    push,
                    push_by_digest,
                    insecure,
                    image,
                })
            }
        }
    }

    /// `annotation[-TYPE][[PLATFORM]].KEY`, as BuildKit's `ParseAnnotationKey`.
    fn annotation(&self, out: &mut Annotations, key: &str, value: &str) -> Result<(), ExportError> {
        let bad = |reason: &str| self.invalid(key, value, reason);
        let rest = &key["annotation".len()..];
        let (kind, rest) = match rest.strip_prefix('-') {
            Some(r) => {
                let end = r
                    .find(['[', '.'])
                    .ok_or_else(|| bad("expected annotation-TYPE.KEY"))?;
                (&r[..end], &r[end..])
            }
            None => ("manifest", rest),
        };
        let (platform, rest) = match rest.strip_prefix('[') {
            Some(r) => {
                let end = r.find(']').ok_or_else(|| bad("unclosed [platform]"))?;
                let p: Platform = r[..end].parse().map_err(|e| bad(&format!("{e}")))?;
                (Some(p), &r[end + 1..])
            }
            None => (None, rest),
        };
        let name = rest
            .strip_prefix('.')
            .filter(|n| !n.is_empty() && !n.contains(char::is_whitespace))
            .ok_or_else(|| bad("expected annotation.KEY"))?
            .to_string();
        let value = value.to_string();
        match (kind, platform) {
            ("manifest", p) => out.manifest.push((p, name, value)),
            ("manifest-descriptor", p) => out.manifest_descriptor.push((p, name, value)),
            ("index", None) => out.index.push((name, value)),
            ("index-descriptor", None) => out.index_descriptor.push((name, value)),
            ("index" | "index-descriptor", Some(_)) => {
                return Err(bad("index annotations take no platform"));
            }
            (other, _) => return Err(bad(&format!("unknown annotation type {other:?}"))),
        }
        Ok(())
    }
}

fn file_destination(dest: Option<&str>) -> Destination {
    match dest {
        None | Some("") | Some("-") => Destination::Stdout,
        Some(d) => Destination::Path(PathBuf::from(d)),
    }
}

/// Splits one CSV record as Go's `encoding/csv` (via `go-csvvalue`) does: a field
/// that starts with `"` is quoted, `""` inside it is a quote, and a quote anywhere
/// else is an error.
fn split_csv(spec: &str) -> Result<Vec<String>, ExportError> {
    let err = |reason: &str| ExportError::InvalidSpec {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let mut fields = Vec::new();
    let mut chars = spec.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(err("unterminated quoted field")),
                    Some('"') => match chars.peek() {
                        Some('"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some(',') | None => break,
                        Some(_) => return Err(err("extraneous \" in field")),
                    },
                    Some(c) => field.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err(err("bare \" in non-quoted field"));
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        match chars.next() {
            Some(',') => continue,
            _ => break,
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> OutputSpec {
        OutputSpec::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        OutputSpec::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn shorthands() {
        assert_eq!(
            p("out/dir"),
            OutputSpec::Local {
                dest: "out/dir".into(),
                source_date_epoch: None,
                platform_split: None
            }
        );
        assert_eq!(
            p("-"),
            OutputSpec::Tar {
                dest: Destination::Stdout,
                source_date_epoch: None,
                platform_split: None
            }
        );
    }

    #[test]
    fn keys_of_other_exporters_are_refused() {
        // `push` belongs to type=image: an oci output must not silently ignore it.
        let e = err("type=oci,dest=out.tar,compression=zstd,name=reg/x:1,push=true");
        assert!(e.contains("unknown key \"push\""), "{e}");
        let e = err("type=tar,dest=x,name=a");
        assert!(e.contains("unknown key \"name\" for type=tar"), "{e}");
    }

    #[test]
    fn oci_with_every_image_key() {
        let spec = p(
            "type=oci,dest=out,tar=false,compression=zstd,compression-level=3,force-compression=true,\"name=reg/x:1,reg/y:2\",oci-mediatypes=false,source-date-epoch=10,annotation.a=1,annotation-manifest-descriptor[linux/amd64].b=2",
        );
        let OutputSpec::Oci { dest, tar, image } = &spec else {
            panic!("{spec:?}")
        };
        assert_eq!(dest, &Destination::Path("out".into()));
        assert!(!tar);
        assert_eq!(image.names, ["reg/x:1", "reg/y:2"]);
        assert_eq!(
            image.compression,
            CompressionSpec {
                kind: CompressionType::Zstd,
                level: Some(3),
                force: true
            }
        );
        assert_eq!(image.source_date_epoch, Some(10));
        assert_eq!(image.annotations.manifest, [(None, "a".into(), "1".into())]);
        // A descriptor annotation forces OCI media types over oci-mediatypes=false.
        assert_eq!(spec.media_types(), Some(MediaTypes::Oci));
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let opts = spec.assemble_options(&amd64, Some(99)).unwrap().unwrap();
        assert_eq!(opts.source_date_epoch, Some(10));
        assert_eq!(opts.descriptor_annotations["b"], "2");
        let arm: Platform = "linux/arm64".parse().unwrap();
        assert!(spec.assemble_options(&arm, None).is_err());
    }

    #[test]
    fn media_type_defaults_follow_buildkit() {
        assert_eq!(p("type=oci").media_types(), Some(MediaTypes::Oci));
        assert_eq!(
            p("type=docker,dest=x").media_types(),
            Some(MediaTypes::Docker)
        );
        assert_eq!(p("type=image").media_types(), Some(MediaTypes::Docker));
        assert_eq!(p("type=registry").media_types(), Some(MediaTypes::Docker));
        assert_eq!(
            p("type=registry,oci-mediatypes=true").media_types(),
            Some(MediaTypes::Oci)
        );
        assert_eq!(
            p("type=docker,dest=x,compression=estargz").media_types(),
            Some(MediaTypes::Oci)
        );
        assert_eq!(
            p("type=oci,oci-mediatypes=").media_types(),
            Some(MediaTypes::Oci)
        );
        assert_eq!(p("out").media_types(), None);
    }

    #[test]
    fn registry_pushes_and_destinations_default() {
        let OutputSpec::Image { push, image, .. } = p("TYPE=registry,Name=a/b") else {
            panic!()
        };
        assert!(push);
        assert_eq!(image.names, ["a/b"]);
        assert!(matches!(
            p("type=image,name=a"),
            OutputSpec::Image { push: false, .. }
        ));
        assert_eq!(p("type=oci").destination(), Some(&Destination::Stdout));
        assert_eq!(
            p("type=tar,dest=-").destination(),
            Some(&Destination::Stdout)
        );
        assert_eq!(
            p("type=tar,dest=fs.tar").destination(),
            Some(&Destination::Path("fs.tar".into()))
        );
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert!(err("type=oci,dest=o.tar,push=true").contains("unknown key \"push\" for type=oci"));
        assert!(err("type=zip,dest=x").contains("unknown output type \"zip\""));
        assert!(err("type=local,dest=x,colour=red").contains("\"colour\""));
        assert!(err("type=local").contains("dest is required"));
        assert!(err("type=local,dest=-").contains("stdout"));
        assert!(err("type=docker").contains("Docker daemon"));
        assert!(err("type=oci,tar=false").contains("dest is required"));
        assert!(err("type=oci,tar=maybe").contains("invalid value \"maybe\" for tar"));
        assert!(err("type=oci,compression=lz4").contains("lz4"));
        assert!(err("type=oci,compression-level=high").contains("compression-level"));
        assert!(err("dest=x,tar=false").contains("type is required"));
        // A lone field is a directory, even one that looks like a key, as in buildx.
        assert!(matches!(p("dest=x"), OutputSpec::Local { .. }));
        assert!(err("type=oci,novalue").contains("\"novalue\" is not key=value"));
        assert!(err("type=oci,oci-artifact=true").contains("not supported"));
        assert!(err("type=oci,annotation-bogus.k=v").contains("bogus"));
        assert!(err("type=oci,\"name=a").contains("unterminated"));
        assert!(err("type=oci,na\"me=a").contains("bare"));
    }

    #[test]
    fn stdout_is_used_at_most_once() {
        assert_eq!(
            OutputSpec::parse_all(&["-", "type=oci,dest=x"])
                .unwrap()
                .len(),
            2
        );
        let e = OutputSpec::parse_all(&["-", "type=oci"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("already writes to stdout"), "{e}");
    }

    #[test]
    fn index_annotations_are_refused_for_one_platform() {
        let spec = p("type=oci,annotation-index.x=1");
        let amd64: Platform = "linux/amd64".parse().unwrap();
        assert!(
            spec.assemble_options(&amd64, None)
                .unwrap_err()
                .to_string()
                .contains("index annotation")
        );
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(
            split_csv(r#"a,"b,c","d""e""#).unwrap(),
            ["a", "b,c", "d\"e"]
        );
        assert_eq!(split_csv("").unwrap(), [""]);
    }
}
