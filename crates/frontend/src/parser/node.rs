//! The syntax tree the parser produces: one [`Node`] per instruction.

/// One instruction of a Dockerfile, as the parser saw it.
///
/// This is BuildKit's `parser.Node` flattened: BuildKit chains arguments through a
/// linked list of `Next` nodes and nests the inner instruction of `ONBUILD` as a child;
/// here the arguments are a vector and the inner instruction is [`Node::inner`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The instruction keyword, lower-cased (`from`, `run`, ...).
    pub keyword: String,
    /// Flags written before the arguments (`--from=builder`), verbatim.
    pub flags: Vec<String>,
    /// The arguments as the instruction's line parser split them.
    pub args: Vec<String>,
    /// The arguments came from a JSON array (exec form).
    pub json: bool,
    /// For `ONBUILD`: the instruction it wraps (then `args` is empty).
    pub inner: Option<Box<Node>>,
    /// Heredocs attached to this instruction, in the order they were opened.
    pub heredocs: Vec<Heredoc>,
    /// The instruction's text with continuations joined, as BuildKit's `Original`.
    pub original: String,
    /// First line of the instruction (1-based).
    pub start_line: usize,
    /// Last line of the instruction, heredoc bodies included (1-based).
    pub end_line: usize,
    /// Comment lines directly above the instruction, without the leading `#`.
    pub prev_comment: Vec<String>,
}

/// A heredoc body attached to an instruction (`<<EOF ... EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// File descriptor written before `<<` (`3<<EOF`), 0 when absent.
    pub file_descriptor: u32,
    /// Variables in the body are expanded (the delimiter was not quoted).
    pub expand: bool,
    /// Leading tabs are stripped from body lines (`<<-EOF`).
    pub chomp: bool,
    /// The body, each line ending in `\n`.
    pub content: String,
}
