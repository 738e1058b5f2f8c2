//! Turning a built image into the bytes of its config and manifest, as BuildKit's
//! image writer (`exporter/containerimage/writer.go`) does.
//!
//! The steps, in BuildKit's order:
//!
//! 1. **History against layers** (`normalizeLayersAndHistory`): history entries that
//!    claim more layers than there are are marked empty from the bottom; layers
//!    without an entry get one (`created by buildkit`, comment
//!    `buildkit.exporter.image.v0`); a layer entry without a time takes its layer's
//!    creation time; then every entry still without a time takes "the first new
//!    layer time": the first time that follows an entry without one, and after that
//!    the most recent time seen.
//! 2. **`SOURCE_DATE_EPOCH`** (`patchImageConfig`): entries equal to the base
//!    image's history, up to the first that differs, keep their times; every later
//!    entry without a time or with a time after the epoch gets the epoch.
//! 3. **`created`**: a `created` already in the config is kept, clamped to the epoch
//!    when one is given; otherwise it is the time of the last history entry that has
//!    one, or `null`.
//! 4. **Serialization**: the config is a JSON object with its top-level keys sorted
//!    (BuildKit re-marshals it as a Go map), nested objects in field order; the
//!    manifest is indented by two spaces. Strings are escaped as Go escapes them.
//!    `rootfs.diff_ids` and the manifest's `layers` are `null` when there are no
//!    layers, as Go writes a nil slice.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_graph::{Digest, History, ImageConfig, Platform};
use kiln_registry::{Descriptor, Repository};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::ExportError;
use crate::gojson;
use crate::gotime::GoTime;

/// The annotation BuildKit's oci and docker exporters put on the manifest's index
/// entry: when the image was exported.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// Comment of history entries added for layers the config did not account for.
const EXPORTER_HISTORY_COMMENT: &str = "buildkit.exporter.image.v0";
/// `created_by` of such entries when the layer has no description.
const UNDESCRIBED_LAYER: &str = "created by buildkit";

/// One layer of the image, already written as a (usually compressed) blob.
#[derive(Debug, Clone)]
pub struct ExportLayer {
    /// The layer blob on disk.
    pub blob: PathBuf,
    /// Media type, digest and size of the blob (and, for OCI outputs, any
    /// annotations that are not internal ones).
    pub descriptor: Descriptor,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// RFC 3339 time the layer was made, for history entries that lack one.
    pub created: Option<String>,
    /// Where a base layer was pulled from, so a push to the same registry can
    /// mount it instead of uploading it.
    pub source_repo: Option<Repository>,
    /// The caller computed the descriptor's digest from the very bytes of `blob`
    /// (it wrote them, just now): written into a layout, the blob is then copied
    /// without being read and hashed once more. Its size is still checked.
    pub verified: bool,
}

/// A finished image: the config the frontend computed and the layers, bottom first.
#[derive(Debug, Clone)]
pub struct Image {
    pub config: ImageConfig,
    pub layers: Vec<ExportLayer>,
    /// The history of the image the final stage started from (empty for `scratch`):
    /// the entries the build inherited keep their times under `SOURCE_DATE_EPOCH`.
    pub base_history: Vec<History>,
}

/// Which media types the manifest, config and layers are written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaTypes {
    /// `application/vnd.oci.image.*`.
    Oci,
    /// Docker schema 2 (`application/vnd.docker.*`).
    Docker,
}

