//! Exports a solved build to what `-o` asked for: layer blobs from the worker
//! (reused or compressed), the config and manifest assembled as BuildKit's image
//! exporter does, then written or pushed by `kiln-exporter`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use kiln_exporter::{
    Destination, ExportLayer, Image, ImageSpec, OutputSpec, PushProgress, assemble, push,
    push_multi, write_docker, write_local, write_oci, write_oci_multi, write_tar,
};
use kiln_graph::{Definition, Digest, History, Platform};
use kiln_layer::Compression;
use kiln_registry::{Client, Reference};
use kiln_solver::{Event, EventSink, Output, Progress};
use kiln_worker::Worker;

use crate::args::BuildArgs;

fn err(msg: impl std::fmt::Display) -> String {
    format!("ERROR: {msg}")
}

/// Parses every `-o` (and `--push`, which turns image outputs into pushes or adds a
/// registry output); `-t` names fill in image outputs that have none.
pub fn parse_outputs(
    outputs: &[String],
    tags: &[String],
    push: bool,
) -> Result<Vec<OutputSpec>, String> {
    let mut specs = OutputSpec::parse_all(outputs).map_err(err)?;
    if push {
        let mut pushing = false;
        for s in &mut specs {
            if let OutputSpec::Image { push, .. } = s {
                *push = true;
                pushing = true;
            }
        }
        if !pushing {
            specs.extend(OutputSpec::parse_all(&["type=registry".to_string()]).map_err(err)?);
        }
    }
    for s in &mut specs {
        if let OutputSpec::Oci { image, .. }
        | OutputSpec::Docker { image, .. }
        | OutputSpec::Image { image, .. } = s
            && image.names.is_empty()
        {
            image.names = tags.to_vec();
        }
    }
    Ok(specs)
}

fn compression(spec: &ImageSpec) -> Result<Compression, String> {
    use kiln_exporter::CompressionType;
    let level = spec.compression.level;
    Ok(match spec.compression.kind {
        CompressionType::Uncompressed => Compression::Uncompressed,
        CompressionType::Gzip => Compression::Gzip {
            level: match level {
                Some(l) if (0..=9).contains(&l) => l as u32,
                Some(l) => {
                    return Err(err(format!(
                        "compression-level {l} is out of range for gzip (0-9)"
                    )));
                }
                None => Compression::DEFAULT_GZIP_LEVEL,
            },
        },
        CompressionType::Zstd => Compression::Zstd {
            level: match level {
                Some(l) if (-7..=22).contains(&l) => l as i32,
                Some(l) => {
                    return Err(err(format!(
                        "compression-level {l} is out of range for zstd"
                    )));
                }
                None => Compression::DEFAULT_ZSTD_LEVEL,
            },
        },
        CompressionType::Estargz => {
            return Err(err(
                "compression=estargz is not supported; use gzip, zstd or uncompressed",
            ));
        }
    })
}

