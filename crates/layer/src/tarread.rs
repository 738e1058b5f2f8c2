//! A tar stream reader that trusts nothing it reads: it parses headers the way
//! Go's `archive/tar` does (the reader containerd and moby use, so a stream
//! means the same thing here as there) with hard bounds on what it buffers.
//!
//! Why not `tar::Archive`: it reads PAX and GNU long-name bodies of any
//! declared size into memory and splits PAX records at newlines, which breaks
//! binary xattr values. Here the `tar` crate's [`Header`] still decodes the
//! fixed fields; this module adds:
//!
//! - PAX extended headers (`x`) and GNU long names/links (`L`, `K`) of at most
//!   1 MiB (Go's limit), PAX records parsed by their length prefix, each record
//!   checked against the data actually present; global headers (`g`) are
//!   bounded the same way and ignored;
//! - header checksums verified (unsigned or signed sum, as Go accepts);
//! - header-only types (links, devices, directories, fifos) have no body
//!   whatever their size field says, as in Go, so both readers stay in step;
//!   the old NUL type flag means a directory when the name ends in `/` and a
//!   regular file otherwise;
//! - the end of the archive at two zero blocks, or at a clean end of stream
//!   on a block boundary.

use std::io::{self, Read};

use tar::Header;

use crate::error::{EntryError, Error, Result};
use crate::header::BLOCK;

/// Key/value records, in archive order.
type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Largest PAX or GNU long-name body read into memory.
pub(crate) const MAX_SPECIAL_SIZE: u64 = 1 << 20;

/// One archive member, with PAX and GNU extensions applied.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Name as recorded (PAX `path` > GNU long name > USTAR prefix + name).
    pub name: Vec<u8>,
    /// Link target as recorded, for hard links and symlinks.
    pub link: Vec<u8>,
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
    /// Bytes of body that follow the header.
    pub size: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// `SCHILY.xattr.*` records, in archive order.
    pub xattrs: Records,
    /// Whether PAX records describe a GNU sparse file.
    pub sparse: bool,
}

impl Entry {
    /// The name for messages.
    pub(crate) fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// Reads [`Entry`]s and their bodies from an uncompressed tar stream.
pub(crate) struct TarReader<R> {
    inner: R,
    /// Offset of the next unread byte.
    offset: u64,
    /// Body bytes of the current entry not yet read.
    remaining: u64,
    /// Padding after the current entry's body.
    padding: u64,
    done: bool,
}

impl<R: Read> TarReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        TarReader {
            inner,
            offset: 0,
            remaining: 0,
            padding: 0,
            done: false,
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry, or `None` at the end of the archive. Skips whatever is
    /// left of the previous entry's body.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        let leftover = self.remaining + self.padding;
        self.skip(leftover)?;
        self.remaining = 0;
        self.padding = 0;

        let mut pax: Option<Records> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let header_offset = self.offset;
            let Some(block) = self.read_block()? else {
                // Clean end of stream where a header would start.
                self.done = true;
                return Ok(None);
            };
            if block.iter().all(|&b| b == 0) {
                // One zero block; a second one (or the end of the stream) ends
                // the archive.
                match self.read_block()? {
                    None => {}
                    Some(next) if next.iter().all(|&b| b == 0) => {}
                    Some(_) => {
                        return Err(Error::Malformed {
                            offset: header_offset,
                            reason: "a zero block followed by a header".into(),
                        });
                    }
                }
                self.done = true;
                return Ok(None);
            }
            let header = Header::from_byte_slice(&block);
            let malformed = |reason: String| Error::Malformed {
                offset: header_offset,
                reason,
            };
            verify_checksum(&block).map_err(malformed)?;
            let old = header.as_old();
            let typeflag = old.linkflag[0];
            let field = |name: &str, bytes: &[u8]| {
                parse_numeric(bytes).map_err(|e| malformed(format!("{name} field: {e}")))
            };
            let size = u64::try_from(field("size", &old.size)?)
                .map_err(|_| malformed("negative size".into()))?;

