//! Progress renderers: plain lines like `docker buildx build --progress=plain`, a live
//! terminal view, and one JSON object per event for programs. The solver and the
//! exporters only send events; this module alone prints them.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
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
        ProgressMode::Rawjson => {
            while let Some(e) = rx.recv().await {
                if let Ok(line) = serde_json::to_string(&e) {
                    eprintln!("{line}");
                }
            }
        }
        ProgressMode::Tty => {
            let mut tty = TtyRenderer::new();
            while let Some(e) = rx.recv().await {
                tty.handle(e);
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
            Event::Miss { .. } => {}
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

/// A live view: one line per running step with its elapsed time and transfers,
/// finished steps printed above it once.
struct TtyRenderer {
    multi: MultiProgress,
    bars: HashMap<Digest, (ProgressBar, String, Instant, bool)>,
    logs: HashMap<Digest, Vec<String>>,
    started: Instant,
}

impl TtyRenderer {
    fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        TtyRenderer {
            multi,
            bars: HashMap::new(),
            logs: HashMap::new(),
            started: Instant::now(),
        }
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Started { vertex, name, .. } => {
                if self.bars.contains_key(&vertex) {
                    return;
                }
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(" => {msg} {elapsed:.dim}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(name.clone());
                bar.enable_steady_tick(Duration::from_millis(100));
                self.bars.insert(vertex, (bar, name, Instant::now(), false));
            }
            Event::Cached { vertex } => {
                if let Some(b) = self.bars.get_mut(&vertex) {
                    b.3 = true;
                }
            }
            Event::Miss { .. } => {}
            Event::Log { vertex, data, .. } => {
                let lines = self.logs.entry(vertex.clone()).or_default();
                for l in data.lines() {
                    lines.push(l.to_string());
                }
                if let (Some(b), Some(last)) = (self.bars.get(&vertex), lines.last()) {
                    b.0.set_message(format!("{}  {}", b.1, truncate(last, 60)));
                }
            }
            Event::Status {
                vertex,
                id,
                current,
                total,
                ..
            } => {
                if let Some(b) = self.bars.get(&vertex) {
                    let amount = match total {
                        Some(t) => format!("{} / {}", human_bytes(current), human_bytes(t)),
                        None => human_bytes(current),
                    };
                    b.0.set_message(format!("{}  {} {}", b.1, truncate(&id, 24), amount));
                }
            }
            Event::Completed {
                vertex,
                duration,
                error,
            } => {
                if let Some((bar, name, _, cached)) = self.bars.remove(&vertex) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                    let status = match &error {
                        Some(_) => "ERROR".to_string(),
                        None if cached => "CACHED".to_string(),
                        None => format!("{:.1}s", duration.as_secs_f64()),
                    };
                    let _ = self.multi.println(format!(" => {name}  {status}"));
                    if let Some(err) = error {
                        if let Some(lines) = self.logs.get(&vertex) {
                            for l in lines.iter().rev().take(10).rev() {
                                let _ = self.multi.println(format!("    {l}"));
                            }
                        }
                        let _ = self.multi.println(format!("    ERROR: {err}"));
                    }
                }
            }
        }
    }

    fn finish(self) {
        for (_, (bar, ..)) in self.bars {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
        eprintln!("[+] Building {:.1}s", self.started.elapsed().as_secs_f64());
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
    fn sizes() {
        assert_eq!(human_bytes(12), "12B");
        assert_eq!(human_bytes(1_500_000), "1.50MB");
    }
}