impl MediaTypes {
    /// The image manifest's media type.
    pub fn manifest(self) -> &'static str {
        match self {
            MediaTypes::Oci => kiln_registry::media_type::OCI_MANIFEST,
            MediaTypes::Docker => kiln_registry::media_type::DOCKER_MANIFEST,
        }
    }

    /// The image config's media type.
    pub fn config(self) -> &'static str {
        match self {
            MediaTypes::Oci => kiln_registry::media_type::OCI_CONFIG,
            MediaTypes::Docker => kiln_registry::media_type::DOCKER_CONFIG,
        }
    }

    /// `layer` converted to this family, as BuildKit's `ConvertAllLayerMediaTypes`
    /// does; types it does not know are kept.
    pub fn layer(self, layer: &str) -> String {
        const OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
        const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
        const OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
        const OCI_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
        const OCI_NONDIST_GZIP: &str =
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
        const DOCKER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
        const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
        const DOCKER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
        const DOCKER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";
        const DOCKER_FOREIGN_GZIP: &str =
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
        let converted = match (self, layer) {
            (MediaTypes::Oci, DOCKER_TAR) => OCI_TAR,
            (MediaTypes::Oci, DOCKER_GZIP) => OCI_GZIP,
            (MediaTypes::Oci, DOCKER_ZSTD) => OCI_ZSTD,
            (MediaTypes::Oci, DOCKER_FOREIGN) => OCI_NONDIST,
            (MediaTypes::Oci, DOCKER_FOREIGN_GZIP) => OCI_NONDIST_GZIP,
            (MediaTypes::Docker, OCI_TAR) => DOCKER_TAR,
            (MediaTypes::Docker, OCI_GZIP) => DOCKER_GZIP,
            (MediaTypes::Docker, OCI_ZSTD) => DOCKER_ZSTD,
            (MediaTypes::Docker, OCI_NONDIST) => DOCKER_FOREIGN,
            (MediaTypes::Docker, OCI_NONDIST_GZIP) => DOCKER_FOREIGN_GZIP,
            (_, other) => other,
        };
        converted.to_string()
    }
}

/// How to assemble: media types, `SOURCE_DATE_EPOCH` and user annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembleOptions {
    pub media_types: MediaTypes,
    /// `SOURCE_DATE_EPOCH` in seconds.
    pub source_date_epoch: Option<i64>,
    /// Annotations of the manifest itself (`annotation.K` / `annotation-manifest.K`).
    pub manifest_annotations: BTreeMap<String, String>,
    /// Annotations of the manifest's index entry (`annotation-manifest-descriptor.K`).
    pub descriptor_annotations: BTreeMap<String, String>,
}

impl Default for AssembleOptions {
    fn default() -> Self {
        AssembleOptions {
            media_types: MediaTypes::Oci,
            source_date_epoch: None,
            manifest_annotations: BTreeMap::new(),
            descriptor_annotations: BTreeMap::new(),
        }
    }
}

/// The image's config and manifest, ready to be written or pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    /// The config blob.
    pub config: Vec<u8>,
    pub config_digest: Digest,
    /// The manifest blob.
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub media_types: MediaTypes,
    /// The manifest's entry in an index: media type, digest, size, platform and
    /// annotations (with [`ANNOTATION_CREATED`]), without image names.
    pub descriptor: Descriptor,
    /// The layers as the manifest lists them (media types converted).
    pub layers: Vec<Descriptor>,
    /// The config's `created`, as written.
    pub created: Option<String>,
    /// The `SOURCE_DATE_EPOCH` it was assembled with; also the time of the entries
    /// of the tarballs written from it.
    pub source_date_epoch: Option<i64>,
    pub(crate) os_version: String,
    pub(crate) os_features: Vec<String>,
}

/// A descriptor with Go's field order (`ocispecs.Descriptor`).
#[derive(Serialize)]
pub(crate) struct GoDescriptor<'a> {
    #[serde(rename = "mediaType")]
    pub media_type: &'a str,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub urls: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<GoPlatform<'a>>,
}

/// `ocispecs.Platform` in Go's field order.
#[derive(Serialize)]
pub(crate) struct GoPlatform<'a> {
    pub architecture: &'a str,
    pub os: &'a str,
    #[serde(rename = "os.version", skip_serializing_if = "str::is_empty")]
    pub os_version: &'a str,
    #[serde(rename = "os.features", skip_serializing_if = "<[String]>::is_empty")]
    pub os_features: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    pub variant: &'a str,
}

impl Assembled {
    /// The index entry for this manifest with extra annotations (image names).
    pub(crate) fn index_entry<'a>(
        &'a self,
        annotations: &'a BTreeMap<String, String>,
    ) -> GoDescriptor<'a> {
        let platform = self.descriptor.platform.as_ref().map(|p| GoPlatform {
            architecture: &p.architecture,
            os: &p.os,
            os_version: &self.os_version,
            os_features: &self.os_features,
            variant: p.variant.as_deref().unwrap_or(""),
        });
        GoDescriptor {
            media_type: &self.descriptor.media_type,
            digest: self.descriptor.digest.to_string(),
            size: self.descriptor.size,
            urls: &[],
            annotations,
            platform,
        }
    }
}

