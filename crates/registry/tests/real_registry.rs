//! Against a real registry: Debian's `docker-registry` (distribution 2.8), started per
//! test on a free loopback port. Skipped, saying so, when the binary is missing.

mod common;

use common::*;
use kiln_graph::{Digest, Platform};
use kiln_registry::{
    Client, ClientConfig, Descriptor, DockerConfig, ErrorKind, Reference, Repository, media_type,
};

fn client() -> Client {
    Client::new(ClientConfig::default()).expect("client")
}

fn platform(s: &str) -> Platform {
    s.parse().expect("platform")
}

fn reference(registry: &Registry, rest: &str) -> Reference {
    Reference::parse(&format!("{}/{rest}", registry.addr)).expect("reference")
}

/// Pushes an image's blobs (skipping those present) and its manifest under `reference`.
async fn push_image(client: &Client, reference: &Reference, image: &TestImage) -> Digest {
    let repo = reference.repository();
    for (desc, bytes) in [
        (&image.layer_desc, &image.layer),
        (&image.config_desc, &image.config),
    ] {
        if !client
            .blob_exists(repo, &desc.digest)
            .await
            .expect("HEAD blob")
        {
            client
                .push_blob(repo, desc, &mut bytes.as_slice(), |_| {})
                .await
                .expect("push blob");
        }
    }
    client
        .push_manifest(reference, media_type::OCI_MANIFEST, &image.manifest)
        .await
        .expect("push manifest")
}

async fn fetch(client: &Client, repo: &Repository, desc: &Descriptor) -> Vec<u8> {
    let mut out = Vec::new();
    client
        .fetch_blob(repo, desc, &mut out, |_| {})
        .await
        .expect("fetch blob");
    out
}

#[tokio::test]
async fn push_then_resolve_by_tag_and_digest() {
    let Some(registry) = Registry::start(&[]) else {
        return;
    };
    let client = client();
    let image = TestImage::new("linux", "amd64", None, "hello from kiln\n");
    let tagged = reference(&registry, "kiln/hello:v1");
    let repo = tagged.repository().clone();

    assert!(
        !client
            .blob_exists(&repo, &image.layer_desc.digest)
            .await
            .unwrap()
    );
    let digest = push_image(&client, &tagged, &image).await;
    assert_eq!(digest, image.manifest_desc.digest);
    assert!(
        client
            .blob_exists(&repo, &image.layer_desc.digest)
            .await
            .unwrap()
    );
    assert!(
        client
            .blob_exists(&repo, &image.config_desc.digest)
            .await
            .unwrap()
    );

    let resolved = client
        .resolve(&tagged, &platform("linux/amd64"))
        .await
        .expect("resolve by tag");
    assert_eq!(resolved.manifest_digest, digest);
    assert_eq!(
        resolved.reference.to_string(),
        format!("{}/kiln/hello:v1@{digest}", registry.addr)
    );
    assert_eq!(resolved.manifest.bytes, image.manifest);
    assert_eq!(resolved.manifest.media_type, media_type::OCI_MANIFEST);
    assert_eq!(resolved.config.bytes, image.config);
    assert_eq!(resolved.config.parsed.architecture, "amd64");
    assert_eq!(
        resolved.config.parsed.config.cmd,
        Some(vec!["cat".to_string(), "/hello.txt".to_string()])
    );
    assert_eq!(resolved.layers, vec![image.layer_desc.clone()]);

    // By digest, with and without the tag.
    let pinned = Reference::with_digest(repo.clone(), digest.clone());
    let by_digest = client
        .resolve(&pinned, &platform("linux/amd64"))
        .await
        .expect("resolve by digest");
    assert_eq!(by_digest.manifest_digest, digest);
    assert_eq!(by_digest.reference, pinned);
    let both = tagged.pinned(digest.clone());
    assert_eq!(
        client
            .resolve(&both, &platform("linux/amd64"))
            .await
            .unwrap()
            .reference,
        both
    );

    // HEAD re-check of the tag.
    let head = client.resolve_digest(&tagged).await.expect("HEAD manifest");
    assert_eq!(head.digest, digest);
    assert_eq!(head.size, image.manifest.len() as u64);
    assert_eq!(head.media_type, media_type::OCI_MANIFEST);

    // The blobs come back byte for byte, with progress reported.
    let mut seen = Vec::new();
    let mut layer = Vec::new();
    client
        .fetch_blob(&repo, &image.layer_desc, &mut layer, |p| seen.push(p))
        .await
        .expect("fetch layer");
    assert_eq!(layer, image.layer);
    let last = seen.last().copied().expect("progress");
    assert_eq!(
        (last.done, last.total),
        (image.layer.len() as u64, image.layer.len() as u64)
    );
    assert_eq!(
        fetch(&client, &repo, &image.config_desc).await,
        image.config
    );
}

