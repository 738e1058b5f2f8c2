//! Encodes tar headers byte for byte the way Go's `archive/tar` does when asked
//! for the PAX format, which is what containerd's archive writer (and so
//! BuildKit) emits for layers:
//!
//! - a plain USTAR header (`ustar\0` + `00`) whenever every field fits, using
//!   the USTAR prefix field to split a long ASCII name at a `/`;
//! - otherwise a PAX extended header (`x`, named `<dir>/PaxHeaders.0/<base>`,
//!   records sorted by key) followed by the USTAR header with the long or
//!   non-ASCII strings reduced to ASCII and truncated, and numbers that do not
//!   fit written as 0. PAX records are used for `path`, `linkpath`, `uid`,
//!   `gid`, `size`, `mtime` and `SCHILY.xattr.<name>`; never GNU extensions;
//! - numeric fields as zero-padded octal ending in NUL, the checksum as six
//!   octal digits, NUL, space; user and group names empty.
//!
//! The `tar` crate provides the 512-byte block and its field layout; the
//! formatting is done here so the bytes never depend on that crate's choices.

use std::collections::BTreeMap;

use tar::Header;

/// Size of a tar block.
pub(crate) const BLOCK: usize = 512;

/// Everything a header says about one entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryHeader<'a> {
    pub name: &'a [u8],
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub linkname: &'a [u8],
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

const NAME_SIZE: usize = 100;
const PREFIX_SIZE: usize = 155;
const PAX_XATTR: &[u8] = b"SCHILY.xattr.";

/// Appends the header block(s) for `h` to `out`: an optional PAX extended
/// header with its records, then the USTAR header. The entry's data (for
/// regular files) follows, padded to a block, and is not written here.
///
/// Fails only for an xattr whose name cannot be a PAX key (contains `=`).
pub(crate) fn encode(h: &EntryHeader<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let mut pax: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut ustar_ok = true;

    let name_fits = h.name.len() <= NAME_SIZE && is_ascii(h.name);
    let split = if name_fits {
        None
    } else {
        pax.insert(b"path".to_vec(), h.name.to_vec());
        let split = split_ustar_path(h.name);
        ustar_ok &= split.is_some();
        split
    };
    if h.linkname.len() > NAME_SIZE || !is_ascii(h.linkname) {
        pax.insert(b"linkpath".to_vec(), h.linkname.to_vec());
        ustar_ok = false;
    }
    for (key, value, width) in [("uid", h.uid, 8), ("gid", h.gid, 8), ("size", h.size, 12)] {
        if !fits_in_octal(width, i128::from(value)) {
            pax.insert(key.as_bytes().to_vec(), value.to_string().into_bytes());
            ustar_ok = false;
        }
    }
    if !fits_in_octal(12, i128::from(h.mtime)) {
        pax.insert(b"mtime".to_vec(), h.mtime.to_string().into_bytes());
        ustar_ok = false;
    }
    for (name, value) in h.xattrs {
        if name.contains(&b'=') {
            return Err(format!(
                "xattr name {:?} contains '=' and cannot be a PAX record",
                String::from_utf8_lossy(name)
            ));
        }
        pax.insert([PAX_XATTR, name].concat(), value.clone());
        ustar_ok = false;
    }

    if ustar_ok {
        let (prefix, name) = split.unwrap_or((&[][..], h.name));
        let mut block = template(h, name, false);
        if let Some(ustar) = block.as_ustar_mut() {
            format_string(&mut ustar.prefix, prefix);
        }
        finish(&mut block);
        out.extend_from_slice(block.as_bytes());
        return Ok(());
    }

    let mut records = Vec::new();
    for (key, value) in &pax {
        format_pax_record(key, value, &mut records);
    }
    write_pax_header(h.name, &records, out);
    let mut block = template(h, h.name, true);
    finish(&mut block);
    out.extend_from_slice(block.as_bytes());
    Ok(())
}

/// The two zero blocks that end an archive.
pub(crate) const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// Zero bytes that pad `size` bytes of data to a whole block.
pub(crate) fn padding(size: u64) -> &'static [u8] {
    const ZEROS: [u8; BLOCK] = [0; BLOCK];
    let rem = (size % BLOCK as u64) as usize;
    if rem == 0 { &[] } else { &ZEROS[rem..] }
}

/// The main header, with strings reduced to ASCII when a PAX header carries
/// the real values (`lossy`), and numbers that do not fit written as 0.
fn template(h: &EntryHeader<'_>, name: &[u8], lossy: bool) -> Header {
    let mut block = Header::new_ustar();
    let Some(ustar) = block.as_ustar_mut() else {
        unreachable!("Header::new_ustar always has the ustar magic")
    };
    let text = |field: &mut [u8], s: &[u8]| {
        if lossy {
            format_string(field, &to_ascii(s));
        } else {
            format_string(field, s);
        }
    };
    ustar.typeflag = [h.typeflag];
    text(&mut ustar.name, name);
    text(&mut ustar.linkname, h.linkname);
    format_octal(&mut ustar.mode, i128::from(h.mode));
    format_octal(&mut ustar.uid, i128::from(h.uid));
    format_octal(&mut ustar.gid, i128::from(h.gid));
    format_octal(&mut ustar.size, i128::from(h.size));
    format_octal(&mut ustar.mtime, i128::from(h.mtime));
    format_octal(&mut ustar.dev_major, i128::from(h.dev_major));
    format_octal(&mut ustar.dev_minor, i128::from(h.dev_minor));
    block
}