            match typeflag {
                b'x' | b'g' | b'L' | b'K' => {
                    let body = self.read_special(size, header_offset)?;
                    match typeflag {
                        b'x' => pax = Some(parse_pax(&body).map_err(malformed)?),
                        b'g' => {} // global records: ignored, as containerd and moby do
                        b'L' => long_name = Some(c_string(&body).to_vec()),
                        _ => long_link = Some(c_string(&body).to_vec()),
                    }
                    continue;
                }
                _ => {}
            }

            let mut entry = Entry {
                name: header_name(&block),
                link: c_string(&old.linkname).to_vec(),
                typeflag,
                // Permission bits only; some writers add the file type bits.
                mode: (field("mode", &old.mode)? & 0o7777) as u32,
                uid: u64::try_from(field("uid", &old.uid)?)
                    .map_err(|_| malformed("negative uid".into()))?,
                gid: u64::try_from(field("gid", &old.gid)?)
                    .map_err(|_| malformed("negative gid".into()))?,
                mtime: (field("mtime", &old.mtime)?, 0),
                size,
                dev_major: 0,
                dev_minor: 0,
                xattrs: Vec::new(),
                sparse: typeflag == b'S',
            };
            if matches!(typeflag, b'3' | b'4') && is_ustar_or_gnu(&block) {
                let dev = |name: &str, bytes: &[u8]| {
                    u32::try_from(field(name, bytes)?)
                        .map_err(|_| malformed(format!("{name} out of range")))
                };
                entry.dev_major = dev("device major", &block[329..337])?;
                entry.dev_minor = dev("device minor", &block[337..345])?;
            }
            if let Some(name) = long_name.take() {
                entry.name = name;
            }
            if let Some(link) = long_link.take() {
                entry.link = link;
            }
            if let Some(records) = pax.take() {
                apply_pax(&mut entry, records).map_err(malformed)?;
            }
            // Old archives use the NUL type flag, and mark directories only
            // with a trailing slash (Go decides this after applying PAX and
            // GNU names, and before deciding whether a body follows).
            if entry.typeflag == 0 {
                entry.typeflag = if entry.name.ends_with(b"/") {
                    b'5'
                } else {
                    b'0'
                };
            }
            if matches!(entry.typeflag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6') {
                entry.size = 0;
            }
            self.remaining = entry.size;
            self.padding = (BLOCK as u64 - entry.size % BLOCK as u64) % BLOCK as u64;
            return Ok(Some(entry));
        }
    }

    /// Reads body bytes of the current entry; `Ok(0)` once the body is done.
    /// A stream that ends inside the body is an `UnexpectedEof` error.
    pub(crate) fn read_body(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= n as u64;
        self.offset += n as u64;
        Ok(n)
    }

    /// Copies the current entry's body to `out`; a short body is reported as
    /// [`EntryError::Truncated`], a failing `out` as an I/O error.
    pub(crate) fn copy_body(
        &mut self,
        out: &mut impl io::Write,
        buf: &mut [u8],
    ) -> std::result::Result<u64, BodyError> {
        let declared = self.remaining;
        let mut copied = 0u64;
        loop {
            let n = match self.read_body(buf) {
                Ok(0) => return Ok(copied),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(BodyError::Entry(EntryError::Truncated {
                        declared,
                        read: copied,
                    }));
                }
                Err(e) => return Err(BodyError::Read(e)),
            };
            out.write_all(&buf[..n])
                .map_err(|e| BodyError::Entry(EntryError::io("write file contents", e)))?;
            copied += n as u64;
        }
    }

    /// Offset of the next unread byte of the stream.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    fn read_block(&mut self) -> Result<Option<[u8; BLOCK]>> {
        let mut block = [0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => {
                    return Err(Error::Malformed {
                        offset: self.offset,
                        reason: "stream ends inside a header".into(),
                    });
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::ReadArchive {
                        offset: self.offset,
                        source,
                    });
                }
            }
        }
        self.offset += BLOCK as u64;
        Ok(Some(block))
    }

    /// Reads a PAX or GNU long-name body (bounded) and its padding.
    fn read_special(&mut self, size: u64, header_offset: u64) -> Result<Vec<u8>> {
        if size > MAX_SPECIAL_SIZE {
            return Err(Error::Malformed {
                offset: header_offset,
                reason: format!(
                    "extended header of {size} bytes exceeds the {MAX_SPECIAL_SIZE}-byte limit"
                ),
            });
        }
        let mut body = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < body.len() {
            match self.inner.read(&mut body[filled..]) {
                Ok(0) => {
                    return Err(Error::Malformed {
                        offset: header_offset,
                        reason: "stream ends inside an extended header".into(),
                    });
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::ReadArchive {
                        offset: self.offset,
                        source,
                    });
                }
            }
        }
        self.offset += size;
        self.skip((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64)?;
        Ok(body)
    }

    /// Discards `n` bytes; the stream may end early only at the very end.
    fn skip(&mut self, n: u64) -> Result<()> {
        let copied =
            io::copy(&mut (&mut self.inner).take(n), &mut io::sink()).map_err(|source| {
                Error::ReadArchive {
                    offset: self.offset,
                    source,
                }
            })?;
        self.offset += copied;
        if copied < n {
            return Err(Error::Malformed {
                offset: self.offset,
                reason: "stream ends inside an entry".into(),
            });
        }
        Ok(())
    }
}

