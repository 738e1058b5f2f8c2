//! Against registries that misbehave: a scripted HTTP server on loopback sends wrong
//! digests, short bodies, huge manifests, endless 401s, 5xx storms, silence.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use kiln_graph::Platform;
use kiln_registry::{
    Client, ClientConfig, Descriptor, ErrorKind, Reference, Repository, media_type,
};

fn fast_client() -> Client {
    Client::new(ClientConfig {
        retry_delay: Duration::from_millis(10),
        read_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    })
    .expect("client")
}

fn amd64() -> Platform {
    "linux/amd64".parse().expect("platform")
}

fn repo(server: &FakeServer) -> Repository {
    Repository::parse(&format!("{}/test/repo", server.registry())).expect("repository")
}

fn reference(server: &FakeServer, rest: &str) -> Reference {
    Reference::parse(&format!("{}/test/repo{rest}", server.registry())).expect("reference")
}

/// Serves one image by tag `latest` and by digest, with its blobs.
fn serve_image(image: &TestImage, request: &Request) -> Option<Reply> {
    let manifest_paths = [
        "/v2/test/repo/manifests/latest".to_string(),
        format!("/v2/test/repo/manifests/{}", image.manifest_desc.digest),
    ];
    if manifest_paths.iter().any(|p| p == request.path()) {
        return Some(
            Reply::body(200, media_type::OCI_MANIFEST, image.manifest.clone()).with_header(
                "Docker-Content-Digest",
                &image.manifest_desc.digest.to_string(),
            ),
        );
    }
    for (desc, bytes) in [
        (&image.config_desc, &image.config),
        (&image.layer_desc, &image.layer),
    ] {
        if request.path() == format!("/v2/test/repo/blobs/{}", desc.digest) {
            return Some(Reply::body(200, "application/octet-stream", bytes.clone()));
        }
    }
    None
}

#[tokio::test]
async fn blob_with_wrong_digest_is_an_error_and_never_flushed() {
    let image = TestImage::new("linux", "amd64", None, "real content\n");
    let mut forged = image.layer.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    let server =
        FakeServer::start(move |_| Reply::body(200, "application/octet-stream", forged.clone()))
            .await;
    let client = fast_client();
    let mut sink = RecordingSink::default();
    let err = client
        .fetch_blob(&repo(&server), &image.layer_desc, &mut sink, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent);
    let msg = err.to_string();
    let expected = format!(
        "blob {} from {}/test/repo has digest sha256:",
        image.layer_desc.digest,
        server.registry()
    );
    assert!(msg.contains(&expected), "{msg}");
    assert!(
        msg.ends_with(&format!("(expected {})", image.layer_desc.digest)),
        "{msg}"
    );
    assert!(
        !sink.flushed,
        "a bad blob must not be flushed as if complete"
    );

    // The same server with the right bytes: flushed.
    let good = image.layer.clone();
    let server =
        FakeServer::start(move |_| Reply::body(200, "application/octet-stream", good.clone()))
            .await;
    let mut sink = RecordingSink::default();
    client
        .fetch_blob(&repo(&server), &image.layer_desc, &mut sink, |_| {})
        .await
        .expect("good blob");
    assert!(sink.flushed);
    assert_eq!(sink.bytes, image.layer);
}

