//! Interoperability with other tar implementations: GNU tar and Python's
//! `tarfile` read kiln's layers as intended, and kiln extracts what they write.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::*;
use kiln_layer::{ExtractOptions, LayerOptions, extract_layer, write_layer};

fn rich_layer() -> (tempfile::TempDir, Vec<u8>) {
    let src = tempfile::tempdir().unwrap();
    rich_tree(src.path());
    let mut tar = Vec::new();
    write_layer(src.path(), &mut tar, &LayerOptions::default()).unwrap();
    (src, tar)
}

#[test]
fn gnu_tar_lists_entries_in_layer_order_with_links_and_whiteouts() {
    let (_src, tar) = rich_layer();
    let names =
        String::from_utf8(run("tar", &["--quoting-style=literal", "-tf", "-"], &tar)).unwrap();
    let long_dir = format!("usr/share/{}/", "d".repeat(120));
    let split_dir = format!("usr/share/doc/{}/", "p".repeat(80));
    let expected = [
        "dev/",
        "dev/initctl",
        "dev/loop0",
        "dev/null",
        "empty",
        "emptydir/",
        "etc/",
        "etc/.wh.motd",
        "etc/hosts",
        "etc/localtime",
        "etc/shadow",
        "home/",
        "home/big-ids",
        "tmp/",
        "usr/",
        "usr/bin/",
        "usr/bin/a-python",
        "usr/bin/ping",
        "usr/bin/python",
        "usr/bin/python3",
        "usr/bin/python3.12",
        "usr/bin/sudo",
        "usr/bin/wall",
        "usr/share/",
        "usr/share/caf\u{e9}-\u{1f600}.txt",
        &long_dir,
        &format!("{long_dir}{}", "f".repeat(150)),
        "usr/share/doc/",
        &split_dir,
        &format!("{split_dir}{}", "c".repeat(40)),
        "usr/share/long-link",
        "var/",
        "var/cache/",
        "var/cache/apt/",
        "var/cache/apt/.wh..wh..opq",
        "var/cache/apt/new",
    ];
    let got: Vec<&str> = names.lines().collect();
    assert_eq!(got, expected);

    let verbose = String::from_utf8(run(
        "tar",
        &[
            "--quoting-style=literal",
            "--utc",
            "--numeric-owner",
            "-tvf",
            "-",
        ],
        &tar,
    ))
    .unwrap();
    let line = |name: &str| {
        verbose
            .lines()
            .find(|l| l.ends_with(name) || l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("{name} not listed:\n{verbose}"))
            .to_string()
    };
    assert!(line("usr/bin/python3 link to usr/bin/a-python").starts_with("hrwxr-xr-x 0/0"));
    assert!(line("usr/bin/python3.12 link to usr/bin/a-python").starts_with('h'));
    assert!(line("usr/bin/python -> python3").starts_with("lrwxrwxrwx 0/0"));
    assert!(line("usr/bin/sudo").starts_with("-rwsr-xr-x 0/0"));
    assert!(line("usr/bin/wall").starts_with("-rwxr-sr-x 0/0"));
    assert!(line("tmp/").starts_with("drwxrwxrwt 0/0"));
    assert!(line("dev/null").starts_with("crw-rw-rw- 0/0") && line("dev/null").contains("1,3"));
    assert!(line("dev/loop0").starts_with("brw-rw---- 0/0") && line("dev/loop0").contains("7,0"));
    assert!(line("dev/initctl").starts_with("prw------- 0/0"));
    assert!(line("etc/shadow").starts_with("-rw-r----- 0/42"));
    assert!(line("home/big-ids").starts_with("-rw------- 3000000/4000000"));
    assert!(line("etc/hosts").contains(" 2023-11-14 22:13 "));
    let whiteout = line("etc/.wh.motd");
    assert!(
        whiteout.starts_with("---------- 0/0") && whiteout.contains(" 1970-01-01 00:00 "),
        "{whiteout}"
    );
}

/// Re-encodes every header of a tar on stdin with Go's `archive/tar` as
/// containerd's writer configures it (PAX format, whole seconds, no
/// atime/ctime), keeping only the xattr records so Go decides by itself where
/// PAX or the USTAR prefix is needed.
const GO_REWRITER: &str = r#"
package main