/// Go's `time.RFC3339Nano` in UTC.
fn rfc3339_nanos(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// A progress vertex for an export step.
struct Step {
    sink: EventSink,
    digest: Digest,
    started: Instant,
}

impl Step {
    fn start(sink: &EventSink, name: &str) -> Step {
        let digest = Digest::of(format!("export {name} {:?}", SystemTime::now()).as_bytes());
        sink.send(Event::Started {
            vertex: digest.clone(),
            name: name.to_string(),
            at: SystemTime::now(),
        });
        Step {
            sink: sink.clone(),
            digest,
            started: Instant::now(),
        }
    }

    fn progress(&self) -> Progress {
        self.sink.for_vertex(&self.digest)
    }

    fn done<T>(self, r: Result<T, String>) -> Result<T, String> {
        self.sink.send(Event::Completed {
            vertex: self.digest.clone(),
            duration: self.started.elapsed(),
            // The step's line says ERROR itself; the message keeps its own prefix
            // only for the final report.
            error: r
                .as_ref()
                .err()
                .map(|e| e.strip_prefix("ERROR: ").unwrap_or(e).to_string()),
        });
        r
    }
}

/// The base image's history: the leading entries the Dockerfile did not write.
fn base_history(history: &[History]) -> Vec<History> {
    history
        .iter()
        .take_while(|h| h.comment != "buildkit.dockerfile.v0")
        .cloned()
        .collect()
}

async fn image_for(
    worker: &Worker,
    layers: &[Digest],
    spec: &ImageSpec,
    config: &kiln_graph::ImageConfig,
    epoch: Option<i64>,
    progress: &Progress,
) -> Result<Image, String> {
    let comp = compression(spec)?;
    let rewrite = if spec.rewrite_timestamp { epoch } else { None };
    let mut out = Vec::new();
    for id in layers {
        let b = worker
            .layers()
            .export_blob(id, comp, spec.compression.force, rewrite, progress)
            .await
            .map_err(err)?;
        let created = worker
            .store()
            .layer(id)
            .ok()
            .flatten()
            .map(|l| rfc3339_nanos(l.created_at_ns));
        out.push(ExportLayer {
            blob: b.path,
            descriptor: kiln_exporter::Descriptor {
                media_type: b.blob.media_type.clone(),
                digest: b.blob.digest.clone(),
                size: b.blob.size,
                platform: None,
                annotations: Default::default(),
                urls: Vec::new(),
            },
            diff_id: b.blob.diff_id.clone(),
            created,
            source_repo: b.source_repository,
            verified: b.fresh,
        });
    }
    Ok(Image {
        config: config.clone(),
        layers: out,
        base_history: base_history(&config.history),
    })
}

#[allow(clippy::too_many_arguments)]
pub async fn export_all(
    worker: &Arc<Worker>,
    registry: &Client,
    def: &Definition,
    roots: &[Option<Arc<Output>>],
    outputs: &[OutputSpec],
    args: &BuildArgs,
    epoch: Option<i64>,
    sink: &EventSink,
) -> Result<(), String> {
    if def.targets.len() > 1 {
        return export_multi(worker, registry, def, roots, outputs, epoch, sink).await;
    }
    let Some(target) = def.targets.first() else {
        return Ok(());
    };
    let layers: Vec<Digest> = match roots.first().and_then(|r| r.as_ref()) {
        None => Vec::new(),
        Some(o) => o
            .layer_ids()
            .ok_or_else(|| err("the build result is a local directory, not a filesystem"))?
            .to_vec(),
    };
    let mut metadata = serde_json::Map::new();
    let mut config_digest = None;
    for out in outputs {
        match out {
            OutputSpec::Local {
                dest,
                source_date_epoch,
                ..
            } => {
                let step = Step::start(sink, "exporting to client directory");
                let (dest, e) = (dest.clone(), source_date_epoch.or(epoch));
                let r = export_fs(worker, &layers, &step.progress(), move |root| {
                    write_local(root, &dest, e).map_err(err)
                })
                .await;
                step.done(r)?;
            }
            OutputSpec::Tar {
                dest,
                source_date_epoch,
                ..
            } => {
                let step = Step::start(sink, "exporting to client tarball");
                let dest = match dest {
                    Destination::Path(p) => p.clone(),
                    Destination::Stdout => "-".into(),
                };
                let e = source_date_epoch.or(epoch);
                let r = export_fs(worker, &layers, &step.progress(), move |root| {
                    write_tar(root, &dest, e).map_err(err)
                })
                .await;
                step.done(r)?;
            }
            OutputSpec::Oci { image, .. }
            | OutputSpec::Docker { image, .. }
            | OutputSpec::Image { image, .. } => {
                let name = match out {
                    OutputSpec::Oci { .. } => "exporting to oci image format",
                    OutputSpec::Docker { .. } => "exporting to docker image format",
                    _ => "exporting to image",
                };
                let step = Step::start(sink, name);
                let progress = step.progress();
                let r = async {
                    let epoch = image.source_date_epoch.or(epoch);
                    let img =
                        image_for(worker, &layers, image, &target.image, epoch, &progress).await?;
                    let opts = out
                        .assemble_options(&target.platform, epoch)
                        .map_err(err)?
                        .ok_or_else(|| err("not an image output"))?;
                    let assembled = assemble(&img, &opts).map_err(err)?;
                    progress.status(
                        format!("writing config {}", assembled.config_digest),
                        0,
                        None,
                        true,
                    );
                    progress.status(
                        format!("writing manifest {}", assembled.manifest_digest),
                        0,
                        None,
                        true,
                    );
                    match out {
                        OutputSpec::Oci { dest, tar, .. } => {
                            let d = dest_path(dest);
                            write_oci(&assembled, &img, &d, *tar, &image.names).map_err(err)?;
                        }
                        OutputSpec::Docker { dest, .. } => {
                            let d = dest_path(dest);
                            write_docker(&assembled, &img, &d, &image.names).map_err(err)?;
                        }
                        OutputSpec::Image {
                            push: true,
                            insecure,
                            ..
                        } => {
                            let client = push_client(registry, &image.names, *insecure)?;
                            let names = push_names(&image.names)?;
                            let p = progress.clone();
                            push(&client, &names, &assembled, &img, move |e| match e {
                                PushProgress::BlobExists { digest, .. } => {
                                    p.status(format!("{digest} exists"), 0, None, true)
                                }
                                PushProgress::BlobMounted { digest, .. } => {
                                    p.status(format!("{digest} mounted"), 0, None, true)
                                }
                                PushProgress::BlobUploaded { digest, size, .. } => {
                                    p.status(format!("pushing {digest}"), size, Some(size), true)
                                }
                                PushProgress::ManifestPushed { target, .. } => p.status(
                                    format!("pushing manifest for {target}"),
                                    0,
                                    None,
                                    true,
                                ),
                                _ => {}
                            })
                            .await
                            .map_err(err)?;
                        }
                        OutputSpec::Image { .. } => {
                            // No image store to load into: the result stays in the build cache.
                        }
                        _ => {}
                    }
                    metadata.insert(
                        "containerimage.config.digest".into(),
                        assembled.config_digest.to_string().into(),
                    );
                    metadata.insert(
                        "containerimage.digest".into(),
                        assembled.manifest_digest.to_string().into(),
                    );
                    if !image.names.is_empty() {
                        metadata.insert("image.name".into(), image.names.join(",").into());
                    }
                    config_digest = Some(assembled.config_digest.clone());
                    Ok(())
                }
                .await;
                step.done(r)?;
            }
        }
    }
    if args.iidfile.is_some() || args.quiet {
        let id = match &config_digest {
            Some(d) => d.to_string(),
            None => {
                // No image output: the id of the image that would have been written.
                let img = image_for(
                    worker,
                    &layers,
                    &ImageSpec::default(),
                    &target.image,
                    epoch,
                    &Progress::detached(&Digest::of(b"iid")),
                )
                .await?;
                let opts = kiln_exporter::AssembleOptions {
                    source_date_epoch: epoch,
                    ..kiln_exporter::AssembleOptions::default()
                };
                assemble(&img, &opts)
                    .map_err(err)?
                    .config_digest
                    .to_string()
            }
        };
        if let Some(path) = &args.iidfile {
            write_atomic(path, id.as_bytes())?;
        }
        if args.quiet {
            println!("{id}");
        }
    }
    if let Some(path) = &args.metadata_file {
        let json = serde_json::to_vec_pretty(&serde_json::Value::Object(metadata)).map_err(err)?;
        write_atomic(path, &json)?;
    }
    Ok(())
}

/// The references an image output pushes to; at least one.
fn push_names(names: &[String]) -> Result<Vec<Reference>, String> {
    let names: Vec<Reference> = names
        .iter()
        .map(|n| Reference::parse(n).map_err(err))
        .collect::<Result<_, _>>()?;
    if names.is_empty() {
        return Err(err(
            "push needs an image name: -t NAME or -o type=image,name=NAME,push=true",
        ));
    }
    Ok(names)
}

/// A client for pushing to the names of an output, with `registry.insecure` honoured.
fn push_client(registry: &Client, names: &[String], insecure: bool) -> Result<Client, String> {
    if !insecure {
        return Ok(registry.clone());
    }
    let mut cfg = registry.config().clone();
    for n in names {
        if let Ok(r) = Reference::parse(n) {
            cfg.insecure_registries.push(r.registry().to_string());
        }
    }
    Client::new(cfg).map_err(err)
}

/// Exports a build of several platforms: one index over a manifest per platform for
/// image outputs, one directory per platform (`linux_amd64`) for local outputs.
async fn export_multi(
    worker: &Arc<Worker>,
    registry: &Client,
    def: &Definition,
    roots: &[Option<Arc<Output>>],
    outputs: &[OutputSpec],
    epoch: Option<i64>,
    sink: &EventSink,
) -> Result<(), String> {
    let mut per_target = Vec::new();
    for (t, root) in def.targets.iter().zip(roots) {
        let layers: Vec<Digest> = match root {
            None => Vec::new(),
            Some(o) => o
                .layer_ids()
                .ok_or_else(|| err("the build result is a local directory, not a filesystem"))?
                .to_vec(),
        };
        per_target.push((t, layers));
    }
    for out in outputs {
        match out {
            OutputSpec::Local {
                dest,
                source_date_epoch,
                ..
            } => {
                let step = Step::start(sink, "exporting to client directory");
                let mut r = Ok(());
                for (t, layers) in &per_target {
                    let dir_name = platform_dir_name(&t.platform);
                    if let Err(e) = std::fs::create_dir_all(dest) {
                        r = Err(err(format!("creating {}: {e}", dest.display())));
                        break;
                    }
                    let (d, e) = (dest.join(dir_name), source_date_epoch.or(epoch));
                    r = export_fs(worker, layers, &step.progress(), move |root| {
                        write_local(root, &d, e).map_err(err)
                    })
                    .await;
                    if r.is_err() {
                        break;
                    }
                }
                step.done(r)?;
            }
            OutputSpec::Tar {
                dest,
                source_date_epoch,
                ..
            } => {
                // One tarball holding a directory per platform, as type=local writes
                // them: staged in the store, then written as one tar.
                let step = Step::start(sink, "exporting to client tarball");
                let e = source_date_epoch.or(epoch);
                let r = async {
                    let staging = worker.store().work_dir().map_err(err)?;
                    let platforms = staging.path().join("platforms");
                    std::fs::create_dir(&platforms)
                        .map_err(|e| err(format!("creating {}: {e}", platforms.display())))?;
                    for (t, layers) in &per_target {
                        let d = platforms.join(platform_dir_name(&t.platform));
                        export_fs(worker, layers, &step.progress(), move |root| {
                            write_local(root, &d, e).map_err(err)
                        })
                        .await?;
                    }
                    let dest = dest_path(dest);
                    tokio::task::spawn_blocking(move || {
                        let written = write_tar(&platforms, &dest, e).map_err(err);
                        drop(staging);
                        written
                    })
                    .await
                    .map_err(|e| err(format!("writing the tarball: {e}")))?
                }
                .await;
                step.done(r)?;
            }
            OutputSpec::Docker { .. } => {
                return Err(err(
                    "docker exporter does not currently support exporting manifest lists",
                ));
            }
            OutputSpec::Oci { image, .. } | OutputSpec::Image { image, .. } => {
                let step = Step::start(sink, "exporting to image");
                let progress = step.progress();
                let r = async {
                    let e = image.source_date_epoch.or(epoch);
                    let mut images = Vec::new();
                    for (t, layers) in &per_target {
                        let img = image_for(worker, layers, image, &t.image, e, &progress).await?;
                        let opts = out
                            .assemble_options(&t.platform, e)
                            .map_err(err)?
                            .ok_or_else(|| err("not an image output"))?;
                        let a = assemble(&img, &opts).map_err(err)?;
                        images.push((a, img));
                    }
                    let parts: Vec<(&kiln_exporter::Assembled, &Image)> =
                        images.iter().map(|(a, i)| (a, i)).collect();
                    match out {
                        OutputSpec::Oci { dest, tar, .. } => {
                            write_oci_multi(&parts, &dest_path(dest), *tar, &image.names)
                                .map_err(err)
                        }
                        OutputSpec::Image {
                            push: true,
                            insecure,
                            ..
                        } => {
                            let client = push_client(registry, &image.names, *insecure)?;
                            let names = push_names(&image.names)?;
                            push_multi(&client, &names, &parts, |_| {})
                                .await
                                .map_err(err)
                        }
                        _ => Ok(()),
                    }
                }
                .await;
                step.done(r)?;
            }
        }
    }
    Ok(())
}

/// The directory of one platform's files in a multi-platform local or tar output
/// (`linux_arm64_v8`), as buildx names it.
fn platform_dir_name(p: &Platform) -> String {
    let mut name = format!("{}_{}", p.os, p.architecture);
    if let Some(v) = &p.variant {
        name.push('_');
        name.push_str(v);
    }
    name
}

fn dest_path(d: &Destination) -> std::path::PathBuf {
    match d {
        Destination::Path(p) => p.clone(),
        Destination::Stdout => "-".into(),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| err(format!("writing {}: {e}", path.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(format!("writing {}: {e}", path.display()))
    })
}

/// Mounts the final filesystem read-only and hands its path to `write`.
async fn export_fs(
    worker: &Arc<Worker>,
    layers: &[Digest],
    progress: &Progress,
    write: impl FnOnce(&Path) -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    let mut dirs = Vec::new();
    for l in layers {
        dirs.push(
            worker
                .layers()
                .materialize(l, progress)
                .await
                .map_err(err)?,
        );
    }
    dirs.reverse();
    let store = worker.store().clone();
    tokio::task::spawn_blocking(move || {
        let work = store.work_dir().map_err(err)?;
        let root = work.path().join("rootfs");
        std::fs::create_dir_all(&root).map_err(|e| err(format!("creating a mount point: {e}")))?;
        let _guard = if dirs.is_empty() {
            None
        } else {
            let refs: Vec<&Path> = dirs.iter().map(|p| p.as_path()).collect();
            Some(
                kiln_worker::mount::mount_layers(&refs, None, &root)
                    .map_err(|e| err(format!("mounting the result: {e}")))?,
            )
        };
        write(&root)
    })
    .await
    .map_err(|e| err(format!("export: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_like_go() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nanos(1_700_000_000_123_000_000),
            "2023-11-14T22:13:20.123Z"
        );
    }

    #[test]
    fn push_flag_pushes_image_outputs_or_adds_a_registry_output() {
        let tags = ["reg.test/a:1".to_string()];
        let pushed = |specs: &[OutputSpec]| -> Vec<(bool, Vec<String>)> {
            specs
                .iter()
                .filter_map(|s| match s {
                    OutputSpec::Image { push, image, .. } => Some((*push, image.names.clone())),
                    _ => None,
                })
                .collect()
        };
        let specs = parse_outputs(&[], &tags, true).unwrap();
        assert_eq!(pushed(&specs), [(true, tags.to_vec())]);
        let specs = parse_outputs(&["type=image".into()], &tags, true).unwrap();
        assert_eq!(pushed(&specs), [(true, tags.to_vec())]);
        let specs = parse_outputs(&["type=oci,dest=x.tar".into()], &tags, true).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(pushed(&specs), [(true, tags.to_vec())]);
        let specs = parse_outputs(&["type=image".into()], &tags, false).unwrap();
        assert_eq!(pushed(&specs), [(false, tags.to_vec())]);
    }
}
