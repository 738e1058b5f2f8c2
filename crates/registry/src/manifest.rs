//! Manifests and indexes: media types, kiln's [`Descriptor`], and reading the four
//! kinds of document a registry serves for an image (OCI manifest and index, Docker
//! schema 2 manifest and manifest list) with `oci-spec`'s types. Docker schema 1 is
//! recognized only to be rejected with a clear error, as containerd 2 does.

use std::collections::BTreeMap;

use kiln_graph::{Digest, Platform};
use oci_spec::image::{ImageIndex, ImageManifest};
use serde::{Deserialize, Serialize};

/// Media types of the documents and blobs kiln handles.
pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// The `Accept` header for manifest requests, as containerd sends it.
    pub(crate) fn manifest_accept() -> String {
        [
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
            OCI_MANIFEST,
            OCI_INDEX,
            "*/*",
        ]
        .join(", ")
    }
}

use media_type::*;

/// A pointer to content: its media type, digest and size, and for index entries the
/// platform. Serialized as an OCI descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

impl Descriptor {
    /// A descriptor of `bytes` with the given media type.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
        }
    }
}

/// A manifest or index as the registry stored it: the exact bytes, whose sha256 is
/// its digest, and its media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// The descriptor that points at this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
        }
    }
}

/// What kind of document a manifest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Image,
    Index,
}

/// Why a document cannot be used; turned into a [`crate::Problem`] by the caller, who
/// knows where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DocumentError {
    Schema1(String),
    UnknownType(String),
    Invalid(String),
}

pub(crate) fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