#[derive(Serialize)]
struct GoManifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: GoDescriptor<'a>,
    layers: Option<Vec<GoDescriptor<'a>>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct GoRootFs<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    diff_ids: Option<Vec<String>>,
}

/// A history entry with its time parsed.
struct Entry {
    history: History,
    created: Option<GoTime>,
}

/// Assembles `image` into its config and manifest. See the module docs for what is
/// filled in and how; the result depends only on `image` and `opts`.
pub fn assemble(image: &Image, opts: &AssembleOptions) -> Result<Assembled, ExportError> {
    let config = &image.config;
    if config.os.is_empty() {
        return Err(ExportError::InvalidImage(
            "the image config has no os".into(),
        ));
    }
    if config.architecture.is_empty() {
        return Err(ExportError::InvalidImage(
            "the image config has no architecture".into(),
        ));
    }
    let epoch = match opts.source_date_epoch {
        Some(seconds) => Some(GoTime::from_unix(seconds).ok_or_else(|| {
            ExportError::InvalidImage(format!("SOURCE_DATE_EPOCH {seconds} is out of range"))
        })?),
        None => None,
    };

    let mut history = normalize_history(&config.history, &image.layers)?;
    apply_epoch(&mut history, &image.base_history, epoch.as_ref());

    let created = match &config.created {
        Some(text) => {
            let given = GoTime::parse(text).ok_or_else(|| {
                ExportError::InvalidImage(format!("created time {text:?} is not RFC 3339"))
            })?;
            match &epoch {
                Some(e) if given.after(e) => Some(e.to_json_string()),
                _ => Some(text.clone()),
            }
        }
        None => history
            .iter()
            .rev()
            .find_map(|e| e.created.map(GoTime::to_json_string)),
    };

    let config_bytes = config_json(config, &image.layers, &history, created.as_deref())?;
    let config_digest = Digest::of(&config_bytes);
    let media_types = opts.media_types;

    let layers: Vec<Descriptor> = image
        .layers
        .iter()
        .map(|l| {
            let mut d = l.descriptor.clone();
            d.media_type = media_types.layer(&d.media_type);
            d.platform = None;
            d.annotations = match media_types {
                MediaTypes::Oci => d
                    .annotations
                    .into_iter()
                    .filter(|(k, _)| !is_internal_annotation(k))
                    .collect(),
                MediaTypes::Docker => BTreeMap::new(),
            };
            d
        })
        .collect();

    let manifest = GoManifest {
        schema_version: 2,
        media_type: media_types.manifest(),
        config: GoDescriptor {
            media_type: media_types.config(),
            digest: config_digest.to_string(),
            size: config_bytes.len() as u64,
            urls: &[],
            annotations: &BTreeMap::new(),
            platform: None,
        },
        layers: (!layers.is_empty()).then(|| {
            layers
                .iter()
                .map(|d| GoDescriptor {
                    media_type: &d.media_type,
                    digest: d.digest.to_string(),
                    size: d.size,
                    urls: &d.urls,
                    annotations: &d.annotations,
                    platform: None,
                })
                .collect()
        }),
        annotations: &opts.manifest_annotations,
    };
    let manifest_bytes = gojson::marshal_indent(&manifest);
    let manifest_digest = Digest::of(&manifest_bytes);

    let mut annotations = opts.descriptor_annotations.clone();
    if !annotations.contains_key(ANNOTATION_CREATED) {
        annotations.insert(
            ANNOTATION_CREATED.to_string(),
            export_time(epoch, created.as_deref()),
        );
    }
    let descriptor = Descriptor {
        media_type: media_types.manifest().to_string(),
        digest: manifest_digest.clone(),
        size: manifest_bytes.len() as u64,
        platform: Some(Platform {
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: (!config.variant.is_empty()).then(|| config.variant.clone()),
        }),
        annotations,
        urls: Vec::new(),
    };

    Ok(Assembled {
        config: config_bytes,
        config_digest,
        manifest: manifest_bytes,
        manifest_digest,
        media_types,
        descriptor,
        layers,
        created,
        source_date_epoch: opts.source_date_epoch,
        os_version: config.os_version.clone(),
        os_features: config.os_features.clone(),
    })
}