/// Why copying a body failed: the entry (truncated, unwritable) or the stream.
#[derive(Debug)]
pub(crate) enum BodyError {
    Entry(EntryError),
    Read(io::Error),
}

/// Checks the header checksum: the sum of the block's bytes with the checksum
/// field read as spaces, taken unsigned or signed (old writers), as Go accepts.
fn verify_checksum(block: &[u8; BLOCK]) -> std::result::Result<(), String> {
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    let stored = parse_octal(&block[148..156]).map_err(|e| format!("checksum field: {e}"))?;
    if stored != unsigned && stored != signed {
        return Err(format!(
            "header checksum {stored} does not match {unsigned}"
        ));
    }
    Ok(())
}

/// A numeric field: base-256 (two's complement, big-endian) when the high bit
/// of the first byte is set, otherwise octal padded with spaces or NULs; an
/// empty field is 0. This is Go's `parseNumeric`.
fn parse_numeric(b: &[u8]) -> std::result::Result<i64, String> {
    let Some(&first) = b.first() else {
        return Ok(0);
    };
    if first & 0x80 == 0 {
        return parse_octal(b);
    }
    let inv: u8 = if first & 0x40 != 0 { 0xff } else { 0 };
    let mut x: u64 = 0;
    for (i, &c) in b.iter().enumerate() {
        let mut c = c ^ inv;
        if i == 0 {
            c &= 0x7f;
        }
        if x >> 56 > 0 {
            return Err("base-256 number overflows".into());
        }
        x = x << 8 | u64::from(c);
    }
    if x >> 63 > 0 {
        return Err("base-256 number overflows".into());
    }
    let x = x as i64;
    Ok(if inv == 0xff { !x } else { x })
}

fn parse_octal(b: &[u8]) -> std::result::Result<i64, String> {
    let trimmed = {
        let start = b
            .iter()
            .position(|&c| c != b' ' && c != 0)
            .unwrap_or(b.len());
        let end = b
            .iter()
            .rposition(|&c| c != b' ' && c != 0)
            .map_or(start, |i| i + 1);
        &b[start..end]
    };
    let digits = c_string(trimmed);
    if digits.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(digits)
        .ok()
        .filter(|s| s.bytes().all(|c| (b'0'..=b'7').contains(&c)))
        .and_then(|s| i64::from_str_radix(s, 8).ok())
        .ok_or_else(|| format!("{:?} is not an octal number", String::from_utf8_lossy(b)))
}

/// Whether the block has the USTAR (`ustar\0`) or GNU (`ustar  \0`) magic.
fn is_ustar_or_gnu(block: &[u8; BLOCK]) -> bool {
    &block[257..263] == b"ustar\0" || &block[257..265] == b"ustar  \0"
}