/// The `x` header that carries `records` for the entry named `entry_name`.
fn write_pax_header(entry_name: &[u8], records: &[u8], out: &mut Vec<u8>) {
    // Go names it path.Join(dir, "PaxHeaders.0", base), reduced to ASCII,
    // truncated to the name field, without trailing slashes.
    let trimmed = trim_trailing_slashes(entry_name);
    let (dir, base) = if entry_name.ends_with(b"/") {
        (trimmed, &b""[..])
    } else {
        crate::walk::split_last(trimmed)
    };
    let mut name = Vec::new();
    if !dir.is_empty() {
        name.extend_from_slice(dir);
        name.push(b'/');
    }
    name.extend_from_slice(b"PaxHeaders.0");
    if !base.is_empty() {
        name.push(b'/');
        name.extend_from_slice(base);
    }
    let mut name = to_ascii(&name);
    name.truncate(NAME_SIZE);
    let name = trim_trailing_slashes(&name);

    let mut block = Header::new_ustar();
    let Some(ustar) = block.as_ustar_mut() else {
        unreachable!("Header::new_ustar always has the ustar magic")
    };
    ustar.typeflag = [b'x'];
    format_string(&mut ustar.name, name);
    format_octal(&mut ustar.mode, 0);
    format_octal(&mut ustar.uid, 0);
    format_octal(&mut ustar.gid, 0);
    format_octal(&mut ustar.size, records.len() as i128);
    format_octal(&mut ustar.mtime, 0);
    finish(&mut block);
    out.extend_from_slice(block.as_bytes());
    out.extend_from_slice(records);
    out.extend_from_slice(padding(records.len() as u64));
}

/// Writes the checksum: six octal digits, NUL, space.
fn finish(block: &mut Header) {
    let bytes = block.as_mut_bytes();
    bytes[148..156].fill(b' ');
    let sum: u32 = bytes.iter().map(|&b| u32::from(b)).sum();
    format_octal(&mut bytes[148..155], i128::from(sum));
    bytes[155] = b' ';
}

/// `"<len> <key>=<value>\n"`, where len counts the whole record.
fn format_pax_record(key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut size = body + body.to_string().len();
    if size.to_string().len() + body != size {
        size = size.to_string().len() + body;
    }
    out.extend_from_slice(size.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn fits_in_octal(width: usize, x: i128) -> bool {
    x >= 0 && x < 1i128 << ((width - 1) * 3)
}

/// Zero-padded octal ending in NUL; 0 when the value does not fit.
fn format_octal(field: &mut [u8], x: i128) {
    let x = if fits_in_octal(field.len(), x) { x } else { 0 };
    let digits = format!("{x:0width$o}", width = field.len() - 1);
    format_string(field, digits.as_bytes());
}

/// Copies `s` into `field`, truncating, NUL-terminated when shorter. A name
/// truncated right after a `/` loses that slash, so that old readers do not
/// mistake a file for a directory.
fn format_string(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
    if s.len() < field.len() {
        field[s.len()] = 0;
    }
    if s.len() > field.len() && field[field.len() - 1] == b'/' {
        let keep = trim_trailing_slashes(&s[..field.len() - 1]).len();
        field[keep] = 0;
    }
}

fn is_ascii(s: &[u8]) -> bool {
    s.iter().all(|&b| b != 0 && b < 0x80)
}

fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|&b| b != 0 && b < 0x80).collect()
}

fn trim_trailing_slashes(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    &s[..end]
}

