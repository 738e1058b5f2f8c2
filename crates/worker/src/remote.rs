//! Sources from outside the context and the registry: files downloaded over HTTP(S)
//! (`ADD <url>`), git repositories (`ADD <git url>`), and images in OCI layouts on the
//! client (`--build-context name=oci-layout://...`).

use std::io::Write;
use std::path::Path;
use std::process::Command;

use kiln_graph::{Digest, SourceOp};
use kiln_layer::ExtractOptions;
use kiln_solver::{Output, Progress};
use kiln_store::LayerBlob;
use sha2::{Digest as _, Sha256};

use crate::backend::Worker;
use crate::error::WorkerError;
use crate::layers::SOURCE_LABEL;

pub(crate) async fn source(
    w: &Worker,
    src: &SourceOp,
    progress: &Progress,
) -> Result<Output, WorkerError> {
    match src {
        SourceOp::Http {
            url,
            checksum,
            filename,
            mode,
            ..
        } => http(w, url, checksum.as_ref(), filename, *mode, progress).await,
        SourceOp::Git {
            remote,
            reference,
            subdir,
            keep_git_dir,
            checksum,
        } => {
            let store = w.store().clone();
            let (remote, reference, subdir, checksum) = (
                remote.clone(),
                reference.clone(),
                subdir.clone(),
                checksum.clone(),
            );
            let keep = *keep_git_dir;
            let id = tokio::task::spawn_blocking(move || {
                git(
                    &store,
                    &remote,
                    reference.as_deref(),
                    subdir.as_deref(),
                    keep,
                    checksum.as_deref(),
                )
            })
            .await
            .map_err(|e| WorkerError::Failed(format!("git source: {e}")))??;
            Ok(Output::layers(vec![id]))
        }
        SourceOp::OciLayout {
            name, reference, ..
        } => oci_layout(w, name, reference, progress).await,
        _ => Err(WorkerError::Invalid("not a remote source".into())),
    }
}

async fn http(
    w: &Worker,
    url: &str,
    checksum: Option<&Digest>,
    filename: &str,
    mode: Option<u32>,
    progress: &Progress,
) -> Result<Output, WorkerError> {
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| WorkerError::Failed(format!("http client: {e}")))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| WorkerError::Failed(format!("failed to download {url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(WorkerError::Failed(format!(
            "failed to download {url}: invalid response status {}",
            resp.status()
        )));
    }
    let modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    let total = resp.content_length();
    let work = w.store().work_dir()?;
    let name = if filename.is_empty() {
        "__unnamed__"
    } else {
        filename
    };
    if name.contains('/') || name == "." || name == ".." {
        return Err(WorkerError::Invalid(format!(
            "invalid download file name {name:?}"
        )));
    }
    let path = work.upper().join(name);
    let mut file = std::fs::File::create(&path)
        .map_err(|e| WorkerError::io(format!("creating {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| WorkerError::Failed(format!("failed to download {url}: {e}")))?
    {
        hasher.update(&chunk);
        file.write_all(&chunk)
            .map_err(|e| WorkerError::io(format!("writing {}", path.display()), e))?;
        done += chunk.len() as u64;
        progress.status(url.to_string(), done, total, false);
    }
    drop(file);
    let got = Digest::from_sha256(hasher.finalize().into());
    if let Some(want) = checksum
        && &got != want
    {
        return Err(WorkerError::Failed(format!(
            "digest mismatch for {url}: {got} (expected {want})"
        )));
    }
    progress.status(url.to_string(), done, total, true);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        &path,
        std::fs::Permissions::from_mode(mode.unwrap_or(0o600)),
    )
    .map_err(|e| WorkerError::io(format!("chmod {}", path.display()), e))?;
    if let Some(t) = modified {
        let ft = std::fs::File::options()
            .write(true)
            .open(&path)
            .map_err(|e| WorkerError::io("opening download", e))?;
        let _ = ft.set_modified(t);
    }
    let id = kiln_layer::tree_digest(work.upper())?;
    work.commit(&id)?;
    Ok(Output::layers(vec![id]))
}

/// `Last-Modified` in the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn parse_http_date(s: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as i64
        + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if hms.len() != 3 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    u64::try_from(secs)
        .ok()
        .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s))
}