pub(crate) fn is_image_type(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

#[derive(Deserialize)]
struct Peek {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<u64>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
    #[serde(rename = "fsLayers", default)]
    fs_layers: Option<serde_json::Value>,
}

/// The media type of a fetched document: the `Content-Type` the registry sent, or when
/// that is missing or generic (`application/json`), the document's own `mediaType`, or
/// its shape. Schema 1 is rejected here.
pub(crate) fn classify(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<(String, Kind), DocumentError> {
    let peek: Peek = serde_json::from_slice(bytes)
        .map_err(|e| DocumentError::Invalid(format!("not a JSON manifest: {e}")))?;
    let header = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
    let media_type = match (header, &peek.media_type) {
        (Some(h), _) => h,
        (None, Some(m)) => m.clone(),
        (None, None) if peek.schema_version == Some(1) || peek.fs_layers.is_some() => {
            DOCKER_SCHEMA1.to_string()
        }
        (None, None) if peek.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) if peek.layers.is_some() => OCI_MANIFEST.to_string(),
        (None, None) => {
            return Err(DocumentError::Invalid(
                "neither a manifest nor an index".to_string(),
            ));
        }
    };
    if media_type == DOCKER_SCHEMA1
        || media_type == DOCKER_SCHEMA1_SIGNED
        || peek.schema_version == Some(1)
    {
        return Err(DocumentError::Schema1(media_type));
    }
    // A document that names its type must agree with how it was served (containerd's
    // `validateMediaType`), so an index cannot pose as an image or the reverse.
    if let Some(own) = &peek.media_type
        && *own != media_type
    {
        return Err(DocumentError::Invalid(format!(
            "served as {media_type} but declares mediaType {own}"
        )));
    }
    let kind = if is_index_type(&media_type) {
        Kind::Index
    } else if is_image_type(&media_type) {
        Kind::Image
    } else {
        return Err(DocumentError::UnknownType(media_type));
    };
    if kind == Kind::Index && peek.layers.is_some() && peek.manifests.is_none() {
        return Err(DocumentError::Invalid(format!(
            "{media_type} without \"manifests\""
        )));
    }
    if kind == Kind::Image && peek.manifests.is_some() && peek.layers.is_none() {
        return Err(DocumentError::Invalid(format!(
            "{media_type} without \"layers\""
        )));
    }
    Ok((media_type, kind))
}

/// An image manifest's config and layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageParts {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

pub(crate) fn parse_image(bytes: &[u8]) -> Result<ImageParts, DocumentError> {
    let manifest: ImageManifest = serde_json::from_slice(bytes)
        .map_err(|e| DocumentError::Invalid(format!("not an image manifest: {e}")))?;
    if manifest.schema_version() != 2 {
        return Err(DocumentError::Invalid(format!(
            "schemaVersion {} (expected 2)",
            manifest.schema_version()
        )));
    }
    Ok(ImageParts {
        config: convert(manifest.config())?,
        layers: manifest
            .layers()
            .iter()
            .map(convert)
            .collect::<Result<_, _>>()?,
    })
}

pub(crate) fn parse_index(bytes: &[u8]) -> Result<Vec<Descriptor>, DocumentError> {
    let index: ImageIndex = serde_json::from_slice(bytes)
        .map_err(|e| DocumentError::Invalid(format!("not an image index: {e}")))?;
    if index.schema_version() != 2 {
        return Err(DocumentError::Invalid(format!(
            "schemaVersion {} (expected 2)",
            index.schema_version()
        )));
    }
    index.manifests().iter().map(convert).collect()
}

fn convert(d: &oci_spec::image::Descriptor) -> Result<Descriptor, DocumentError> {
    let digest_text = d.digest().to_string();
    let digest = digest_text.parse::<Digest>().map_err(|_| {
        DocumentError::Invalid(format!(
            "descriptor digest {digest_text} is not sha256, the only algorithm kiln stores"
        ))
    })?;
    let platform = d.platform().as_ref().map(|p| Platform {
        os: p.os().to_string(),
        architecture: p.architecture().to_string(),
        variant: p.variant().clone().filter(|v| !v.is_empty()),
    });
    Ok(Descriptor {
        media_type: d.media_type().to_string(),
        digest,
        size: d.size(),
        platform,
        annotations: d
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        urls: d.urls().clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn docker_list() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
              {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D1}","size":525,
                "platform":{{"architecture":"arm","os":"linux","variant":"v7","features":["x"]}}}},
              {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D2}","size":525,
                "platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        )
    }

    #[test]
    fn classifies_by_header_then_body_then_shape() {
        let list = docker_list();
        assert_eq!(
            classify(Some(DOCKER_MANIFEST_LIST), list.as_bytes()).unwrap(),
            (DOCKER_MANIFEST_LIST.to_string(), Kind::Index)
        );
        assert_eq!(
            classify(Some("application/json; charset=utf-8"), list.as_bytes())
                .unwrap()
                .0,
            DOCKER_MANIFEST_LIST
        );
        let bare_index = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            classify(None, bare_index.as_bytes()).unwrap(),
            (OCI_INDEX.to_string(), Kind::Index)
        );
        let bare_manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{D1}","size":2}},"layers":[]}}"#
        );
        assert_eq!(
            classify(None, bare_manifest.as_bytes()).unwrap(),
            (OCI_MANIFEST.to_string(), Kind::Image)
        );
        assert_eq!(
            classify(Some(OCI_MANIFEST), bare_manifest.as_bytes())
                .unwrap()
                .1,
            Kind::Image
        );
    }

    #[test]
    fn schema1_and_unknown_types_are_rejected() {
        let schema1 = r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(matches!(
            classify(None, schema1.as_bytes()),
            Err(DocumentError::Schema1(_))
        ));
        assert!(matches!(
            classify(Some(DOCKER_SCHEMA1_SIGNED), schema1.as_bytes()),
            Err(DocumentError::Schema1(_))
        ));
        let artifact = r#"{"schemaVersion":2,"layers":[]}"#;
        assert_eq!(
            classify(Some("application/vnd.cncf.helm.chart"), artifact.as_bytes()),
            Err(DocumentError::UnknownType(
                "application/vnd.cncf.helm.chart".into()
            ))
        );
        assert!(matches!(
            classify(None, b"<html>"),
            Err(DocumentError::Invalid(_))
        ));
    }

    #[test]
    fn declared_media_type_must_agree_with_the_served_one() {
        let list = docker_list();
        assert!(matches!(
            classify(Some(OCI_MANIFEST), list.as_bytes()),
            Err(DocumentError::Invalid(_))
        ));
    }

    #[test]
    fn docker_manifest_lists_parse_into_descriptors() {
        let entries = parse_index(docker_list().as_bytes()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].digest.to_string(), D1);
        assert_eq!(
            entries[0].platform.as_ref().unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            entries[1].platform.as_ref().unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(entries[1].media_type, DOCKER_MANIFEST);
    }

    #[test]
    fn image_manifests_parse_into_config_and_layers() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
               "config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{D1}","size":1469}},
               "layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","digest":"{D2}","size":2152262,
                           "annotations":{{"a":"b"}}}}]}}"#
        );
        let parts = parse_image(manifest.as_bytes()).unwrap();
        assert_eq!(parts.config.size, 1469);
        assert_eq!(parts.layers.len(), 1);
        assert_eq!(
            parts.layers[0].annotations.get("a").map(String::as_str),
            Some("b")
        );
        assert!(parse_image(b"{}").is_err());
        let sha512 = manifest.replace(D2, &format!("sha512:{}", "a".repeat(128)));
        assert!(parse_image(sha512.as_bytes()).is_err());
    }

    #[test]
    fn descriptors_serialize_as_oci() {
        let d = Descriptor::of(OCI_CONFIG, b"{}");
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            format!(
                r#"{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":2}}"#,
                Digest::of(b"{}")
            )
        );
    }
}
