//! Progress renderers: plain lines like `docker buildx build --progress=plain`, a live
//! terminal view, and one JSON object per event for programs. The solver and the
//! exporters only send events; this module alone prints them.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use kiln_graph::Digest;
use kiln_solver::Event;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::args::ProgressMode;

/// Chooses the renderer for a mode (`auto`: the live view on a terminal).
pub fn resolve_mode(mode: ProgressMode) -> ProgressMode {
    match mode {
        ProgressMode::Auto => {
            if std::io::stderr().is_terminal() {
                ProgressMode::Tty
            } else {
                ProgressMode::Plain
            }
        }
        m => m,
    }
}

/// Reads events until the channel closes and renders them to stderr.
pub async fn render(mode: ProgressMode, mut rx: UnboundedReceiver<Event>) {
    match resolve_mode(mode) {
        ProgressMode::Quiet => while rx.recv().await.is_some() {},
        ProgressMode::Rawjson => {
            while let Some(e) = rx.recv().await {
                if let Ok(line) = serde_json::to_string(&e) {
                    eprintln!("{line}");
                }
            }
        }
        ProgressMode::Tty => {
            let width = rustix::termios::tcgetwinsize(std::io::stderr())
                .map(|w| w.ws_col as usize)
                .unwrap_or(100);
            let mut tty = TtyRenderer::new(std::io::stderr(), width);
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    e = rx.recv() => match e {
                        Some(e) => tty.handle(e),
                        None => break,
                    },
                    _ = tick.tick() => tty.draw(),
                }
            }
            tty.finish();
        }
        _ => {
            let mut plain = PlainRenderer::new(std::io::stderr());
            while let Some(e) = rx.recv().await {
                plain.handle(e);
            }
            plain.finish();
        }
    }
}

struct VertexState {
    number: usize,
    started: Instant,
    cached: bool,
    done: bool,
    partial_line: String,
}

/// BuildKit's plain format:
///
/// ```text
/// #3 [2/3] COPY a.txt /a
/// #3 DONE 0.1s
///
/// #4 [3/3] RUN make
/// #4 0.512 compiling...
/// #4 CACHED
/// ```
pub struct PlainRenderer<W: Write> {
    out: W,
    next: usize,
    vertices: HashMap<Digest, VertexState>,
    last: Option<Digest>,
}

impl<W: Write> PlainRenderer<W> {
    pub fn new(out: W) -> Self {
        PlainRenderer {
            out,
            next: 1,
            vertices: HashMap::new(),
            last: None,
        }
    }

    /// Prints the `#N name` header again when output switches between vertices.
    fn switch_to(&mut self, d: &Digest, name: Option<&str>) {
        if self.last.as_ref() == Some(d) {
            return;
        }
        if self.last.is_some() {
            let _ = writeln!(self.out);
        }
        self.last = Some(d.clone());
        if let (Some(v), Some(name)) = (self.vertices.get(d), name) {
            let _ = writeln!(self.out, "#{} {}", v.number, name);
        }
    }

    pub fn handle(&mut self, e: Event) {
        match e {
            Event::Started { vertex, name, .. } => {
                if self.vertices.contains_key(&vertex) {
                    return;
                }
                self.vertices.insert(
                    vertex.clone(),
                    VertexState {
                        number: self.next,
                        started: Instant::now(),
                        cached: false,
                        done: false,
                        partial_line: String::new(),
                    },
                );
                self.next += 1;
                self.switch_to(&vertex, Some(&name));
            }
            Event::Cached { vertex } => {
                self.switch_to(&vertex, None);
                if let Some(v) = self.vertices.get_mut(&vertex) {
                    v.cached = true;
                    let _ = writeln!(self.out, "#{} CACHED", v.number);
                }
            }
            Event::Miss { vertex, reason } => {
                // kiln's addition to BuildKit's format: why a step that ran before missed.
                if reason != kiln_solver::FIRST_BUILD {
                    self.switch_to(&vertex, None);
                    if let Some(v) = self.vertices.get(&vertex) {
                        let _ = writeln!(self.out, "#{} cache miss: {reason}", v.number);
                    }
                }
            }
            Event::Log {
                vertex,
                stream: _,
                data,
            } => {
                self.switch_to(&vertex, None);
                if let Some(v) = self.vertices.get_mut(&vertex) {
                    let elapsed = v.started.elapsed().as_secs_f64();
                    v.partial_line.push_str(&data);
                    while let Some(pos) = v.partial_line.find('\n') {
                        let line: String = v.partial_line.drain(..=pos).collect();
                        let _ = writeln!(
                            self.out,
                            "#{} {elapsed:.3} {}",
                            v.number,
                            line.trim_end_matches('\n')
                        );
                    }
                }
            }
            Event::Status {
                vertex,
                id,
                current,
                total,
                done,
            } => {
                if !done {
                    return;
                }
                self.switch_to(&vertex, None);
                if let Some(v) = self.vertices.get(&vertex) {
                    let amount = match total {
                        Some(t) => format!(" {} / {}", human_bytes(current), human_bytes(t)),
                        None if current > 0 => format!(" {}", human_bytes(current)),
                        None => String::new(),
                    };
                    let _ = writeln!(self.out, "#{} {id}{amount} done", v.number);
                }
            }
            Event::Completed {
                vertex,
                duration,
                error,
            } => {
                self.switch_to(&vertex, None);
                if let Some(v) = self.vertices.get_mut(&vertex) {
                    v.done = true;
                    if !v.partial_line.is_empty() {
                        let line = std::mem::take(&mut v.partial_line);
                        let _ = writeln!(
                            self.out,
                            "#{} {:.3} {line}",
                            v.number,
                            v.started.elapsed().as_secs_f64()
                        );
                    }
                    match error {
                        Some(err) => {
                            let _ = writeln!(self.out, "#{} ERROR: {err}", v.number);
                        }
                        None if !v.cached => {
                            let _ = writeln!(
                                self.out,
                                "#{} DONE {:.1}s",
                                v.number,
                                duration.as_secs_f64()
                            );
                        }
                        None => {}
                    }
                }
            }
        }
        let _ = self.out.flush();
    }
}