import (
	"archive/tar"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	r := tar.NewReader(os.Stdin)
	w := tar.NewWriter(os.Stdout)
	for {
		hdr, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		records := map[string]string{}
		for k, v := range hdr.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				records[k] = v
			}
		}
		hdr.PAXRecords = records
		hdr.Xattrs = nil
		hdr.Format = tar.FormatPAX
		hdr.ModTime = hdr.ModTime.Truncate(time.Second)
		hdr.AccessTime = time.Time{}
		hdr.ChangeTime = time.Time{}
		if err := w.WriteHeader(hdr); err != nil {
			panic(err)
		}
		if _, err := io.Copy(w, r); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
}
"#;

#[test]
fn go_archive_tar_encodes_kiln_headers_to_the_same_bytes() {
    let (_src, tar) = rich_layer();
    let build = tempfile::tempdir().unwrap();
    fs::write(build.path().join("main.go"), GO_REWRITER).unwrap();
    fs::write(build.path().join("go.mod"), "module rewriter\n\ngo 1.19\n").unwrap();
    let binary = build.path().join("rewriter");
    let status = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(build.path())
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .status()
        .unwrap_or_else(|e| panic!("this test needs the Go toolchain (`go`) on PATH: {e}"));
    assert!(status.success(), "go build failed");
    let rewritten = run(binary.to_str().unwrap(), &[], &tar);
    if rewritten != tar {
        let at = tar
            .iter()
            .zip(&rewritten)
            .position(|(a, b)| a != b)
            .unwrap_or(tar.len().min(rewritten.len()));
        let block = at / 512 * 512;
        panic!(
            "Go encodes differently from offset {at} (block at {block}):\nkiln {:?}\ngo   {:?}",
            String::from_utf8_lossy(&tar[block..(block + 512).min(tar.len())]),
            String::from_utf8_lossy(&rewritten[block..(block + 512).min(rewritten.len())]),
        );
    }
}

#[test]
fn python_tarfile_sees_pax_records_xattrs_and_numeric_owners() {
    let (_src, tar) = rich_layer();
    let script = r#"
import sys, tarfile, io
t = tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()), mode="r:")
for m in t.getmembers():
    keys = ",".join(sorted(k for k in m.pax_headers))
    caps = m.pax_headers.get("SCHILY.xattr.security.capability", "")
    print(repr(m.name), m.type.decode(), oct(m.mode), m.uid, m.gid, repr(m.uname), m.mtime, m.size, repr(m.linkname), keys, len(caps), sep="|")
"#;
    let out = String::from_utf8(run("python3", &["-c", script], &tar)).unwrap();
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("'{name}'|")))
            .unwrap_or_else(|| panic!("{name} missing:\n{out}"))
            .to_string()
    };
    assert_eq!(
        row("usr/bin/ping"),
        "'usr/bin/ping'|0|0o755|0|0|''|1600000000|9|''|SCHILY.xattr.security.capability|20"
    );
    assert_eq!(
        row("home/big-ids"),
        "'home/big-ids'|0|0o600|3000000|4000000|''|1600000000|0|''|gid,uid|0"
    );
    assert!(row("usr/share/caf\u{e9}-\u{1f600}.txt").ends_with("|path|0"));
    let long = format!("usr/share/{}/{}", "d".repeat(120), "f".repeat(150));
    assert!(row(&long).ends_with("|path|0"));
    // Splittable: no PAX record, the USTAR prefix carries the directory.
    let split = format!("usr/share/doc/{}/{}", "p".repeat(80), "c".repeat(40));
    assert!(row(&split).ends_with("|5|''||0"), "{}", row(&split));
    assert!(row("usr/share/long-link").ends_with(&format!("|'{}'|linkpath|0", "../".repeat(60))));
    // The overlay origin xattr is not part of the layer; user.note is.
    assert!(
        row("etc/hosts").ends_with("|SCHILY.xattr.user.note|0"),
        "{}",
        row("etc/hosts")
    );
    assert!(row("usr/bin/python3").contains("|1|0o755|"));
    assert!(!out.contains("trusted.overlay"));
}