/// The time of the `org.opencontainers.image.created` annotation. BuildKit writes the
/// epoch when given and the wall clock otherwise; kiln writes the image's own
/// `created` instead of the wall clock, so the same build exports the same bytes.
fn export_time(epoch: Option<GoTime>, created: Option<&str>) -> String {
    epoch
        .or_else(|| created.and_then(GoTime::parse))
        .or_else(|| GoTime::from_unix(0))
        .map(GoTime::to_utc_seconds_string)
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// Layer annotations BuildKit keeps to itself (`RemoveInternalLayerAnnotations`).
fn is_internal_annotation(key: &str) -> bool {
    key == "containerd.io/uncompressed"
        || key == "buildkit/createdat"
        || key.starts_with("containerd.io/distribution.source.")
}

/// Step 1 of the module docs.
fn normalize_history(
    history: &[History],
    layers: &[ExportLayer],
) -> Result<Vec<Entry>, ExportError> {
    let mut entries = Vec::with_capacity(history.len().max(layers.len()));
    for (i, h) in history.iter().enumerate() {
        let created = match &h.created {
            Some(text) => Some(GoTime::parse(text).ok_or_else(|| {
                ExportError::InvalidImage(format!(
                    "history entry {i} ({:?}) has created time {text:?}, which is not RFC 3339",
                    h.created_by
                ))
            })?),
            None => None,
        };
        entries.push(Entry {
            history: h.clone(),
            created,
        });
    }
    let mut layer_times = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        layer_times.push(match &l.created {
            Some(text) => Some(GoTime::parse(text).ok_or_else(|| {
                ExportError::InvalidImage(format!(
                    "layer {i} ({}) has created time {text:?}, which is not RFC 3339",
                    l.descriptor.digest
                ))
            })?),
            None => None,
        });
    }

    let history_layers = entries.iter().filter(|e| !e.history.empty_layer).count();
    if history_layers > layers.len() {
        let mut seen = 0;
        for e in &mut entries {
            if seen >= layers.len() {
                e.history.empty_layer = true;
            }
            if !e.history.empty_layer {
                seen += 1;
            }
        }
    } else {
        for created in &layer_times[history_layers..] {
            entries.push(Entry {
                history: History {
                    created_by: UNDESCRIBED_LAYER.to_string(),
                    comment: EXPORTER_HISTORY_COMMENT.to_string(),
                    ..History::default()
                },
                created: *created,
            });
        }
    }

    let mut layer_index = 0;
    for e in &mut entries {
        if !e.history.empty_layer {
            if e.created.is_none() {
                e.created = layer_times.get(layer_index).copied().flatten();
            }
            layer_index += 1;
        }
    }

    // The first time after an entry without one ("the first new layer time"), or
    // failing that the last time there is.
    let mut fill: Option<GoTime> = None;
    let mut missing_seen = false;
    for e in &entries {
        match e.created {
            Some(t) => {
                fill = Some(t);
                if missing_seen {
                    break;
                }
            }
            None => missing_seen = true,
        }
    }
    let mut missing_seen = false;
    for e in &mut entries {
        match e.created {
            Some(t) => {
                if missing_seen {
                    fill = Some(t);
                }
            }
            None => {
                missing_seen = true;
                e.created = fill;
            }
        }
    }
    for e in &mut entries {
        e.history.created = e.created.map(GoTime::to_json_string);
    }
    Ok(entries)
}

/// Step 2 of the module docs.
fn apply_epoch(entries: &mut [Entry], base: &[History], epoch: Option<&GoTime>) {
    let Some(epoch) = epoch else {
        return;
    };
    let mut diverged = false;
    for (i, e) in entries.iter_mut().enumerate() {
        if !diverged
            && base
                .get(i)
                .is_some_and(|b| same_entry(&e.history, e.created, b))
        {
            continue;
        }
        diverged = true;
        if e.created.is_none_or(|t| t.after(epoch)) {
            e.created = Some(*epoch);
            e.history.created = Some(epoch.to_json_string());
        }
    }
}