#[tokio::test]
async fn truncated_blobs_are_size_errors() {
    let blob = noise(100_000, 1);
    let desc = Descriptor::of(media_type::OCI_LAYER, &blob);
    let client = fast_client();

    // The registry announces and sends fewer bytes: refused before anything is written.
    let short = blob[..60_000].to_vec();
    let server =
        FakeServer::start(move |_| Reply::body(200, "application/octet-stream", short.clone()))
            .await;
    let mut sink = RecordingSink::default();
    let err = client
        .fetch_blob(&repo(&server), &desc, &mut sink, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent);
    assert!(
        err.to_string()
            .contains("has 60000 bytes (expected 100000)"),
        "{err}"
    );
    assert!(sink.bytes.is_empty());

    // The registry announces the full size and hangs up half way.
    let mut raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        blob.len()
    )
    .into_bytes();
    raw.extend_from_slice(&blob[..40_000]);
    let server = FakeServer::start(move |_| Reply::Raw(raw.clone())).await;
    let mut sink = RecordingSink::default();
    let err = client
        .fetch_blob(&repo(&server), &desc, &mut sink, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent, "{err}");
    assert!(err.to_string().contains("broke off after"), "{err}");
    assert!(!sink.flushed);

    // More bytes than the descriptor says: stopped as soon as it shows.
    let long = noise(150_000, 1);
    let server = FakeServer::start(move |_| {
        Reply::Raw(
            [
                b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".as_slice(),
                long.as_slice(),
            ]
            .concat(),
        )
    })
    .await;
    let err = client
        .fetch_blob(&repo(&server), &desc, &mut RecordingSink::default(), |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent, "{err}");
    assert!(err.to_string().contains("(expected 100000)"), "{err}");
}

#[tokio::test]
async fn oversize_manifests_are_refused() {
    let huge = format!(
        r#"{{"schemaVersion":2,"layers":[],"pad":"{}"}}"#,
        "x".repeat(5 << 20)
    )
    .into_bytes();
    let announced = huge.clone();
    let server =
        FakeServer::start(move |_| Reply::body(200, media_type::OCI_MANIFEST, announced.clone()))
            .await;
    let client = fast_client();
    let err = client
        .resolve(&reference(&server, ":latest"), &amd64())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent);
    assert!(
        err.to_string()
            .contains("larger than the limit of 4194304 bytes"),
        "{err}"
    );

    // Without a Content-Length (chunked), the limit applies while reading.
    let mut raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        media_type::OCI_MANIFEST,
        huge.len()
    )
    .into_bytes();
    raw.extend_from_slice(&huge);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    let server = FakeServer::start(move |_| Reply::Raw(raw.clone())).await;
    let err = client
        .resolve(&reference(&server, ":latest"), &amd64())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent);
    assert!(err.to_string().contains("larger than the limit"), "{err}");
}

#[tokio::test]
async fn manifest_must_match_the_pinned_digest() {
    let image = TestImage::new("linux", "amd64", None, "pinned\n");
    let other = TestImage::new("linux", "amd64", None, "swapped\n");
    let served = other.manifest.clone();
    let server =
        FakeServer::start(move |_| Reply::body(200, media_type::OCI_MANIFEST, served.clone()))
            .await;
    let client = fast_client();
    let pinned = reference(&server, &format!("@{}", image.manifest_desc.digest));
    let err = client.resolve(&pinned, &amd64()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent);
    assert!(
        err.to_string().ends_with(&format!(
            "has digest {} (expected {})",
            other.manifest_desc.digest, image.manifest_desc.digest
        )),
        "{err}"
    );
    // A tag whose Docker-Content-Digest disagrees with the bytes is refused too.
    let served = other.manifest.clone();
    let claimed = image.manifest_desc.digest.to_string();
    let server = FakeServer::start(move |_| {
        Reply::body(200, media_type::OCI_MANIFEST, served.clone())
            .with_header("Docker-Content-Digest", &claimed)
    })
    .await;
    let err = client
        .resolve(&reference(&server, ":latest"), &amd64())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent, "{err}");
}