/// The entry name from the header: USTAR (magic `ustar\0`, version not
/// checked, as in Go) prepends its prefix field; the STAR variant has a
/// shorter prefix; GNU and V7 headers have none.
fn header_name(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = c_string(&block[..100]);
    if &block[257..263] != b"ustar\0" {
        return name.to_vec();
    }
    let prefix = if &block[508..512] == b"tar\0" {
        &block[345..476]
    } else {
        &block[345..500]
    };
    let prefix = c_string(prefix);
    if prefix.is_empty() {
        name.to_vec()
    } else {
        [prefix, b"/", name].concat()
    }
}

/// The bytes before the first NUL.
fn c_string(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |i| &b[..i])
}

/// Parses PAX records: `"<len> <key>=<value>\n"`, where `len` counts the whole
/// record and values may hold any byte, newlines included.
fn parse_pax(mut data: &[u8]) -> std::result::Result<Records, String> {
    let mut records = Vec::new();
    while !data.is_empty() {
        let space = data
            .iter()
            .take(20)
            .position(|&b| b == b' ')
            .ok_or("PAX record without a length")?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or("PAX record length is not a number")?;
        if len < 5 || len > data.len() || len <= space + 1 {
            return Err(format!(
                "PAX record claims {len} bytes, {} are present",
                data.len()
            ));
        }
        let record = &data[space + 1..len];
        let Some((&b'\n', record)) = record.split_last() else {
            return Err("PAX record does not end in a newline".into());
        };
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("PAX record without '='")?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        if key.is_empty() || key.contains(&0) {
            return Err("PAX record with an empty or NUL key".into());
        }
        records.push((key.to_vec(), value.to_vec()));
        data = &data[len..];
    }
    Ok(records)
}

fn apply_pax(
    entry: &mut Entry,
    records: Vec<(Vec<u8>, Vec<u8>)>,
) -> std::result::Result<(), String> {
    fn number(key: &[u8], value: &[u8]) -> std::result::Result<u64, String> {
        std::str::from_utf8(value)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                format!(
                    "PAX {} is not a number: {:?}",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(value)
                )
            })
    }
    for (key, value) in records {
        match key.as_slice() {
            b"path" => entry.name = value,
            b"linkpath" => entry.link = value,
            b"size" => entry.size = number(&key, &value)?,
            b"uid" => entry.uid = number(&key, &value)?,
            b"gid" => entry.gid = number(&key, &value)?,
            b"mtime" => entry.mtime = parse_pax_time(&value)?,
            k if k.starts_with(b"SCHILY.xattr.") => {
                entry
                    .xattrs
                    .push((k[b"SCHILY.xattr.".len()..].to_vec(), value));
            }
            k if k.starts_with(b"GNU.sparse.") => entry.sparse = true,
            _ => {} // atime, ctime, uname, gname, comment, charset, vendor keys
        }
    }
    Ok(())
}

