//! JSON bytes as Go's `encoding/json` writes them, so digests match BuildKit's.
//!
//! serde_json and Go agree on everything kiln serializes except string escaping:
//! Go also escapes `<`, `>`, `&` (as `\u003c`, `\u003e`, `\u0026`) and the line
//! and paragraph separators U+2028 and U+2029. [`GoFormatter`] adds that to either
//! serde_json formatter: compact (`json.Marshal`) or two-space indented
//! (`json.MarshalIndent(v, "", "  ")`), whose layout serde_json's pretty printer
//! already shares. Object keys come out in the order the value gives them: struct
//! order for structs, sorted order for `BTreeMap`s, as Go sorts map keys.

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

/// A serde_json formatter that escapes strings as Go does.
struct GoFormatter<F>(F);

impl<F: Formatter> Formatter for GoFormatter<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

fn write_with<F: Formatter, T: Serialize + ?Sized>(value: &T, formatter: F) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter(formatter));
    // Serializing kiln's own types into memory cannot fail: no maps with non-string
    // keys, no I/O errors from a Vec.
    if let Err(e) = value.serialize(&mut serializer) {
        unreachable!("serializing export metadata failed: {e}");
    }
    out
}

/// `json.Marshal(value)`.
pub(crate) fn marshal<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    write_with(value, CompactFormatter)
}

/// `json.MarshalIndent(value, "", "  ")`.
pub(crate) fn marshal_indent<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    write_with(value, PrettyFormatter::with_indent(b"  "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn escapes_html_and_separators_as_go_does() {
        let s = "a<b>&c\u{2028}d\u{2029}\"\\\n\u{1}é";
        assert_eq!(
            String::from_utf8(marshal(s)).unwrap(),
            r#""a\u003cb\u003e\u0026c\u2028d\u2029\"\\\n\u0001é""#
        );
    }

    #[test]
    fn indents_like_marshal_indent() {
        let mut m = BTreeMap::new();
        m.insert("b", vec![1, 2]);
        m.insert("a", vec![]);
        assert_eq!(
            String::from_utf8(marshal_indent(&m)).unwrap(),
            "{\n  \"a\": [],\n  \"b\": [\n    1,\n    2\n  ]\n}"
        );
        assert_eq!(
            String::from_utf8(marshal(&m)).unwrap(),
            r#"{"a":[],"b":[1,2]}"#
        );
    }
}