#[tokio::test]
async fn index_without_the_platform_lists_what_it_has() {
    let a = TestImage::new("linux", "amd64", None, "a\n");
    let b = TestImage::new("linux", "arm", Some("v7"), "b\n");
    let index = index_of(&[a.manifest_desc.clone(), b.manifest_desc.clone()]);
    let server =
        FakeServer::start(move |_| Reply::body(200, media_type::OCI_INDEX, index.clone())).await;
    let client = fast_client();
    let wanted: Platform = "linux/riscv64".parse().unwrap();
    let err = client
        .resolve(&reference(&server, ":latest"), &wanted)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMatchingPlatform);
    assert!(
        err.to_string().ends_with(&format!(
            "no image for platform linux/riscv64 in {}/test/repo:latest (available: linux/amd64, linux/arm/v7)",
            server.registry()
        )),
        "{err}"
    );
    // Nothing but the index was fetched.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn endless_401_is_unauthorized_after_one_token() {
    let server_addr = Arc::new(std::sync::OnceLock::<String>::new());
    let addr_for_handler = server_addr.clone();
    let server = FakeServer::start(move |request| {
        let me = addr_for_handler.get().cloned().unwrap_or_default();
        if request.path() == "/token" {
            return Reply::body(200, "application/json", br#"{"token":"useless"}"#.to_vec());
        }
        Reply::Full {
            status: 401,
            headers: vec![
                (
                    "WWW-Authenticate".into(),
                    format!(r#"Bearer realm="http://{me}/token",service="fake""#),
                ),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                .to_vec(),
        }
    })
    .await;
    server_addr.set(server.registry()).unwrap();
    let client = fast_client();
    let err = client
        .resolve(&reference(&server, ":latest"), &amd64())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "registry {} refused GET manifest latest",
            server.registry()
        )),
        "{msg}"
    );
    assert!(
        msg.contains("401 Unauthorized: authentication required"),
        "{msg}"
    );
    assert_eq!(server.count("GET", "/token"), 1);
    assert_eq!(server.count("GET", "/v2/"), 2);
}

#[tokio::test]
async fn bearer_tokens_are_fetched_with_credentials_and_reused() {
    let server_addr = Arc::new(std::sync::OnceLock::<String>::new());
    let addr_for_handler = server_addr.clone();
    let image = TestImage::new("linux", "amd64", None, "token\n");
    let served = TestImage::new("linux", "amd64", None, "token\n");
    let server = FakeServer::start(move |request| {
        let me = addr_for_handler.get().cloned().unwrap_or_default();
        if request.path() == "/token" {
            // alice:wonder
            if request.header("authorization") != Some("Basic YWxpY2U6d29uZGVy") {
                return Reply::status(401);
            }
            return Reply::body(200, "application/json", br#"{"access_token":"T0K3N","expires_in":300}"#.to_vec());
        }
        if request.header("authorization") != Some("Bearer T0K3N") {
            return Reply::status(401).with_header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="http://{me}/token",service="fake",scope="repository:test/repo:pull""#),
            );
        }
        serve_image(&served, request).unwrap_or_else(|| Reply::status(404))
    })
    .await;
    server_addr.set(server.registry()).unwrap();
    let dir = docker_config_dir(&format!(
        r#"{{"auths": {{"{}": {{"username": "alice", "password": "wonder"}}}}}}"#,
        server.registry()
    ));
    let client = Client::new(ClientConfig {
        credentials: kiln_registry::DockerConfig::load_dir(dir.path()).unwrap(),
        retry_delay: Duration::from_millis(10),
        ..ClientConfig::default()
    })
    .unwrap();
    let got = client
        .resolve(&reference(&server, ":latest"), &amd64())
        .await
        .expect("resolve with a token");
    assert_eq!(got.manifest_digest, image.manifest_desc.digest);
    let mut layer = Vec::new();
    client
        .fetch_blob(&repo(&server), &image.layer_desc, &mut layer, |_| {})
        .await
        .unwrap();
    assert_eq!(layer, image.layer);
    // One token for the repository's pull scope, asked for with the service and scope.
    let tokens: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/token")
        .collect();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(
        tokens[0].target.contains("service=fake"),
        "{}",
        tokens[0].target
    );
    assert!(
        tokens[0]
            .target
            .contains("scope=repository%3Atest%2Frepo%3Apull"),
        "{}",
        tokens[0].target
    );
    // Only the first request went without the token.
    let unauthenticated = server
        .requests()
        .iter()
        .filter(|r| r.path().starts_with("/v2/") && r.header("authorization").is_none())
        .count();
    assert_eq!(unauthenticated, 1);

    // Without credentials the token service refuses, and the error says so.
    let anonymous = fast_client();
    let err = anonymous
        .resolve(&reference(&server, ":latest"), &amd64())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(err.to_string().contains("token request"), "{err}");
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let image = TestImage::new("linux", "amd64", None, "flaky\n");
    let failures = Arc::new(AtomicUsize::new(0));
    let counter = failures.clone();
    let server = FakeServer::start(move |request| {
        if request.path() == "/v2/test/repo/manifests/latest"
            && counter.fetch_add(1, Ordering::SeqCst) < 2
        {
            return if counter.load(Ordering::SeqCst) == 1 {
                Reply::status(500)
            } else {
                Reply::status(429).with_header("Retry-After", "0")
            };
        }
        serve_image(&image, request).unwrap_or_else(|| Reply::status(404))
    })
    .await;
    let client = fast_client();
    client
        .resolve(&reference(&server, ":latest"), &amd64())
        .await
        .expect("third time lucky");
    assert_eq!(server.count("GET", "/v2/test/repo/manifests/latest"), 3);

    let server = FakeServer::start(|_| {
        Reply::body(
            503,
            "application/json",
            br#"{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}"#.to_vec(),
        )
    })
    .await;
    let err = client
        .resolve(&reference(&server, ":latest"), &amd64())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Registry);
    assert!(
        err.to_string()
            .contains("503 Service Unavailable: try later"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 4, "one try and three retries");
}