/// Whether a history entry is the base image's entry (times compared as instants).
fn same_entry(h: &History, created: Option<GoTime>, base: &History) -> bool {
    let base_created = base.created.as_deref().map(GoTime::parse);
    let times_equal = match (created, base_created) {
        (None, None) => true,
        (Some(a), Some(Some(b))) => a == b,
        _ => false,
    };
    times_equal
        && h.created_by == base.created_by
        && h.author == base.author
        && h.comment == base.comment
        && h.empty_layer == base.empty_layer
}

fn raw(bytes: Vec<u8>) -> Result<Box<RawValue>, ExportError> {
    let text = String::from_utf8(bytes)
        .map_err(|e| ExportError::InvalidImage(format!("config is not UTF-8: {e}")))?;
    RawValue::from_string(text)
        .map_err(|e| ExportError::InvalidImage(format!("config is not JSON: {e}")))
}

/// Step 4 of the module docs, for the config.
fn config_json(
    config: &ImageConfig,
    layers: &[ExportLayer],
    history: &[Entry],
    created: Option<&str>,
) -> Result<Vec<u8>, ExportError> {
    let frontend = gojson::marshal(config);
    let mut top: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(&frontend)
        .map_err(|e| ExportError::InvalidImage(format!("config does not round-trip: {e}")))?;
    let rootfs = GoRootFs {
        kind: "layers",
        diff_ids: (!layers.is_empty())
            .then(|| layers.iter().map(|l| l.diff_id.to_string()).collect()),
    };
    top.insert("rootfs".into(), raw(gojson::marshal(&rootfs))?);
    let history: Option<Vec<&History>> =
        (!history.is_empty()).then(|| history.iter().map(|e| &e.history).collect());
    top.insert("history".into(), raw(gojson::marshal(&history))?);
    top.insert("created".into(), raw(gojson::marshal(&created))?);
    Ok(gojson::marshal(&top))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "2023-01-01T00:00:00Z";
    const T2: &str = "2023-06-01T12:00:00.5Z";
    const L1: &str = "2024-03-01T10:00:00Z";
    const L2: &str = "2024-03-01T10:05:00Z";

    fn layer(n: u8, created: Option<&str>) -> ExportLayer {
        ExportLayer {
            blob: PathBuf::from(format!("/nonexistent/{n}")),
            descriptor: Descriptor::of(kiln_registry::media_type::OCI_LAYER_GZIP, &[n]),
            diff_id: Digest::of(&[n, n]),
            created: created.map(str::to_string),
            source_repo: None,
            verified: false,
        }
    }

    fn hist(by: &str, created: Option<&str>, empty: bool) -> History {
        History {
            created: created.map(str::to_string),
            created_by: by.to_string(),
            comment: if by.starts_with("/bin") {
                String::new()
            } else {
                "buildkit.dockerfile.v0".to_string()
            },
            empty_layer: empty,
            ..History::default()
        }
    }

    fn image() -> Image {
        let base = vec![
            hist("/bin/sh -c #(nop) ADD file:abc in /", Some(T1), false),
            hist("/bin/sh -c #(nop) CMD [\"sh\"]", Some(T2), true),
        ];
        let mut config = ImageConfig::empty(&"linux/amd64".parse().unwrap());
        config.history = base.clone();
        config.history.extend([
            hist("ENV A=1", None, true),
            hist("COPY a /a # buildkit", None, false),
            hist("RUN /bin/sh -c true # buildkit", None, false),
            hist("CMD [\"x\"]", None, true),
        ]);
        Image {
            config,
            layers: vec![layer(0, Some(T1)), layer(1, Some(L1)), layer(2, Some(L2))],
            base_history: base,
        }
    }

    fn parsed(a: &Assembled) -> serde_json::Value {
        serde_json::from_slice(&a.config).unwrap()
    }

    fn times(a: &Assembled) -> Vec<String> {
        parsed(a)["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["created"].as_str().unwrap_or("<none>").to_string())
            .collect()
    }

    #[test]
    fn history_times_follow_buildkit_without_epoch() {
        let a = assemble(&image(), &AssembleOptions::default()).unwrap();
        // ENV before the first new layer takes that layer's time; CMD after the last
        // layer takes the last time seen.
        assert_eq!(times(&a), [T1, "2023-06-01T12:00:00.5Z", L1, L1, L2, L2]);
        assert_eq!(parsed(&a)["created"], L2);
        assert_eq!(a.created.as_deref(), Some(L2));
        assert_eq!(
            a.descriptor.annotations[ANNOTATION_CREATED],
            "2024-03-01T10:05:00Z"
        );
    }

    #[test]
    fn epoch_replaces_new_times_and_keeps_the_base_images() {
        let mut img = image();
        // What the frontend writes under SOURCE_DATE_EPOCH: new entries carry it.
        let epoch = 1_700_000_000;
        let e = "2023-11-14T22:13:20Z";
        for h in &mut img.config.history[2..] {
            h.created = Some(e.to_string());
        }
        let opts = AssembleOptions {
            source_date_epoch: Some(epoch),
            ..AssembleOptions::default()
        };
        let a = assemble(&img, &opts).unwrap();
        assert_eq!(times(&a), [T1, "2023-06-01T12:00:00.5Z", e, e, e, e]);
        assert_eq!(parsed(&a)["created"], e);
        assert_eq!(a.descriptor.annotations[ANNOTATION_CREATED], e);

        // Without times from the frontend, layer times after the epoch are clamped
        // and metadata entries get the epoch too.
        let a = assemble(&image(), &opts).unwrap();
        assert_eq!(times(&a), [T1, "2023-06-01T12:00:00.5Z", e, e, e, e]);

        // An epoch later than the layers keeps their (earlier) times.
        let late = AssembleOptions {
            source_date_epoch: Some(1_800_000_000),
            ..AssembleOptions::default()
        };
        let a = assemble(&image(), &late).unwrap();
        assert_eq!(times(&a)[2..], [L1, L1, L2, L2]);
        assert_eq!(
            a.descriptor.annotations[ANNOTATION_CREATED],
            "2027-01-15T08:00:00Z"
        );
    }

    #[test]
    fn a_changed_base_entry_stops_the_base_exemption() {
        let mut img = image();
        img.base_history[0].created_by = "something else".into();
        let opts = AssembleOptions {
            source_date_epoch: Some(1_600_000_000),
            ..AssembleOptions::default()
        };
        let a = assemble(&img, &opts).unwrap();
        // T1 (2023) is after the epoch (2020), so even the base entries are clamped.
        let e = "2020-09-13T12:26:40Z";
        assert_eq!(times(&a), [e, e, e, e, e, e]);
    }

    #[test]
    fn created_in_the_config_is_kept_or_clamped() {
        let mut img = image();
        img.config.created = Some("2025-01-01T00:00:00.000Z".into());
        let a = assemble(&img, &AssembleOptions::default()).unwrap();
        assert_eq!(parsed(&a)["created"], "2025-01-01T00:00:00.000Z");
        let opts = AssembleOptions {
            source_date_epoch: Some(1_700_000_000),
            ..AssembleOptions::default()
        };
        let a = assemble(&img, &opts).unwrap();
        assert_eq!(parsed(&a)["created"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn missing_and_surplus_history_is_reconciled() {
        let mut img = image();
        img.config.history.truncate(3); // two base entries and ENV; one layer entry
        let a = assemble(&img, &AssembleOptions::default()).unwrap();
        let h = parsed(&a)["history"].clone();
        assert_eq!(h.as_array().unwrap().len(), 5);
        assert_eq!(h[3]["created_by"], UNDESCRIBED_LAYER);
        assert_eq!(h[3]["comment"], EXPORTER_HISTORY_COMMENT);
        assert_eq!(h[3]["created"], L1);
        assert_eq!(h[4]["created"], L2);
        assert_eq!(h[2]["created"], L1);

        let mut img = image();
        img.layers.truncate(1);
        let a = assemble(&img, &AssembleOptions::default()).unwrap();
        let h = parsed(&a)["history"].clone();
        assert_eq!(h[3]["empty_layer"], true);
        assert_eq!(h[4]["empty_layer"], true);
        assert_eq!(
            parsed(&a)["rootfs"]["diff_ids"].as_array().unwrap().len(),
            1
        );
    }

    #[test]
    fn config_keys_are_sorted_and_empty_image_has_nulls() {
        let config = ImageConfig::empty(&"linux/arm64/v8".parse().unwrap());
        let img = Image {
            config,
            layers: vec![],
            base_history: vec![],
        };
        let a = assemble(&img, &AssembleOptions::default()).unwrap();
        assert_eq!(
            String::from_utf8(a.config.clone()).unwrap(),
            r#"{"architecture":"arm64","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"created":null,"history":null,"os":"linux","rootfs":{"type":"layers","diff_ids":null}}"#
        );
        let manifest = String::from_utf8(a.manifest.clone()).unwrap();
        assert!(manifest.contains("\"layers\": null"), "{manifest}");
        assert_eq!(
            a.descriptor.annotations[ANNOTATION_CREATED],
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn manifest_is_indented_and_media_types_follow_the_choice() {
        let a = assemble(&image(), &AssembleOptions::default()).unwrap();
        let m = String::from_utf8(a.manifest.clone()).unwrap();
        let expected_start = format!(
            "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n  \"config\": {{\n    \"mediaType\": \"application/vnd.oci.image.config.v1+json\",\n    \"digest\": \"{}\",\n    \"size\": {}\n  }},\n  \"layers\": [\n    {{\n      \"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\",",
            a.config_digest,
            a.config.len()
        );
        assert!(m.starts_with(&expected_start), "{m}");
        assert_eq!(a.manifest_digest, Digest::of(&a.manifest));

        let docker = AssembleOptions {
            media_types: MediaTypes::Docker,
            ..AssembleOptions::default()
        };
        let d = assemble(&image(), &docker).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&d.manifest).unwrap();
        assert_eq!(v["mediaType"], kiln_registry::media_type::DOCKER_MANIFEST);
        assert_eq!(
            v["config"]["mediaType"],
            kiln_registry::media_type::DOCKER_CONFIG
        );
        assert_eq!(
            v["layers"][0]["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        // The config is the same whatever the media types.
        assert_eq!(d.config, a.config);
    }

    #[test]
    fn layer_annotations_are_filtered_for_oci_and_dropped_for_docker() {
        let mut img = image();
        let ann = &mut img.layers[1].descriptor.annotations;
        ann.insert("containerd.io/uncompressed".into(), "x".into());
        ann.insert(
            "containerd.io/distribution.source.docker.io".into(),
            "x".into(),
        );
        ann.insert("org.example/keep".into(), "<&>".into());
        let a = assemble(&img, &AssembleOptions::default()).unwrap();
        let m = String::from_utf8(a.manifest.clone()).unwrap();
        assert!(
            m.contains(r#""org.example/keep": "\u003c\u0026\u003e""#),
            "{m}"
        );
        assert!(!m.contains("containerd.io"), "{m}");
        let docker = AssembleOptions {
            media_types: MediaTypes::Docker,
            ..AssembleOptions::default()
        };
        let d = assemble(&img, &docker).unwrap();
        assert!(
            !String::from_utf8(d.manifest)
                .unwrap()
                .contains("annotations")
        );
    }

    #[test]
    fn layer_media_types_convert_both_ways() {
        let zstd_oci = "application/vnd.oci.image.layer.v1.tar+zstd";
        let zstd_docker = "application/vnd.docker.image.rootfs.diff.tar.zstd";
        assert_eq!(MediaTypes::Docker.layer(zstd_oci), zstd_docker);
        assert_eq!(MediaTypes::Oci.layer(zstd_docker), zstd_oci);
        assert_eq!(
            MediaTypes::Oci.layer("application/vnd.docker.image.rootfs.diff.tar"),
            "application/vnd.oci.image.layer.v1.tar"
        );
        assert_eq!(
            MediaTypes::Docker
                .layer("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"),
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        );
        assert_eq!(
            MediaTypes::Docker.layer("application/x-unknown"),
            "application/x-unknown"
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        let mut img = image();
        img.config.os.clear();
        assert!(
            assemble(&img, &AssembleOptions::default())
                .unwrap_err()
                .to_string()
                .contains("no os")
        );
        let mut img = image();
        img.config.history[3].created = Some("last tuesday".into());
        let err = assemble(&img, &AssembleOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("COPY a /a") && err.contains("last tuesday"),
            "{err}"
        );
    }
}