impl<W: Write> PlainRenderer<W> {
    /// Marks steps that started but never finished (the build failed elsewhere).
    pub fn finish(&mut self) {
        let mut open: Vec<(usize, Digest)> = self
            .vertices
            .iter()
            .filter(|(_, v)| !v.done)
            .map(|(d, v)| (v.number, d.clone()))
            .collect();
        open.sort();
        for (n, d) in open {
            self.switch_to(&d, None);
            let _ = writeln!(self.out, "#{n} CANCELED");
        }
        let _ = self.out.flush();
    }
}

/// `1.5MB` style sizes, as BuildKit prints them (decimal units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", UNITS[u])
    }
}

/// A live view for terminals: finished steps are printed once, above a block of the
/// running steps (name, elapsed time, latest output or transfer) redrawn in place.
struct TtyRenderer<W: Write> {
    out: W,
    width: usize,
    running: Vec<Running>,
    logs: HashMap<Digest, Vec<String>>,
    cached: HashMap<Digest, bool>,
    drawn: usize,
    started: Instant,
}

struct Running {
    vertex: Digest,
    name: String,
    since: Instant,
    detail: String,
}

impl<W: Write> TtyRenderer<W> {
    fn new(out: W, width: usize) -> Self {
        TtyRenderer {
            out,
            width: width.max(40),
            running: Vec::new(),
            logs: HashMap::new(),
            cached: HashMap::new(),
            drawn: 0,
            started: Instant::now(),
        }
    }

    /// Removes the running block drawn last.
    fn erase(&mut self) {
        for _ in 0..self.drawn {
            let _ = write!(self.out, "\x1b[1A\x1b[2K");
        }
        self.drawn = 0;
    }

    fn line(&self, text: &str) -> String {
        truncate(text, self.width.saturating_sub(1))
    }

    /// Draws the running block below what was printed.
    fn draw(&mut self) {
        self.erase();
        let header = format!(
            "[+] Building {:.1}s ({} running)",
            self.started.elapsed().as_secs_f64(),
            self.running.len()
        );
        let mut lines = vec![header];
        for r in &self.running {
            let mut l = format!(" => {} {:.1}s", r.name, r.since.elapsed().as_secs_f64());
            if !r.detail.is_empty() {
                l.push_str("  ");
                l.push_str(&r.detail);
            }
            lines.push(l);
        }
        for l in &lines {
            let l = self.line(l);
            let _ = writeln!(self.out, "{l}");
        }
        self.drawn = lines.len();
        let _ = self.out.flush();
    }