#[tokio::test]
async fn connection_refused_names_host_and_port() {
    let port = free_port();
    let client = fast_client();
    let reference = Reference::parse(&format!("127.0.0.1:{port}/testbed/busybox:latest")).unwrap();
    let err = client.resolve(&reference, &amd64()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    assert_eq!(
        err.to_string(),
        format!(
            "failed to resolve 127.0.0.1:{port}/testbed/busybox:latest: cannot connect to registry 127.0.0.1:{port}: Connection refused"
        )
    );
}

#[tokio::test]
async fn a_silent_registry_hits_the_timeout() {
    let server = FakeServer::start(|_| Reply::Hang(Duration::from_secs(30))).await;
    let client = Client::new(ClientConfig {
        read_timeout: Duration::from_millis(300),
        retry_delay: Duration::from_millis(10),
        ..ClientConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let err = client
        .resolve(&reference(&server, ":latest"), &amd64())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string()
            .contains("did not answer GET manifest latest"),
        "{err}"
    );
    assert!(err.to_string().contains("within 300ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn schema1_manifests_are_rejected_clearly() {
    let schema1 = br#"{"schemaVersion":1,"name":"test/repo","tag":"latest","architecture":"amd64","fsLayers":[],"history":[]}"#;
    let server = FakeServer::start(move |_| {
        Reply::body(200, media_type::DOCKER_SCHEMA1_SIGNED, schema1.to_vec())
    })
    .await;
    let err = fast_client()
        .resolve(&reference(&server, ":latest"), &amd64())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("Docker schema 1"), "{err}");
}

#[tokio::test]
async fn blob_redirects_are_followed_without_leaking_credentials() {
    let blob = noise(10_000, 3);
    let desc = Descriptor::of(media_type::OCI_LAYER, &blob);
    let stored = blob.clone();
    let storage =
        FakeServer::start(move |_| Reply::body(200, "application/octet-stream", stored.clone()))
            .await;
    let storage_url = format!("http://{}/bucket/object?sig=abc", storage.registry());
    let registry = FakeServer::start(move |request| {
        if request.header("authorization").is_none() {
            return Reply::status(401).with_header("WWW-Authenticate", r#"Basic realm="fake""#);
        }
        Reply::status(307).with_header("Location", &storage_url)
    })
    .await;
    let dir = docker_config_dir(&format!(
        r#"{{"auths": {{"{}": {{"username": "u", "password": "p"}}}}}}"#,
        registry.registry()
    ));
    let client = Client::new(ClientConfig {
        credentials: kiln_registry::DockerConfig::load_dir(dir.path()).unwrap(),
        ..ClientConfig::default()
    })
    .unwrap();
    let mut out = Vec::new();
    client
        .fetch_blob(&repo(&registry), &desc, &mut out, |_| {})
        .await
        .expect("redirected blob");
    assert_eq!(out, blob);
    let at_storage = storage.requests();
    assert_eq!(at_storage.len(), 1);
    assert_eq!(at_storage[0].target, "/bucket/object?sig=abc");
    assert_eq!(
        at_storage[0].header("authorization"),
        None,
        "credentials leaked to storage"
    );
}

#[tokio::test]
async fn uploads_follow_relative_and_absolute_locations() {
    let server_addr = Arc::new(std::sync::OnceLock::<String>::new());
    let addr_for_handler = server_addr.clone();
    let patches = Arc::new(AtomicUsize::new(0));
    let patch_count = patches.clone();
    let server = FakeServer::start(move |request| {
        let me = addr_for_handler.get().cloned().unwrap_or_default();
        match (request.method.as_str(), request.path()) {
            ("POST", "/v2/test/repo/blobs/uploads/") => {
                Reply::status(202).with_header("Location", "/upload/s1?_state=one")
            }
            ("PATCH", "/upload/s1") => {
                let n = patch_count.fetch_add(1, Ordering::SeqCst) + 1;
                // Absolute, then relative, Locations.
                let next = if n % 2 == 1 {
                    format!("http://{me}/upload/s1?_state=p{n}")
                } else {
                    format!("/upload/s1?_state=p{n}")
                };
                Reply::status(202).with_header("Location", &next)
            }
            ("PUT", "/upload/s1") => Reply::status(201),
            _ => Reply::status(404),
        }
    })
    .await;
    server_addr.set(server.registry()).unwrap();
    let client = Client::new(ClientConfig {
        upload_chunk_size: 4096,
        ..ClientConfig::default()
    })
    .unwrap();
    let blob = noise(10_000, 9);
    let desc = Descriptor::of(media_type::OCI_LAYER, &blob);
    client
        .push_blob(&repo(&server), &desc, &mut blob.as_slice(), |_| {})
        .await
        .expect("chunked upload");
    let requests = server.requests();
    let patches: Vec<&Request> = requests.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 3);
    assert_eq!(patches[0].target, "/upload/s1?_state=one");
    assert_eq!(patches[1].target, "/upload/s1?_state=p1");
    assert_eq!(patches[2].target, "/upload/s1?_state=p2");
    let ranges: Vec<_> = patches
        .iter()
        .map(|r| r.header("content-range").unwrap_or_default().to_string())
        .collect();
    assert_eq!(ranges, ["0-4095", "4096-8191", "8192-9999"]);
    let body: Vec<u8> = patches.iter().flat_map(|r| r.body.clone()).collect();
    assert_eq!(body, blob);
    let put = requests
        .iter()
        .find(|r| r.method == "PUT")
        .expect("closing PUT");
    assert_eq!(
        put.target,
        format!(
            "/upload/s1?_state=p3&digest={}",
            desc.digest.to_string().replace(':', "%3A")
        )
    );
    assert!(put.body.is_empty());
}

/// A registry whose token service hands out a token naming the scopes it was asked for.
async fn token_server() -> FakeServer {
    let server_addr = Arc::new(std::sync::OnceLock::<String>::new());
    let addr_for_handler = server_addr.clone();
    let server = FakeServer::start(move |request| {
        let me = addr_for_handler.get().cloned().unwrap_or_default();
        if request.path() == "/token" {
            return Reply::body(200, "application/json", br#"{"token":"scoped"}"#.to_vec());
        }
        if request.header("authorization") != Some("Bearer scoped") {
            return Reply::status(401).with_header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="http://{me}/token",service="fake""#),
            );
        }
        match (request.method.as_str(), request.path()) {
            ("POST", "/v2/test/target/blobs/uploads/") => Reply::status(201),
            _ => Reply::status(404),
        }
    })
    .await;
    server_addr.set(server.registry()).unwrap();
    server
}

#[tokio::test]
async fn mounts_ask_for_push_on_the_target_and_pull_on_the_source() {
    let server = token_server().await;
    let client = fast_client();
    let target = Repository::parse(&format!("{}/test/target", server.registry())).unwrap();
    let source = Repository::parse(&format!("{}/test/source", server.registry())).unwrap();
    let digest = digest_of(b"layer");
    assert!(
        client
            .mount_blob(&target, &source, &digest)
            .await
            .expect("mount")
    );
    let token = server
        .requests()
        .into_iter()
        .find(|r| r.path() == "/token")
        .expect("token request");
    assert!(
        token
            .target
            .contains("scope=repository%3Atest%2Ftarget%3Apull%2Cpush"),
        "{}",
        token.target
    );
    assert!(
        token
            .target
            .contains("scope=repository%3Atest%2Fsource%3Apull"),
        "{}",
        token.target
    );
    let mount = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.header("authorization").is_some())
        .expect("authorized mount");
    assert_eq!(
        mount.target,
        format!(
            "/v2/test/target/blobs/uploads/?mount={}&from=test%2Fsource",
            digest.to_string().replace(':', "%3A")
        )
    );
}

#[tokio::test]
async fn identity_tokens_are_traded_through_the_oauth_refresh_grant() {
    let server_addr = Arc::new(std::sync::OnceLock::<String>::new());
    let addr_for_handler = server_addr.clone();
    let image = TestImage::new("linux", "amd64", None, "oauth\n");
    let served = TestImage::new("linux", "amd64", None, "oauth\n");
    let server = FakeServer::start(move |request| {
        let me = addr_for_handler.get().cloned().unwrap_or_default();
        if request.path() == "/oauth/token" {
            let form = String::from_utf8_lossy(&request.body).into_owned();
            let ok = request.method == "POST"
                && form.contains("grant_type=refresh_token")
                && form.contains("refresh_token=my-refresh-token")
                && form.contains("scope=repository%3Atest%2Frepo%3Apull");
            return if ok {
                Reply::body(
                    200,
                    "application/json",
                    br#"{"access_token":"from-refresh","expires_in":120}"#.to_vec(),
                )
            } else {
                Reply::status(401)
            };
        }
        if request.header("authorization") != Some("Bearer from-refresh") {
            return Reply::status(401).with_header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="http://{me}/oauth/token",service="fake""#),
            );
        }
        serve_image(&served, request).unwrap_or_else(|| Reply::status(404))
    })
    .await;
    server_addr.set(server.registry()).unwrap();
    let dir = docker_config_dir(&format!(
        r#"{{"auths": {{"{}": {{"identitytoken": "my-refresh-token"}}}}}}"#,
        server.registry()
    ));
    let client = Client::new(ClientConfig {
        credentials: kiln_registry::DockerConfig::load_dir(dir.path()).unwrap(),
        ..ClientConfig::default()
    })
    .unwrap();
    let got = client
        .resolve(&reference(&server, ":latest"), &amd64())
        .await
        .expect("resolve with an identity token");
    assert_eq!(got.manifest_digest, image.manifest_desc.digest);
    assert_eq!(server.count("POST", "/oauth/token"), 1);
}
