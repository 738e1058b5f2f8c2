//! Base image resolution against a fake registry that counts requests: a reference is
//! resolved once per build however many stages name it, and a tag resolved in an
//! earlier build costs one HEAD request when it still names the same image.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use kiln_graph::{Digest, Platform};
use kiln_registry::{Client, ClientConfig, Reference};
use kiln_store::Store;
use kiln_worker::Images;

/// What the fake registry serves and what it was asked.
#[derive(Default)]
struct Served {
    /// The manifest the tag names, and the config blob it points at.
    manifest: Vec<u8>,
    config: Vec<u8>,
    /// "METHOD path" of every request, in order.
    requests: Vec<String>,
}

fn image(label: &str) -> (Vec<u8>, Vec<u8>) {
    let layer = Digest::of(format!("layer {label}").as_bytes());
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [format!("LABEL={label}")]},
        "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": Digest::of(&config).to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer.to_string(),
            "size": 1024,
        }],
    }))
    .unwrap();
    (manifest, config)
}

/// Serves `/v2/test/img/manifests/latest` and its config blob over HTTP/1.1 with
/// keep-alive, on a thread per connection.
fn fake_registry(served: Arc<Mutex<Served>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let served = served.clone();
            std::thread::spawn(move || serve(stream, &served));
        }
    });
    addr
}

fn serve(stream: TcpStream, served: &Mutex<Served>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut body_len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                body_len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; body_len];
        let _ = reader.read_exact(&mut body);
        let (status, content_type, bytes) = {
            let mut s = served.lock().unwrap();
            s.requests.push(format!("{method} {path}"));
            let config_path = format!("/v2/test/img/blobs/{}", Digest::of(&s.config));
            if path == "/v2/" {
                ("200 OK", "application/json", b"{}".to_vec())
            } else if path == "/v2/test/img/manifests/latest"
                || path == format!("/v2/test/img/manifests/{}", Digest::of(&s.manifest))
            {
                (
                    "200 OK",
                    "application/vnd.oci.image.manifest.v1+json",
                    s.manifest.clone(),
                )
            } else if path == config_path {
                ("200 OK", "application/octet-stream", s.config.clone())
            } else {
                ("404 Not Found", "application/json", b"{}".to_vec())
            }
        };
        let digest = Digest::of(&bytes);
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nDocker-Content-Digest: {digest}\r\n\r\n",
            bytes.len()
        );
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        if method != "HEAD" && out.write_all(&bytes).is_err() {
            return;
        }
    }
}

fn requests_since(served: &Mutex<Served>, from: usize) -> Vec<String> {
    served.lock().unwrap().requests[from..]
        .iter()
        .filter(|r| r.as_str() != "GET /v2/")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_tag_is_resolved_once_per_build_and_then_with_one_head() {
    let (manifest, config) = image("one");
    let served = Arc::new(Mutex::new(Served {
        manifest,
        config,
        requests: Vec::new(),
    }));
    let addr = fake_registry(served.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let client = Client::new(ClientConfig::default()).unwrap();
    let reference = Reference::parse(&format!("{addr}/test/img:latest")).unwrap();
    let platform: Platform = "linux/amd64".parse().unwrap();

    // First build: three stages name the image; the registry is asked once.
    let images = Images::new(store.clone(), client.clone());
    let mut pinned = Vec::new();
    for _ in 0..3 {
        let img = images.resolve(&reference, &platform, true).await.unwrap();
        assert_eq!(img.config.config.env, vec!["LABEL=one".to_string()]);
        pinned.push(img.reference.to_string());
    }
    assert!(pinned.iter().all(|p| p == &pinned[0]), "{pinned:?}");
    let first = requests_since(&served, 0);
    assert_eq!(
        first.iter().filter(|r| r.contains("/manifests/")).count(),
        1,
        "{first:?}"
    );

    // Next build, nothing changed: one HEAD, nothing fetched, the same pinned name.
    let mark = served.lock().unwrap().requests.len();
    let images = Images::new(store.clone(), client.clone());
    let img = images.resolve(&reference, &platform, true).await.unwrap();
    assert_eq!(img.reference.to_string(), pinned[0]);
    assert_eq!(img.config.config.env, vec!["LABEL=one".to_string()]);
    assert_eq!(img.layers.len(), 1);
    assert_eq!(
        requests_since(&served, mark),
        vec!["HEAD /v2/test/img/manifests/latest".to_string()]
    );

    // The tag moves: the HEAD sees it and the new image is fetched.
    let (manifest, config) = image("two");
    {
        let mut s = served.lock().unwrap();
        s.manifest = manifest;
        s.config = config;
    }
    let mark = served.lock().unwrap().requests.len();
    let images = Images::new(store.clone(), client.clone());
    let img = images.resolve(&reference, &platform, true).await.unwrap();
    assert_eq!(img.config.config.env, vec!["LABEL=two".to_string()]);
    assert_ne!(img.reference.to_string(), pinned[0]);
    let after = requests_since(&served, mark);
    assert_eq!(
        after.first().map(String::as_str),
        Some("HEAD /v2/test/img/manifests/latest")
    );
    assert!(
        after
            .iter()
            .any(|r| r.starts_with("GET /v2/test/img/blobs/")),
        "{after:?}"
    );
}
