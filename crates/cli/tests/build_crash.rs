//! Crash safety: `kill -9` a build of a largish context at random moments, again
//! and again in one state directory; the output path never holds a half-written
//! image; then a normal build there succeeds, gives the bytes a fresh state
//! directory gives, leaves the store clean and removes the temporaries the killed
//! builds left beside the output.

mod common;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{BUSYBOX, Context, State, ready, text};

/// xorshift64*: enough randomness to pick kill moments, from a seed the test prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [lo, hi).
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = (hi - lo).as_micros().max(1) as u64;
        lo + Duration::from_micros(self.next() % span)
    }
}

/// 1500 files of 8 KiB (pseudo-random, so they compress like real data), in 30
/// directories, copied and then read by RUN steps.
fn large_context() -> Context {
    let ctx = Context::new(
        &format!(
            "FROM {BUSYBOX}\nCOPY . /app\nRUN find /app -type f | sort | xargs md5sum > /sums\nRUN wc -l /sums > /count\n"
        ),
        &[],
    );
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for d in 0..30 {
        let dir = ctx.path().join(format!("dir{d:02}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..50 {
            let data: Vec<u8> = (0..1024).flat_map(|_| rng.next().to_le_bytes()).collect();
            std::fs::write(dir.join(format!("file{f:02}.bin")), data).unwrap();
        }
    }
    ctx
}

/// The build every run makes: a reproducible OCI tarball.
fn build_args(dest: &std::path::Path, ctx: &Context) -> Vec<String> {
    vec![
        "build".into(),
        "--progress".into(),
        "plain".into(),
        "-o".into(),
        format!("type=oci,dest={},rewrite-timestamp=true", dest.display()),
        ctx.arg().into(),
    ]
}

fn build(state: &State, dest: &std::path::Path, ctx: &Context) -> Output {
    state
        .kiln()
        .args(build_args(dest, ctx))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .stdin(Stdio::null())
        .output()
        .expect("run kiln")
}

/// The exporter's temporaries in `dir`.
fn temporaries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("kiln-tmp"))
        .collect()
}

#[test]
fn builds_killed_at_random_moments_leave_a_usable_store() {
    if !ready("builds_killed_at_random_moments_leave_a_usable_store") {
        return;
    }
    let ctx = large_context();
    let out = tempfile::tempdir().unwrap();

    // The reference: a fresh state directory, built once, timed.
    let fresh = State::new();
    let reference = out.path().join("reference.tar");
    let started = Instant::now();
    let o = build(&fresh, &reference, &ctx);
    assert!(o.status.success(), "{}", text(&o));
    let full = started.elapsed();
    let reference = std::fs::read(&reference).unwrap();

    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    eprintln!("kill moments from seed {seed:#x}; a full build takes {full:?}");
    let mut rng = Rng(seed);
    let mut killed_running = 0;
    let crashed = State::new();
    let dest = out.path().join("crashed.tar");
    for round in 0..10 {
        // Once some of it is cached a build is quick: every other round re-runs
        // every step, so the kills land in pulls, copies, RUN steps and exports.
        let no_cache = round % 2 == 1;
        let at = rng.between(full / 20, full);
        let mut args = build_args(&dest, &ctx);
        if no_cache {
            args.insert(1, "--no-cache".into());
        }
        let mut child = crashed
            .kiln()
            .args(args)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kiln");
        std::thread::sleep(at);
        let finished = child.try_wait().expect("poll kiln").is_some();
        killed_running += usize::from(!finished);
        child.kill().expect("kill -9 kiln");
        let status = child.wait().expect("reap kiln");
        eprintln!(
            "round {round}: killed after {at:?} (no-cache: {no_cache}, finished first: {finished}, {status})"
        );
        // Whatever the moment, nothing half-written is at the destination: either
        // the whole image or nothing.
        if let Ok(bytes) = std::fs::read(&dest) {
            assert!(bytes == reference, "round {round}: a half-written output");
        }
        eprintln!(
            "round {round}: temporaries left beside the output: {:?}",
            temporaries(out.path())
        );
    }
    // A killed writer's temporary is taken for dead once nobody holds its lock
    // and it has not been touched for a moment.
    std::thread::sleep(Duration::from_millis(2500));

    assert!(killed_running > 0, "every build finished before its kill");
    let o = build(&crashed, &dest, &ctx);
    assert!(o.status.success(), "after the crashes: {}", text(&o));
    assert!(
        std::fs::read(&dest).unwrap() == reference,
        "the build after the crashes differs from a fresh one"
    );
    crashed.assert_clean();
    assert_eq!(temporaries(out.path()), Vec::<String>::new());
    // And again: now every step comes from the cache.
    let o = build(&crashed, &dest, &ctx);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr)
            .matches(" CACHED")
            .count(),
        3
    );
    assert!(std::fs::read(&dest).unwrap() == reference);
    crashed.assert_clean();
    fresh.assert_clean();
}