    /// Prints a line above the running block.
    fn print(&mut self, text: &str) {
        self.erase();
        let _ = writeln!(self.out, "{text}");
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Started { vertex, name, .. } => {
                if !self.running.iter().any(|r| r.vertex == vertex) {
                    self.running.push(Running {
                        vertex,
                        name,
                        since: Instant::now(),
                        detail: String::new(),
                    });
                }
            }
            Event::Cached { vertex } => {
                self.cached.insert(vertex, true);
            }
            Event::Miss { .. } => {}
            Event::Log { vertex, data, .. } => {
                let lines = self.logs.entry(vertex.clone()).or_default();
                lines.extend(data.lines().map(str::to_string));
                let last = lines.last().cloned().unwrap_or_default();
                if let Some(r) = self.running.iter_mut().find(|r| r.vertex == vertex) {
                    r.detail = last;
                }
            }
            Event::Status {
                vertex,
                id,
                current,
                total,
                ..
            } => {
                if let Some(r) = self.running.iter_mut().find(|r| r.vertex == vertex) {
                    r.detail = match total {
                        Some(t) => format!(
                            "{} {} / {}",
                            truncate(&id, 24),
                            human_bytes(current),
                            human_bytes(t)
                        ),
                        None => truncate(&id, 40),
                    };
                }
            }
            Event::Completed {
                vertex,
                duration,
                error,
            } => {
                let Some(pos) = self.running.iter().position(|r| r.vertex == vertex) else {
                    return;
                };
                let r = self.running.remove(pos);
                let status = match &error {
                    Some(_) => "ERROR".to_string(),
                    None if self.cached.contains_key(&vertex) => "CACHED".to_string(),
                    None => format!("{:.1}s", duration.as_secs_f64()),
                };
                let line = self.line(&format!(" => {}  {status}", r.name));
                self.print(&line);
                if let Some(err) = error {
                    let tail: Vec<String> = self
                        .logs
                        .get(&vertex)
                        .map(|l| l.iter().rev().take(10).rev().cloned().collect())
                        .unwrap_or_default();
                    for l in tail {
                        self.print(&format!("    {l}"));
                    }
                    self.print(&format!("    ERROR: {err}"));
                }
            }
        }
        self.draw();
    }

    fn finish(&mut self) {
        self.erase();
        let _ = writeln!(
            self.out,
            "[+] Built in {:.1}s",
            self.started.elapsed().as_secs_f64()
        );
        let _ = self.out.flush();
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n).collect();
        format!("{t}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_solver::Stream;
    use std::time::SystemTime;

    #[test]
    fn plain_output_matches_buildkit_shape() {
        let mut out = Vec::new();
        {
            let mut r = PlainRenderer::new(&mut out);
            let a = Digest::of(b"a");
            let b = Digest::of(b"b");
            r.handle(Event::Started {
                vertex: a.clone(),
                name: "[1/2] FROM busybox".into(),
                at: SystemTime::now(),
            });
            r.handle(Event::Cached { vertex: a.clone() });
            r.handle(Event::Completed {
                vertex: a,
                duration: Duration::from_millis(1),
                error: None,
            });
            r.handle(Event::Started {
                vertex: b.clone(),
                name: "[2/2] RUN make".into(),
                at: SystemTime::now(),
            });
            r.handle(Event::Log {
                vertex: b.clone(),
                stream: Stream::Stdout,
                data: "hello\n".into(),
            });
            r.handle(Event::Completed {
                vertex: b,
                duration: Duration::from_millis(300),
                error: None,
            });
        }
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#1 [1/2] FROM busybox");
        assert_eq!(lines[1], "#1 CACHED");
        assert_eq!(lines[2], "");
        assert_eq!(lines[3], "#2 [2/2] RUN make");
        assert!(lines[4].starts_with("#2 0.0") && lines[4].ends_with(" hello"));
        assert_eq!(lines[5], "#2 DONE 0.3s");
    }

    #[test]
    fn tty_view_prints_finished_steps_once_and_redraws_running_ones() {
        let mut out = Vec::new();
        {
            let mut r = TtyRenderer::new(&mut out, 80);
            let a = Digest::of(b"a");
            r.handle(Event::Started {
                vertex: a.clone(),
                name: "[1/2] RUN make".into(),
                at: SystemTime::now(),
            });
            r.handle(Event::Log {
                vertex: a.clone(),
                stream: Stream::Stdout,
                data: "compiling\n".into(),
            });
            r.handle(Event::Completed {
                vertex: a,
                duration: Duration::from_millis(1500),
                error: None,
            });
            r.finish();
        }
        let text = String::from_utf8(out).unwrap();
        let visible = text.replace("\x1b[1A\x1b[2K", "");
        assert!(
            visible.contains(" => [1/2] RUN make 0.0s  compiling"),
            "{visible}"
        );
        assert_eq!(
            visible.matches(" => [1/2] RUN make  1.5s").count(),
            1,
            "{visible}"
        );
        assert!(visible.trim_end().ends_with("s"), "{visible}");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(12), "12B");
        assert_eq!(human_bytes(1_500_000), "1.50MB");
    }
}
