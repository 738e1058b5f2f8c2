//! Image exports that reuse work from earlier exports of the same layers (a diff_id
//! computed for one compression, blobs kept in the store) must describe the bytes
//! they ship: every layer's diff_id is the digest of its decompressed blob.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use common::{BUSYBOX, Context, State, ready, text};
use sha2::{Digest as _, Sha256};

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The files of a tarball by name.
fn untar(path: &Path) -> HashMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut files = HashMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(name, bytes);
    }
    files
}

fn blob<'a>(files: &'a HashMap<String, Vec<u8>>, digest: &str) -> &'a [u8] {
    let hex = digest.strip_prefix("sha256:").unwrap();
    &files[&format!("blobs/sha256/{hex}")]
}

/// Checks every layer of the OCI tarball against the config's diff_ids; returns the
/// diff_ids.
fn check_layers(path: &Path) -> Vec<String> {
    let files = untar(path);
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(blob(
        &files,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(blob(&files, manifest["config"]["digest"].as_str().unwrap()))
            .unwrap();
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), diff_ids.len());
    for (layer, diff_id) in layers.iter().zip(&diff_ids) {
        let compressed = blob(&files, layer["digest"].as_str().unwrap());
        assert_eq!(sha256(compressed), layer["digest"].as_str().unwrap());
        let media_type = layer["mediaType"].as_str().unwrap();
        let mut tar = Vec::new();
        if media_type.ends_with("+zstd") {
            zstd::stream::read::Decoder::new(compressed)
                .unwrap()
                .read_to_end(&mut tar)
                .unwrap();
        } else if media_type.ends_with("gzip") {
            flate2::read::MultiGzDecoder::new(compressed)
                .read_to_end(&mut tar)
                .unwrap();
        } else {
            tar = compressed.to_vec();
        }
        assert_eq!(&sha256(&tar), diff_id, "{media_type} layer");
    }
    diff_ids
}

#[test]
fn every_compression_of_a_layer_declares_the_diff_id_of_its_bytes() {
    if !ready("every_compression_of_a_layer_declares_the_diff_id_of_its_bytes") {
        return;
    }
    let df = format!("FROM {BUSYBOX}\nCOPY . /app\n");
    let ctx = Context::new(
        &df,
        &[
            ("a.txt", "alpha\n"),
            ("dir/b.txt", &"bravo ".repeat(50_000)),
        ],
    );
    let state = State::new();
    let out = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for (compression, epoch) in [
        ("gzip", None),
        ("zstd", None),
        ("uncompressed", None),
        ("zstd", Some("10")),
        ("gzip", Some("10")),
    ] {
        let dest = out
            .path()
            .join(format!("{compression}-{}.tar", epoch.unwrap_or("none")));
        let rewrite = if epoch.is_some() {
            ",rewrite-timestamp=true"
        } else {
            ""
        };
        let mut cmd = state.kiln();
        cmd.args(["build", "--progress", "plain", "-o"])
            .arg(format!(
                "type=oci,dest={},compression={compression},force-compression=true{rewrite}",
                dest.display()
            ))
            .arg(ctx.arg());
        if let Some(e) = epoch {
            cmd.env("SOURCE_DATE_EPOCH", e);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        all.push((epoch, check_layers(&dest)));
    }
    // The same tar whatever the compression, another one with the epoch.
    let plain: Vec<_> = all.iter().filter(|(e, _)| e.is_none()).collect();
    assert!(plain.windows(2).all(|w| w[0].1 == w[1].1), "{all:?}");
    let epoch: Vec<_> = all.iter().filter(|(e, _)| e.is_some()).collect();
    assert!(epoch.windows(2).all(|w| w[0].1 == w[1].1), "{all:?}");
    assert_ne!(plain[0].1.last(), epoch[0].1.last());
}