#[test]
fn gnu_tar_extracts_kiln_layers_like_kiln_does() {
    let (src, tar) = rich_layer();
    let gnu = tempfile::tempdir().unwrap();
    run(
        "tar",
        &[
            "-x",
            "-p",
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-f",
            "-",
            "-C",
            gnu.path().to_str().unwrap(),
        ],
        &tar,
    );
    let mut expected = snapshot(src.path(), false);
    let mut got = snapshot(gnu.path(), false);
    // GNU tar knows nothing of overlay: whiteouts stay files, opacity is lost.
    expected.remove("etc/motd");
    got.remove("etc/.wh.motd");
    got.remove("var/cache/apt/.wh..wh..opq");
    for meta in expected.values_mut() {
        meta.xattrs.retain(|k, _| !k.starts_with("trusted."));
    }
    assert_same_tree(&expected, &got);
}

#[test]
fn kiln_extracts_what_gnu_tar_writes_in_pax_and_gnu_formats() {
    let src = tempfile::tempdir().unwrap();
    rich_tree(src.path());
    // GNU tar would archive the overlay whiteout as a device; drop it, and the
    // overlay xattrs, which GNU tar writes as plain xattrs.
    fs::remove_file(src.path().join("etc/motd")).unwrap();
    // Apply mode refuses symlinks that climb out of the destination, as moby does.
    fs::remove_file(src.path().join("usr/share/long-link")).unwrap();
    rustix::fs::lremovexattr(src.path().join("var/cache/apt"), "trusted.overlay.opaque").unwrap();
    rustix::fs::lremovexattr(src.path().join("etc/hosts"), "trusted.overlay.origin").unwrap();
    set_all_mtimes(src.path(), 1_600_000_000);
    let expected = snapshot(src.path(), true);

    for format in ["posix", "gnu"] {
        let archive = run(
            "tar",
            &[
                "-c",
                &format!("--format={format}"),
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
                "-f",
                "-",
                "-C",
                src.path().to_str().unwrap(),
                ".",
            ],
            b"",
        );
        let compressed = run("xz", &["-c"], &archive);
        for mode in [ExtractOptions::layer(), ExtractOptions::apply()] {
            let dest = tempfile::tempdir().unwrap();
            let stats = extract_layer(&compressed[..], dest.path(), &mode).unwrap();
            assert_eq!(stats.diff_id.to_string(), sha256_hex(&archive));
            assert_eq!(stats.digest.to_string(), sha256_hex(&compressed));
            let mut got = snapshot(dest.path(), true);
            if format == "gnu" {
                // GNU format has no xattrs.
                let mut expected = expected.clone();
                expected.values_mut().for_each(|m| m.xattrs.clear());
                got.values_mut().for_each(|m| m.xattrs.clear());
                assert_same_tree(&expected, &got);
            } else {
                assert_same_tree(&expected, &got);
            }
        }
    }
}

#[test]
fn python_gnu_long_names_and_old_style_directories_extract() {
    let script = r#"
import sys, tarfile, io
buf = io.BytesIO()
t = tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT)
def add(name, type=tarfile.REGTYPE, data=b"", linkname=""):
    i = tarfile.TarInfo(name); i.type = type; i.size = len(data); i.linkname = linkname
    i.mtime = 1234567890; i.mode = 0o640
    t.addfile(i, io.BytesIO(data))
long = "x" * 200
add("olddir/", tarfile.AREGTYPE)
add("olddir/" + long, data=b"long name")
add("ln", tarfile.SYMTYPE, linkname="olddir/" + long)
add("hl", tarfile.LNKTYPE, linkname="olddir/" + long)
t.close()
sys.stdout.buffer.write(buf.getvalue())
"#;
    let archive = run("python3", &["-c", script], b"");
    let dest = tempfile::tempdir().unwrap();
    extract_layer(&archive[..], dest.path(), &ExtractOptions::layer()).unwrap();
    let long = dest.path().join("olddir").join("x".repeat(200));
    assert!(dest.path().join("olddir").is_dir());
    assert_eq!(fs::read(&long).unwrap(), b"long name");
    assert_eq!(
        fs::read_link(dest.path().join("ln")).unwrap(),
        std::path::Path::new("olddir").join("x".repeat(200))
    );
    let linked = fs::metadata(dest.path().join("hl")).unwrap();
    assert_eq!(linked.ino(), fs::metadata(&long).unwrap().ino());
    assert_eq!(fs::metadata(&long).unwrap().mtime(), 1_234_567_890);
}