/// Splits a long ASCII name into USTAR (prefix, name) at a `/`, if possible.
fn split_ustar_path(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= NAME_SIZE || !is_ascii(name) {
        return None;
    }
    let mut length = name.len();
    if length > PREFIX_SIZE + 1 {
        length = PREFIX_SIZE + 1;
    } else if name[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].iter().rposition(|&b| b == b'/')?;
    let suffix_len = name.len() - i - 1;
    if i == 0 || suffix_len > NAME_SIZE || suffix_len == 0 || i > PREFIX_SIZE {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file<'a>(name: &'a [u8]) -> EntryHeader<'a> {
        EntryHeader {
            name,
            typeflag: b'0',
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 5,
            mtime: 1_700_000_000,
            linkname: b"",
            dev_major: 0,
            dev_minor: 0,
            xattrs: &[],
        }
    }

    fn encoded(h: &EntryHeader<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        encode(h, &mut out).unwrap();
        out
    }

    #[test]
    fn short_ascii_entry_is_a_single_ustar_block_formatted_like_go() {
        let out = encoded(&file(b"etc/hosts"));
        assert_eq!(out.len(), BLOCK);
        assert_eq!(&out[..10], b"etc/hosts\0");
        assert_eq!(&out[100..108], b"0000644\0");
        assert_eq!(&out[108..116], b"0000000\0");
        assert_eq!(&out[124..136], b"00000000005\0");
        assert_eq!(&out[136..148], b"14524770400\0");
        assert_eq!(out[156], b'0');
        assert_eq!(&out[257..265], b"ustar\x0000");
        assert_eq!(&out[265..297], &[0u8; 32]); // uname
        assert_eq!(&out[329..345], b"0000000\x000000000\0");
        assert_eq!(&out[154..156], b"\0 ");
        // The checksum verifies with the tar crate's reader.
        let header = Header::from_byte_slice(&out);
        let sum: u32 = out[..148]
            .iter()
            .chain([b' '; 8].iter())
            .chain(out[156..].iter())
            .map(|&b| u32::from(b))
            .sum();
        assert_eq!(header.cksum().unwrap(), sum);
        assert_eq!(header.path_bytes().as_ref(), b"etc/hosts");
    }

    #[test]
    fn long_ascii_name_uses_the_ustar_prefix_when_nothing_else_needs_pax() {
        let name = [&[b'd'; 60][..], b"/", &[b'f'; 90][..]].concat();
        let out = encoded(&file(&name));
        assert_eq!(out.len(), BLOCK);
        assert_eq!(&out[345..405], &[b'd'; 60]);
        assert_eq!(&out[..90], &[b'f'; 90]);
        assert_eq!(
            Header::from_byte_slice(&out).path_bytes().as_ref(),
            &name[..]
        );
    }

    #[test]
    fn unsplittable_or_unicode_names_get_a_pax_path_record() {
        let name = "caf\u{e9}/\u{1f600}.txt".as_bytes();
        let out = encoded(&file(name));
        assert_eq!(out.len(), 3 * BLOCK);
        assert_eq!(&out[..25], b"caf/PaxHeaders.0/.txt\0\0\0\0");
        assert_eq!(out[156], b'x');
        let body = "path".len() + name.len() + 3;
        let record = format!(
            "{} path=caf\u{e9}/\u{1f600}.txt\n",
            body + body.to_string().len()
        );
        assert_eq!(&out[BLOCK..BLOCK + record.len()], record.as_bytes());
        // The main header holds the ASCII remains of the name.
        assert_eq!(&out[2 * BLOCK..2 * BLOCK + 9], b"caf/.txt\0");
    }

    #[test]
    fn xattrs_force_pax_and_records_are_sorted() {
        let xattrs = vec![
            (b"user.z".to_vec(), b"1".to_vec()),
            (b"security.capability".to_vec(), vec![1, 0, b'\n', 0]),
        ];
        let mut h = file(b"bin/ping");
        h.xattrs = &xattrs;
        h.uid = 1 << 30;
        let out = encoded(&h);
        let records = &out[BLOCK..];
        let text = String::from_utf8_lossy(records);
        let cap = text.find("SCHILY.xattr.security.capability=").unwrap();
        let user = text.find("SCHILY.xattr.user.z=").unwrap();
        let uid = text.find(" uid=1073741824\n").unwrap();
        assert!(cap < user && user < uid, "{text}");
        // uid does not fit in 7 octal digits: written as 0 in the main header.
        let main = &out[out.len() - BLOCK..];
        assert_eq!(&main[108..116], b"0000000\0");
    }

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        for value_len in [0usize, 1, 5, 6, 7, 90, 91, 92, 993, 994, 995] {
            let mut out = Vec::new();
            let value = vec![b'v'; value_len];
            format_pax_record(b"path", &value, &mut out);
            let space = out.iter().position(|&b| b == b' ').unwrap();
            let declared: usize = std::str::from_utf8(&out[..space]).unwrap().parse().unwrap();
            assert_eq!(declared, out.len(), "value length {value_len}");
        }
    }

    #[test]
    fn negative_mtime_goes_to_pax() {
        let mut h = file(b"old");
        h.mtime = -1;
        let out = encoded(&h);
        assert!(String::from_utf8_lossy(&out[BLOCK..2 * BLOCK]).contains("mtime=-1\n"));
    }

    #[test]
    fn xattr_names_with_equals_are_refused() {
        let xattrs = vec![(b"user.a=b".to_vec(), b"1".to_vec())];
        let mut h = file(b"f");
        h.xattrs = &xattrs;
        assert!(encode(&h, &mut Vec::new()).is_err());
    }

    #[test]
    fn split_follows_go_rules() {
        assert_eq!(split_ustar_path(b"short"), None);
        let long_base = [b"d/".as_slice(), &[b'f'; 101]].concat();
        assert_eq!(split_ustar_path(&long_base), None);
        let dir_name = [&[b'd'; 120][..], b"/x/"].concat();
        assert_eq!(
            split_ustar_path(&dir_name),
            Some((&dir_name[..120], &b"x/"[..]))
        );
    }
}
