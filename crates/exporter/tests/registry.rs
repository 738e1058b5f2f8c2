//! Pushing to a real registry: Debian's `docker-registry` on a free loopback port,
//! checked with skopeo and by pulling the image back with kiln's registry client.

mod common;

use std::process::Command;
use std::sync::Mutex;

use common::*;
use kiln_exporter::{OutputSpec, PushProgress, assemble, push};
use kiln_registry::{Client, ClientConfig, Reference, Repository};

fn reference(registry: &Registry, rest: &str) -> Reference {
    Reference::parse(&format!("{}/{rest}", registry.addr)).unwrap()
}

/// Pushes and returns what the progress callback saw, without upload byte counts.
async fn push_logged(
    client: &Client,
    names: &[Reference],
    a: &kiln_exporter::Assembled,
    image: &kiln_exporter::Image,
) -> Vec<PushProgress> {
    let log = Mutex::new(Vec::new());
    push(client, names, a, image, |p| {
        if !matches!(p, PushProgress::BlobUploading { .. }) {
            log.lock().unwrap().push(p);
        }
    })
    .await
    .unwrap();
    log.into_inner().unwrap()
}

fn count(log: &[PushProgress], f: impl Fn(&PushProgress) -> bool) -> usize {
    log.iter().filter(|p| f(p)).count()
}

#[tokio::test]
async fn push_skip_and_mount_against_a_real_registry() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let fx = Fixture::new();
    let client = Client::new(ClientConfig::default()).unwrap();
    let spec = OutputSpec::parse("type=registry,name=unused").unwrap();
    let image = fx.image(&fx.app);
    let opts = spec
        .assemble_options(&image.config.platform(), None)
        .unwrap()
        .unwrap();
    let a = assemble(&image, &opts).unwrap();
    let app = reference(&registry, "kiln/app:1");

    let log = push_logged(&client, std::slice::from_ref(&app), &a, &image).await;
    assert_eq!(
        count(&log, |p| matches!(p, PushProgress::BlobUploaded { .. })),
        3,
        "{log:#?}"
    );
    assert!(
        matches!(log.last(), Some(PushProgress::ManifestPushed { digest, .. }) if *digest == a.manifest_digest)
    );

    // skopeo sees what kiln pushed.
    if let Some(skopeo) = tool("skopeo") {
        let info = json(&run(Command::new(&skopeo)
            .arg("inspect")
            .arg("--tls-verify=false")
            .arg(format!("docker://{app}"))));
        assert_eq!(info["Digest"], a.manifest_digest.to_string());
        assert_eq!(info["Layers"][0], fx.base.descriptor.digest.to_string());
        let raw = run(Command::new(&skopeo)
            .arg("inspect")
            .arg("--tls-verify=false")
            .arg("--raw")
            .arg(format!("docker://{app}")));
        assert_eq!(raw.stdout, a.manifest);
    }

    // Pulled back with kiln's client: same manifest, config and layer bytes.
    let resolved = client
        .resolve(&app, &"linux/amd64".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resolved.manifest_digest, a.manifest_digest);
    assert_eq!(resolved.manifest.media_type, a.media_types.manifest());
    assert_eq!(resolved.config.bytes, a.config);
    assert_eq!(resolved.layers, a.layers);
    let mut layer = Vec::new();
    client
        .fetch_blob(app.repository(), &resolved.layers[1], &mut layer, |_| {})
        .await
        .unwrap();
    assert_eq!(layer, std::fs::read(&fx.app.blob).unwrap());

    // A second image on the same base, in another repository, with the base layer
    // known to come from the first: the base is mounted, not uploaded.
    let mut image2 = fx.image(&fx.app2);
    image2.layers[0].source_repo = Some(app.repository().clone());
    let a2 = assemble(&image2, &opts).unwrap();
    let other = reference(&registry, "kiln/other:1");
    let log = push_logged(&client, std::slice::from_ref(&other), &a2, &image2).await;
    assert_eq!(
        count(
            &log,
            |p| matches!(p, PushProgress::BlobMounted { digest, from, .. }
            if *digest == fx.base.descriptor.digest && from == app.repository())
        ),
        1,
        "{log:#?}"
    );
    assert_eq!(
        count(&log, |p| matches!(p, PushProgress::BlobUploaded { .. })),
        2,
        "app layer and config: {log:#?}"
    );

    // Into the first repository again: the shared base is skipped after a HEAD.
    let again = reference(&registry, "kiln/app:2");
    let log = push_logged(&client, std::slice::from_ref(&again), &a2, &image2).await;
    assert_eq!(
        count(
            &log,
            |p| matches!(p, PushProgress::BlobExists { digest, .. } if *digest == fx.base.descriptor.digest)
        ),
        1,
        "{log:#?}"
    );
    assert_eq!(
        count(&log, |p| matches!(p, PushProgress::BlobUploaded { .. })),
        2,
        "{log:#?}"
    );

    // Two names in one push: the second repository mounts everything from the first.
    let fresh_a = reference(&registry, "kiln/fresh-a:1");
    let fresh_b = reference(&registry, "kiln/fresh-b:1");
    let log = push_logged(&client, &[fresh_a.clone(), fresh_b.clone()], &a, &image).await;
    let for_b = |p: &PushProgress| match p {
        PushProgress::BlobMounted { target, .. }
        | PushProgress::BlobUploaded { target, .. }
        | PushProgress::BlobExists { target, .. } => *target == fresh_b,
        _ => false,
    };
    let b_events: Vec<&PushProgress> = log.iter().filter(|p| for_b(p)).collect();
    assert_eq!(b_events.len(), 3, "{log:#?}");
    assert!(
        b_events.iter().all(
            |p| matches!(p, PushProgress::BlobMounted { from, .. } if from == fresh_a.repository())
        ),
        "{log:#?}"
    );
    for name in [&fresh_a, &fresh_b] {
        let head = client.resolve_digest(name).await.unwrap();
        assert_eq!(head.digest, a.manifest_digest);
    }

    // Push by digest: a reference pinned to the manifest digest.
    let by_digest = Reference::with_digest(
        Repository::parse(&format!("{}/kiln/bydigest", registry.addr)).unwrap(),
        a.manifest_digest.clone(),
    );
    push_logged(&client, std::slice::from_ref(&by_digest), &a, &image).await;
    assert_eq!(
        client.resolve_digest(&by_digest).await.unwrap().digest,
        a.manifest_digest
    );
}

#[tokio::test]
async fn push_failures_name_the_reference() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let fx = Fixture::new();
    let client = Client::new(ClientConfig::default()).unwrap();
    let image = fx.image(&fx.app);
    let a = assemble(&image, &Default::default()).unwrap();

    // A layer blob that does not match its descriptor is refused before the upload
    // is committed; the error names the reference.
    let mut corrupt = image.clone();
    let bad = fx.path("bad");
    std::fs::write(&bad, b"not the layer").unwrap();
    corrupt.layers[1].blob = bad;
    let name = reference(&registry, "kiln/bad:1");
    let err = push(&client, std::slice::from_ref(&name), &a, &corrupt, |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("failed to push {name}")), "{err}");
    assert!(
        client.resolve_digest(&name).await.is_err(),
        "no manifest was pushed"
    );

    // A name pinned to another digest is refused.
    let wrong = Reference::with_digest(name.repository().clone(), fx.app.diff_id.clone());
    let err = push(&client, std::slice::from_ref(&wrong), &a, &image, |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&fx.app.diff_id.to_string()), "{err}");
}