fn run_git(dir: &Path, args: &[&str]) -> Result<String, WorkerError> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| WorkerError::io("running git (is it installed?)", e))?;
    if !out.status.success() {
        return Err(WorkerError::Failed(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn git(
    store: &kiln_store::Store,
    remote: &str,
    reference: Option<&str>,
    subdir: Option<&str>,
    keep_git_dir: bool,
    checksum: Option<&str>,
) -> Result<Digest, WorkerError> {
    let checkout = store.work_dir()?;
    let dir = checkout.upper();
    run_git(dir, &["init", "-q"])?;
    run_git(dir, &["remote", "add", "origin", remote])?;
    let want = reference.unwrap_or("HEAD");
    if run_git(dir, &["fetch", "-q", "--depth=1", "origin", want]).is_err() {
        // A commit that is not a ref tip needs a full fetch.
        run_git(dir, &["fetch", "-q", "origin"])?;
        run_git(dir, &["checkout", "-q", want])?;
    } else {
        run_git(dir, &["checkout", "-q", "FETCH_HEAD"])?;
    }
    let commit = run_git(dir, &["rev-parse", "HEAD"])?;
    if let Some(c) = checksum
        && !commit.starts_with(c)
    {
        return Err(WorkerError::Failed(format!(
            "expected checksum to match {c}, got {commit}"
        )));
    }
    let _ = run_git(
        dir,
        &["submodule", "update", "--init", "--recursive", "--depth=1"],
    );
    if !keep_git_dir {
        std::fs::remove_dir_all(dir.join(".git"))
            .map_err(|e| WorkerError::io("removing .git", e))?;
    }
    let result = store.work_dir()?;
    // The subdirectory is a path inside the checkout: `..` and symlinks (which the
    // repository controls) resolve within it, never to the host's files.
    let from = match subdir {
        Some(s) if !s.is_empty() => crate::fsutil::resolve_in_root(dir, s),
        _ => dir.to_path_buf(),
    };
    let is_real_dir = std::fs::symlink_metadata(&from).is_ok_and(|m| m.is_dir());
    if !from.starts_with(dir) || !is_real_dir {
        return Err(WorkerError::Invalid(format!(
            "subdirectory {:?} not found in {remote}",
            subdir.unwrap_or_default()
        )));
    }
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(result.upper())
        .status()
        .map_err(|e| WorkerError::io("copying the checkout", e))?;
    if !status.success() {
        return Err(WorkerError::Failed(
            "copying the git checkout failed".into(),
        ));
    }
    let id = kiln_layer::tree_digest(result.upper())?;
    result.commit(&id)?;
    Ok(id)
}

/// Reads an image from an OCI layout named as a local directory: the layers' blobs
/// are copied into the store as the layers' source blobs.
async fn oci_layout(
    w: &Worker,
    name: &str,
    reference: &str,
    _progress: &Progress,
) -> Result<Output, WorkerError> {
    let dir = w
        .locals()
        .get(name)
        .map(|l| l.root.clone())
        .ok_or_else(|| {
            WorkerError::Invalid(format!(
                "no OCI layout named {name:?} was given to the build"
            ))
        })?;
    let store = w.store().clone();
    let reference = reference.to_string();
    let ids = tokio::task::spawn_blocking(move || -> Result<Vec<Digest>, WorkerError> {
        let manifest_digest: Digest = reference
            .parse()
            .map_err(|e| WorkerError::Invalid(format!("oci layout reference: {e}")))?;
        let read = |d: &Digest| -> Result<Vec<u8>, WorkerError> {
            let p = dir.join("blobs/sha256").join(d.hex());
            let bytes = std::fs::read(&p)
                .map_err(|e| WorkerError::io(format!("reading {}", p.display()), e))?;
            if &Digest::of(&bytes) != d {
                return Err(WorkerError::Invalid(format!(
                    "{} does not match its digest",
                    p.display()
                )));
            }
            Ok(bytes)
        };
        let manifest: serde_json::Value = serde_json::from_slice(&read(&manifest_digest)?)
            .map_err(|e| WorkerError::Invalid(format!("manifest {manifest_digest}: {e}")))?;
        let config_digest: Digest = manifest["config"]["digest"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(|e| WorkerError::Invalid(format!("manifest {manifest_digest}: config {e}")))?;
        let config: kiln_graph::ImageConfig = serde_json::from_slice(&read(&config_digest)?)
            .map_err(|e| WorkerError::Invalid(format!("config {config_digest}: {e}")))?;
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        if layers.len() != config.rootfs.diff_ids.len() {
            return Err(WorkerError::Invalid(format!(
                "manifest {manifest_digest} has {} layers, its config {} diff_ids",
                layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let mut ids = Vec::new();
        for (l, diff) in layers.iter().zip(&config.rootfs.diff_ids) {
            let digest: Digest = l["digest"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .map_err(|e| WorkerError::Invalid(format!("layer digest: {e}")))?;
            let diff_id: Digest = diff
                .parse()
                .map_err(|e| WorkerError::Invalid(format!("diff_id: {e}")))?;
            if !store.has_blob(&digest) {
                let p = dir.join("blobs/sha256").join(digest.hex());
                let mut f = std::fs::File::open(&p)
                    .map_err(|e| WorkerError::io(format!("opening {}", p.display()), e))?;
                let mut wtr = store.blob_writer()?;
                std::io::copy(&mut f, &mut wtr)
                    .map_err(|e| WorkerError::io(format!("reading {}", p.display()), e))?;
                wtr.commit(Some(&digest), None)?;
            }
            let size = std::fs::metadata(store.blob_path(&digest))
                .map(|m| m.len())
                .unwrap_or(0);
            store.put_layer_blob(
                &diff_id,
                SOURCE_LABEL,
                &LayerBlob {
                    digest: digest.clone(),
                    diff_id: diff_id.clone(),
                    size,
                    media_type: l["mediaType"].as_str().unwrap_or_default().to_string(),
                },
            )?;
            if store.layer(&diff_id)?.is_none() {
                let work = store.work_dir()?;
                let stats = kiln_layer::extract_layer(
                    store.open_blob(&digest)?,
                    work.upper(),
                    &ExtractOptions::layer(),
                )?;
                if stats.diff_id != diff_id {
                    return Err(WorkerError::Invalid(format!(
                        "layer {digest} unpacks to {}, not {diff_id}",
                        stats.diff_id
                    )));
                }
                work.commit(&diff_id)?;
            }
            ids.push(diff_id);
        }
        Ok(ids)
    })
    .await
    .map_err(|e| WorkerError::Failed(format!("oci layout: {e}")))??;
    Ok(Output::layers(ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            784111777
        );
        assert!(parse_http_date("yesterday").is_none());
    }

    /// A repository with `sub/` and two symlinks that point out of it.
    fn repo_with_escapes(dir: &Path) {
        let git = |args: &[&str]| run_git(dir, args).unwrap();
        git(&["init", "-q", "-b", "main"]);
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/inner.txt"), "inner").unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../../../../etc", dir.join("rel")).unwrap();
        std::os::unix::fs::symlink("sub", dir.join("alias")).unwrap();
        git(&["add", "."]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "one",
        ]);
    }

    #[test]
    fn git_subdirectory_stays_inside_the_checkout() {
        if Command::new("git").arg("--version").output().is_err() {
            eprintln!("git is not installed; skipping");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        repo_with_escapes(&repo);
        let store = kiln_store::Store::open(&t.path().join("state")).unwrap();
        let remote = repo.to_str().unwrap();

        let id = git(&store, remote, Some("main"), Some("sub"), false, None).unwrap();
        let layer = store.layer(&id).unwrap().unwrap();
        assert!(layer.path.join("inner.txt").is_file());
        // A symlink to a directory of the repository is followed inside it.
        let id = git(&store, remote, Some("main"), Some("alias"), false, None).unwrap();
        assert!(
            store
                .layer(&id)
                .unwrap()
                .unwrap()
                .path
                .join("inner.txt")
                .is_file()
        );

        for escape in ["abs", "rel", "../../../../../../../../etc", "/../etc"] {
            let e = git(&store, remote, Some("main"), Some(escape), false, None)
                .expect_err(escape)
                .to_string();
            assert!(e.contains("not found"), "{escape}: {e}");
        }
    }
}