#[tokio::test]
async fn missing_things_are_not_found() {
    let Some(registry) = Registry::start(&[]) else {
        return;
    };
    let client = client();
    let missing = reference(&registry, "kiln/nothing:here");
    let err = client
        .resolve(&missing, &platform("linux/amd64"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "failed to resolve {}/kiln/nothing:here: ",
            registry.addr
        )),
        "{msg}"
    );
    assert!(msg.contains("manifest unknown"), "{msg}");

    let repo = missing.repository();
    let absent = Descriptor::of(media_type::OCI_LAYER, b"absent");
    let err = client
        .fetch_blob(repo, &absent, &mut Vec::new(), |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains(&absent.digest.to_string()),
        "{err}"
    );
    assert_eq!(
        client.resolve_digest(&missing).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn multi_platform_index_with_attestations() {
    let Some(registry) = Registry::start(&[]) else {
        return;
    };
    let client = client();
    let amd64 = TestImage::new("linux", "amd64", None, "amd64\n");
    let arm64 = TestImage::new("linux", "arm64", Some("v8"), "arm64\n");
    let armv6 = TestImage::new("linux", "arm", Some("v6"), "armv6\n");
    let multi = reference(&registry, "kiln/multi:latest");
    let repo = multi.repository().clone();
    let mut entries = Vec::new();
    for image in [&amd64, &arm64, &armv6] {
        let by_digest = Reference::with_digest(repo.clone(), image.manifest_desc.digest.clone());
        push_image(&client, &by_digest, image).await;
        entries.push(image.manifest_desc.clone());
    }
    // An attestation manifest for amd64, as BuildKit writes them.
    let attestation = TestImage::new("unknown", "unknown", None, "{\"predicate\":{}}");
    let attestation_ref =
        Reference::with_digest(repo.clone(), attestation.manifest_desc.digest.clone());
    push_image(&client, &attestation_ref, &attestation).await;
    let mut att_desc = attestation.manifest_desc.clone();
    att_desc.annotations.insert(
        "vnd.docker.reference.type".into(),
        "attestation-manifest".into(),
    );
    att_desc.annotations.insert(
        "vnd.docker.reference.digest".into(),
        amd64.manifest_desc.digest.to_string(),
    );
    entries.insert(0, att_desc);

    let index = index_of(&entries);
    let index_digest = client
        .push_manifest(&multi, media_type::OCI_INDEX, &index)
        .await
        .expect("push index");

    let got = client
        .resolve(&multi, &platform("linux/arm64"))
        .await
        .expect("arm64");
    assert_eq!(got.manifest_digest, arm64.manifest_desc.digest);
    assert_eq!(got.reference.digest(), Some(&index_digest));
    assert_eq!(got.config.parsed.architecture, "arm64");
    let got = client
        .resolve(&multi, &platform("linux/amd64"))
        .await
        .expect("amd64");
    assert_eq!(got.manifest_digest, amd64.manifest_desc.digest);
    // arm/v7 falls back to the v6 image.
    let got = client
        .resolve(&multi, &platform("linux/arm/v7"))
        .await
        .expect("arm/v7");
    assert_eq!(got.manifest_digest, armv6.manifest_desc.digest);

    let err = client
        .resolve(&multi, &platform("linux/s390x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMatchingPlatform);
    let msg = err.to_string();
    assert!(msg.contains("no image for platform linux/s390x"), "{msg}");
    assert!(
        msg.contains("linux/amd64, linux/arm64/v8, linux/arm/v6"),
        "{msg}"
    );
    assert!(!msg.contains("unknown"), "{msg}");

    let index_manifest = client.fetch_manifest(&multi).await.expect("fetch index");
    assert_eq!(index_manifest.bytes, index);
    assert_eq!(index_manifest.media_type, media_type::OCI_INDEX);
    assert_eq!(
        client.resolve_digest(&multi).await.unwrap().digest,
        index_digest
    );
}

#[tokio::test]
async fn cross_repository_mount_and_existence_checks() {
    let Some(registry) = Registry::start(&[]) else {
        return;
    };
    let client = client();
    let image = TestImage::new("linux", "amd64", None, "mount me\n");
    let source = reference(&registry, "kiln/source:1");
    push_image(&client, &source, &image).await;
    let target = reference(&registry, "kiln/target:1");
    let target_repo = target.repository();

    assert!(
        !client
            .blob_exists(target_repo, &image.layer_desc.digest)
            .await
            .unwrap()
    );
    let mounted = client
        .mount_blob(target_repo, source.repository(), &image.layer_desc.digest)
        .await
        .expect("mount");
    assert!(mounted);
    assert!(
        client
            .blob_exists(target_repo, &image.layer_desc.digest)
            .await
            .unwrap()
    );
    assert_eq!(
        fetch(&client, target_repo, &image.layer_desc).await,
        image.layer
    );

    // A blob the source does not have cannot be mounted; the caller uploads instead.
    let unknown = digest_of(b"not there");
    assert!(
        !client
            .mount_blob(target_repo, source.repository(), &unknown)
            .await
            .unwrap()
    );
    // Nor across registries.
    let elsewhere = Repository::parse("other.example.com/kiln/source").unwrap();
    assert!(
        !client
            .mount_blob(target_repo, &elsewhere, &image.layer_desc.digest)
            .await
            .unwrap()
    );

    // With the layer mounted, only the config needs uploading.
    client
        .push_blob(
            target_repo,
            &image.config_desc,
            &mut image.config.as_slice(),
            |_| {},
        )
        .await
        .unwrap();
    client
        .push_manifest(&target, media_type::OCI_MANIFEST, &image.manifest)
        .await
        .unwrap();
    let got = client
        .resolve(&target, &platform("linux/amd64"))
        .await
        .unwrap();
    assert_eq!(got.manifest_digest, image.manifest_desc.digest);
}

#[tokio::test]
async fn large_blobs_upload_in_chunks() {
    let Some(registry) = Registry::start(&[]) else {
        return;
    };
    let client = Client::new(ClientConfig {
        upload_chunk_size: 1 << 20,
        ..ClientConfig::default()
    })
    .unwrap();
    let repo = Repository::parse(&format!("{}/kiln/big", registry.addr)).unwrap();
    let blob = noise((5 << 20) + 12345, 7);
    let desc = Descriptor::of(media_type::OCI_LAYER, &blob);
    let mut progress = Vec::new();
    client
        .push_blob(&repo, &desc, &mut blob.as_slice(), |p| {
            progress.push(p.done)
        })
        .await
        .expect("chunked push");
    // One report per 1 MiB chunk (six of them), plus the start and the end.
    let chunk_ends: Vec<u64> = progress
        .iter()
        .copied()
        .filter(|d| *d > 0 && *d < desc.size)
        .collect();
    assert_eq!(
        chunk_ends,
        (1..=5).map(|i| i << 20).collect::<Vec<u64>>(),
        "{progress:?}"
    );
    assert_eq!(progress.last().copied(), Some(desc.size));
    assert!(client.blob_exists(&repo, &desc.digest).await.unwrap());
    let back = fetch(&client, &repo, &desc).await;
    assert_eq!(back.len(), blob.len());
    assert_eq!(digest_of(&back), desc.digest);

    // A source that does not match its descriptor is refused before it is committed.
    let other = noise(3 << 20, 8);
    let err = client
        .push_blob(&repo, &desc, &mut other.as_slice(), |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent, "{err}");
    let small = Descriptor::of(media_type::OCI_LAYER, b"small blob");
    let err = client
        .push_blob(
            &repo,
            &small,
            &mut b"small blob, but longer".as_slice(),
            |_| {},
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent, "{err}");
    assert!(!client.blob_exists(&repo, &small.digest).await.unwrap());
}

#[tokio::test]
async fn pinned_reference_must_match_the_manifest() {
    let Some(registry) = Registry::start(&[]) else {
        return;
    };
    let client = client();
    let image = TestImage::new("linux", "amd64", None, "pin\n");
    let tagged = reference(&registry, "kiln/pin:1");
    push_image(&client, &tagged, &image).await;
    // A manifest pushed under another digest than its own is refused locally.
    let wrong = tagged.pinned(digest_of(b"something else"));
    let err = client
        .push_manifest(&wrong, media_type::OCI_MANIFEST, &image.manifest)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent, "{err}");
    // Resolving tag@digest goes by the digest; a digest the registry lacks is not found.
    let err = client
        .resolve(&wrong, &platform("linux/amd64"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn basic_auth_uses_docker_config_credentials() {
    let Some(registry) = Registry::start(&[("kiln", "s3cret")]) else {
        return;
    };
    let image = TestImage::new("linux", "amd64", None, "private\n");
    let private = reference(&registry, "kiln/private:1");

    let good = docker_config_dir(&format!(
        r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
        registry.addr,
        base64_of("kiln:s3cret")
    ));
    let authed = Client::new(ClientConfig {
        credentials: DockerConfig::load_dir(good.path()).unwrap(),
        ..ClientConfig::default()
    })
    .unwrap();
    push_image(&authed, &private, &image).await;
    let got = authed
        .resolve(&private, &platform("linux/amd64"))
        .await
        .expect("resolve with credentials");
    assert_eq!(got.manifest_digest, image.manifest_desc.digest);

    // No credentials: the registry's refusal, naming it.
    let anonymous = client();
    let err = anonymous
        .resolve(&private, &platform("linux/amd64"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("registry {} refused", registry.addr)),
        "{msg}"
    );
    assert!(msg.contains("401 Unauthorized"), "{msg}");

    // Wrong credentials: the same.
    let bad = docker_config_dir(&format!(
        r#"{{"auths": {{"{}": {{"username": "kiln", "password": "wrong"}}}}}}"#,
        registry.addr
    ));
    let wrong = Client::new(ClientConfig {
        credentials: DockerConfig::load_dir(bad.path()).unwrap(),
        ..ClientConfig::default()
    })
    .unwrap();
    let err = wrong
        .push_blob(
            private.repository(),
            &image.layer_desc,
            &mut image.layer.as_slice(),
            |_| {},
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Pulls the shared testbed's busybox when a registry serves it on 127.0.0.1:5000;
/// nothing here depends on it being there.
#[tokio::test]
async fn testbed_busybox_when_available() {
    if std::net::TcpStream::connect("127.0.0.1:5000").is_err() {
        eprintln!("no registry on 127.0.0.1:5000; skipping");
        return;
    }
    let client = client();
    let busybox = Reference::parse("127.0.0.1:5000/testbed/busybox:latest").unwrap();
    let image = match client.resolve(&busybox, &Platform::host()).await {
        Ok(image) => image,
        Err(e) => {
            eprintln!("testbed busybox not available ({e}); skipping");
            return;
        }
    };
    assert!(!image.layers.is_empty());
    let layer = &image.layers[0];
    let mut bytes = Vec::new();
    client
        .fetch_blob(busybox.repository(), layer, &mut bytes, |_| {})
        .await
        .unwrap();
    assert_eq!(digest_of(&bytes), layer.digest);
}