/// `[-]seconds[.fraction]` to (seconds, nanoseconds) with nanoseconds >= 0.
fn parse_pax_time(value: &[u8]) -> std::result::Result<(i64, u32), String> {
    let bad = || {
        format!(
            "PAX mtime is not a time: {:?}",
            String::from_utf8_lossy(value)
        )
    };
    let text = std::str::from_utf8(value).map_err(|_| bad())?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let mut nanos: u32 = 0;
    for (i, digit) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(digit - b'0') * 10u32.pow(8 - i as u32);
    }
    Ok(match (negative, nanos) {
        (false, _) => (secs, nanos),
        (true, 0) => (-secs, 0),
        (true, n) => (-secs - 1, 1_000_000_000 - n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_are_parsed_by_length_and_may_contain_newlines() {
        let value = b"a\nb=c\0d";
        let mut data = Vec::new();
        let body = 3 + "SCHILY.xattr.user.x".len() + value.len();
        let len = body + body.to_string().len();
        data.extend_from_slice(format!("{len} SCHILY.xattr.user.x=").as_bytes());
        data.extend_from_slice(value);
        data.push(b'\n');
        data.extend_from_slice(b"13 path=abcd\n");
        let records = parse_pax(&data).unwrap();
        assert_eq!(
            records[0],
            (b"SCHILY.xattr.user.x".to_vec(), value.to_vec())
        );
        assert_eq!(records[1], (b"path".to_vec(), b"abcd".to_vec()));
    }

    #[test]
    fn pax_records_with_lying_lengths_are_refused() {
        for bad in [
            &b"99999999999999999 path=x\n"[..],
            b"30 path=x\n",
            b"3 p\n",
            b"9 path=xy\n", // length one short: no newline where it says
            b"x path=y\n",
            b"11 novalue\n",
            b"9 =value\n",
            b"-5 path=x\n",
        ] {
            assert!(
                parse_pax(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn raw_header(name: &[u8], typeflag: u8, size: u64) -> Vec<u8> {
        let mut block = [0u8; BLOCK];
        block[..name.len()].copy_from_slice(name);
        block[100..108].copy_from_slice(b"0000755\0");
        block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        block[156] = typeflag;
        block[257..265].copy_from_slice(b"ustar\x0000");
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        block.to_vec()
    }

    #[test]
    fn header_only_types_have_no_body_whatever_their_size_says() {
        // As in Go: a NUL-type entry named with a trailing slash is a directory
        // and the next header follows immediately; a '0' entry keeps its body.
        let mut tar = raw_header(b"legacy/", 0, 512);
        tar.extend(raw_header(b"link", b'2', 512));
        tar.extend(raw_header(b"file/", b'0', 3));
        tar.extend([b'x'; 512]);
        tar.extend(raw_header(b"plain", 0, 0));
        tar.extend([0u8; 1024]);
        let mut reader = TarReader::new(&tar[..]);
        let mut seen = Vec::new();
        while let Some(e) = reader.next_entry().unwrap() {
            seen.push((String::from_utf8(e.name).unwrap(), e.typeflag, e.size));
        }
        assert_eq!(
            seen,
            [
                ("legacy/".to_string(), b'5', 0),
                ("link".to_string(), b'2', 0),
                ("file/".to_string(), b'0', 3),
                ("plain".to_string(), b'0', 0),
            ]
        );
    }

    #[test]
    fn numeric_fields_parse_like_go() {
        assert_eq!(parse_numeric(b"0000644\0").unwrap(), 0o644);
        assert_eq!(parse_numeric(b"   644 \0").unwrap(), 0o644);
        assert_eq!(parse_numeric(b"\0\0\0\0\0\0\0\0").unwrap(), 0);
        assert_eq!(parse_numeric(b"").unwrap(), 0);
        assert_eq!(
            parse_numeric(&[0x80, 0, 0, 0, 0, 0x2d, 0xc6, 0xc0]).unwrap(),
            3_000_000
        );
        assert_eq!(parse_numeric(&[0xff; 8]).unwrap(), -1);
        assert!(parse_numeric(b"0000899\0").is_err());
        assert!(parse_numeric(&[0x80, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn ustar_prefix_is_used_whatever_the_version_field_says() {
        let mut block = [0u8; BLOCK];
        block[..4].copy_from_slice(b"name");
        block[257..263].copy_from_slice(b"ustar\0");
        block[345..351].copy_from_slice(b"prefix");
        assert_eq!(header_name(&block), b"prefix/name");
        block[257..265].copy_from_slice(b"ustar  \0");
        assert_eq!(header_name(&block), b"name");
    }

    #[test]
    fn pax_times_keep_fractions_and_signs() {
        assert_eq!(parse_pax_time(b"1700000000").unwrap(), (1_700_000_000, 0));
        assert_eq!(parse_pax_time(b"1.5").unwrap(), (1, 500_000_000));
        assert_eq!(parse_pax_time(b"-1.25").unwrap(), (-2, 750_000_000));
        assert_eq!(parse_pax_time(b"12.0000000019").unwrap(), (12, 1));
        assert!(parse_pax_time(b"1e9").is_err());
        assert!(parse_pax_time(b"").is_err());
    }
}
