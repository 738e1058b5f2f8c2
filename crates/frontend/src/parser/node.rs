//! The syntax tree the parser produces: one [`Node`] per instruction.

use crate::shell::go_text;

/// One instruction of a Dockerfile, as the parser saw it.
///
/// This is BuildKit's `parser.Node` flattened: BuildKit chains arguments through a
/// linked list of `Next` nodes and nests the inner instruction of `ONBUILD` as a child;
/// here the arguments are a vector and the inner instruction is [`Node::inner`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The instruction keyword, lower-cased (`from`, `run`, ...).
    pub keyword: String,
    /// The keyword as written (`RUN`, `Run`), for messages and casing checks.
    pub keyword_as_written: String,
    /// Flags written before the arguments (`--from=builder`), quotes and escapes
    /// removed.
    pub flags: Vec<String>,
    /// The arguments as the instruction's line parser split them.
    pub args: Vec<String>,
    /// The arguments' bytes, kept only when some of them are not valid UTF-8 (`args`
    /// then shows each stray byte as U+FFFD). BuildKit passes such bytes through and
    /// [`Node::dump`] prints them as it does.
    pub raw_args: Option<Vec<Vec<u8>>>,
    /// The arguments came from a JSON array (exec form).
    pub json: bool,
    /// For `ONBUILD`: the instruction it wraps (then `args` is empty).
    pub inner: Option<Box<Node>>,
    /// Heredocs attached to this instruction, in the order they were opened. For
    /// `ONBUILD`, they belong to the outer node, as in BuildKit.
    pub heredocs: Vec<Heredoc>,
    /// The instruction's text with continuations joined, as BuildKit's `Original`
    /// (for `ONBUILD`'s inner node: the text after `ONBUILD` and its flags).
    pub original: String,
    /// First line of the instruction (1-based). An inner node has its outer node's
    /// lines.
    pub start_line: usize,
    /// Last line of the instruction, heredoc bodies included (1-based).
    pub end_line: usize,
    /// Comment lines above the instruction since the previous one (blank lines do not
    /// interrupt them, an empty `#` line clears them), without the leading `#`.
    pub prev_comment: Vec<String>,
}

/// A heredoc body attached to an instruction (`<<EOF ... EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// File descriptor written before `<<` (`3<<EOF`), 0 when absent.
    pub file_descriptor: u64,
    /// Variables in the body are expanded (the delimiter was not quoted).
    pub expand: bool,
    /// Leading tabs are to be stripped from body lines (`<<-EOF`); the parser keeps
    /// them in `content`, see [`chomp_heredoc_content`](super::chomp_heredoc_content).
    pub chomp: bool,
    /// The body as written, each line with its line ending.
    pub content: String,
}

impl Node {
    /// The node in BuildKit's dump format: `(keyword ["--flag"] "arg" ...)`.
    ///
    /// The keyword is lower-cased; flags, when there are any, are printed like Go's
    /// `%q` of a string slice, arguments like Go's `strconv.Quote`; an `ONBUILD` node
    /// holds its inner node's dump: `(onbuild (run "echo"))`.
    pub fn dump(&self) -> String {
        let mut text = self.keyword.clone();
        if !self.flags.is_empty() {
            text.push(' ');
            text.push_str(&go_text::quote_list(&self.flags));
        }
        match &self.raw_args {
            Some(raw) if raw.len() == self.args.len() => {
                for arg in raw {
                    text.push(' ');
                    text.push_str(&go_text::quote_bytes(arg));
                }
            }
            _ => {
                for arg in &self.args {
                    text.push(' ');
                    text.push_str(&go_text::quote(arg));
                }
            }
        }
        if let Some(inner) = &self.inner {
            text.push(' ');
            text.push_str(&inner.dump());
        }
        format!("({})", go_text::trim_space(&text))
    }

    /// Whether heredocs on this instruction's line are read: `RUN`, `COPY` and `ADD`
    /// in shell form, also behind `ONBUILD`.
    pub(crate) fn can_contain_heredoc(&self) -> bool {
        let node = match (&self.inner, self.keyword.as_str()) {
            (Some(inner), "onbuild") => inner,
            _ => self,
        };
        matches!(node.keyword.as_str(), "add" | "copy" | "run") && !node.json
    }

    pub(crate) fn set_lines(&mut self, start: usize, end: usize) {
        self.start_line = start;
        self.end_line = end;
        if let Some(inner) = &mut self.inner {
            inner.set_lines(start, end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(keyword: &str, flags: &[&str], args: &[&str]) -> Node {
        Node {
            keyword: go_text::to_lower(keyword),
            keyword_as_written: keyword.to_string(),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Node::default()
        }
    }

    #[test]
    fn dump_format() {
        assert_eq!(node("RUN", &[], &["echo hi"]).dump(), r#"(run "echo hi")"#);
        assert_eq!(
            node("COPY", &["--from=0", "--chown=1:1"], &["a", "b"]).dump(),
            r#"(copy ["--from=0" "--chown=1:1"] "a" "b")"#
        );
        assert_eq!(node("CMD", &[], &[]).dump(), "(cmd)");
        assert_eq!(
            node("ENV", &[], &["a", "b\"\\\t\n\u{0}é\u{a0}", ""]).dump(),
            r#"(env "a" "b\"\\\t\n\x00é\u00a0" "")"#
        );
        let mut onbuild = node("ONBUILD", &[], &[]);
        onbuild.inner = Some(Box::new(node("RUN", &[], &["echo", "test"])));
        assert_eq!(onbuild.dump(), r#"(onbuild (run "echo" "test"))"#);
    }

    #[test]
    fn dump_prints_stray_bytes_like_go() {
        let mut n = node("RUN", &[], &["a\u{fffd}"]);
        n.raw_args = Some(vec![b"a\xe9".to_vec()]);
        assert_eq!(n.dump(), r#"(run "a\xe9")"#);
    }

    #[test]
    fn dump_trims_like_go() {
        // A keyword can only end in a Unicode blank when it has no arguments.
        assert_eq!(node("RUN\u{a0}", &[], &[]).dump(), "(run)");
        assert_eq!(node("", &[], &[""]).dump(), r#"("")"#);
    }

    #[test]
    fn heredoc_capable_instructions() {
        assert!(node("RUN", &[], &[]).can_contain_heredoc());
        assert!(node("copy", &[], &[]).can_contain_heredoc());
        assert!(!node("CMD", &[], &[]).can_contain_heredoc());
        let mut json = node("RUN", &[], &[]);
        json.json = true;
        assert!(!json.can_contain_heredoc());
        let mut onbuild = node("ONBUILD", &[], &[]);
        assert!(!onbuild.can_contain_heredoc());
        onbuild.inner = Some(Box::new(node("ADD", &[], &[])));
        assert!(onbuild.can_contain_heredoc());
    }
}
