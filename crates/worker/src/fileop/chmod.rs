//! `COPY --chmod` with a symbolic mode (`u+x,go-w`, `=rw,+X`, `g=u-w`): the
//! parser and evaluator BuildKit uses (a port of BSD's `setmode(3)` as done by
//! tonistiigi/dchapes-mode), evaluated with a umask of 0.
//!
//! Modes here are the 12 low bits of `st_mode`: permissions plus setuid
//! (`04000`), setgid (`02000`) and sticky (`01000`).

const IS_UID: u16 = 0o4000;
const IS_GID: u16 = 0o2000;
const IS_TXT: u16 = 0o1000;
const RWXU: u16 = 0o700;
const RUSR: u16 = 0o400;
const WUSR: u16 = 0o200;
const XUSR: u16 = 0o100;
const RWXG: u16 = 0o070;
const RGRP: u16 = 0o040;
const WGRP: u16 = 0o020;
const XGRP: u16 = 0o010;
const RWXO: u16 = 0o007;
const ROTH: u16 = 0o004;
const WOTH: u16 = 0o002;
const XOTH: u16 = 0o001;
const STANDARD_BITS: u16 = IS_UID | IS_GID | RWXU | RWXG | RWXO;

const CMD2_CLEAR: u8 = 1;
const CMD2_SET: u8 = 2;
const CMD2_GBITS: u8 = 4;
const CMD2_OBITS: u8 = 8;
const CMD2_UBITS: u8 = 16;

/// The mode expression is not valid `chmod(1)` syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chmod parameter: '{0}'")]
pub struct InvalidMode(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BitCmd {
    cmd: u8,
    cmd2: u8,
    bits: u16,
}

/// A parsed symbolic (or octal) mode expression, applied to each copied entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModeSet {
    cmds: Vec<BitCmd>,
}

impl ModeSet {
    /// Parses `expr` as `chmod(1)` does, with a umask of 0.
    pub(crate) fn parse(expr: &str) -> Result<ModeSet, InvalidMode> {
        parse(expr.as_bytes()).ok_or_else(|| InvalidMode(expr.to_string()))
    }

    /// The mode `mode` (12 bits) becomes; `is_dir` matters for `X`.
    pub(crate) fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let old = (mode & 0o7777) as u16;
        let mut new = old;
        let common = |new: &mut u16, c: &BitCmd, value: u16| {
            if c.cmd2 & CMD2_CLEAR != 0 {
                let clear = if c.cmd2 & CMD2_SET != 0 { RWXO } else { value };
                if c.cmd2 & CMD2_UBITS != 0 {
                    *new &= !((clear << 6) & c.bits);
                }
                if c.cmd2 & CMD2_GBITS != 0 {
                    *new &= !((clear << 3) & c.bits);
                }
                if c.cmd2 & CMD2_OBITS != 0 {
                    *new &= !(clear & c.bits);
                }
            }
            if c.cmd2 & CMD2_SET != 0 {
                if c.cmd2 & CMD2_UBITS != 0 {
                    *new |= (value << 6) & c.bits;
                }
                if c.cmd2 & CMD2_GBITS != 0 {
                    *new |= (value << 3) & c.bits;
                }
                if c.cmd2 & CMD2_OBITS != 0 {
                    *new |= value & c.bits;
                }
            }
        };
        for c in &self.cmds {
            match c.cmd {
                b'u' => {
                    let v = (new & RWXU) >> 6;
                    common(&mut new, c, v);
                }
                b'g' => {
                    let v = (new & RWXG) >> 3;
                    common(&mut new, c, v);
                }
                b'o' => {
                    let v = new & RWXO;
                    common(&mut new, c, v);
                }
                b'+' => new |= c.bits,
                b'-' => new &= !c.bits,
                b'X' if old & (XUSR | XGRP | XOTH) != 0 || is_dir => new |= c.bits,
                _ => {}
            }
        }
        u32::from(new & 0o7777)
    }

    fn add(&mut self, op: u8, who: u16, oparg: u16, mask: u16) {
        let pick = |bits: u16| if who != 0 { who & bits } else { mask & bits };
        match op {
            b'=' => {
                self.cmds.push(BitCmd {
                    cmd: b'-',
                    cmd2: 0,
                    bits: if who != 0 { who } else { STANDARD_BITS },
                });
                self.cmds.push(BitCmd {
                    cmd: b'+',
                    cmd2: 0,
                    bits: pick(oparg),
                });
            }
            b'+' | b'-' | b'X' => self.cmds.push(BitCmd {
                cmd: op,
                cmd2: 0,
                bits: pick(oparg),
            }),
            b'u' | b'g' | b'o' => {
                let (mut cmd2, bits) = if who != 0 {
                    let mut cmd2 = 0;
                    if who & RUSR != 0 {
                        cmd2 |= CMD2_UBITS;
                    }
                    if who & RGRP != 0 {
                        cmd2 |= CMD2_GBITS;
                    }
                    if who & ROTH != 0 {
                        cmd2 |= CMD2_OBITS;
                    }
                    (cmd2, !0u16)
                } else {
                    (CMD2_UBITS | CMD2_GBITS | CMD2_OBITS, mask)
                };
                match oparg {
                    x if x == u16::from(b'+') => cmd2 |= CMD2_SET,
                    x if x == u16::from(b'-') => cmd2 |= CMD2_CLEAR,
                    x if x == u16::from(b'=') => cmd2 |= CMD2_SET | CMD2_CLEAR,
                    _ => {}
                }
                self.cmds.push(BitCmd {
                    cmd: op,
                    cmd2,
                    bits,
                });
            }
            _ => {}
        }
    }

    /// Merges runs of `+`, `-` and `X` commands into at most one of each.
    fn compress(&mut self) {
        let cmds = std::mem::take(&mut self.cmds);
        let mut out = Vec::with_capacity(cmds.len());
        let mut i = 0;
        while i < cmds.len() {
            let c = cmds[i];
            if !matches!(c.cmd, b'+' | b'-' | b'X') {
                out.push(c);
                i += 1;
                continue;
            }
            let (mut set, mut clear, mut x) = (0u16, 0u16, 0u16);
            while i < cmds.len() {
                let c = cmds[i];
                match c.cmd {
                    b'-' => {
                        clear |= c.bits;
                        set &= !c.bits;
                        x &= !c.bits;
                    }
                    b'+' => {
                        set |= c.bits;
                        clear &= !c.bits;
                        x &= !c.bits;
                    }
                    b'X' => x |= c.bits & !set,
                    _ => break,
                }
                i += 1;
            }
            for (cmd, bits) in [(b'-', clear), (b'+', set), (b'X', x)] {
                if bits != 0 {
                    out.push(BitCmd { cmd, cmd2: 0, bits });
                }
            }
        }
        self.cmds = out;
    }
}

fn parse(s: &[u8]) -> Option<ModeSet> {
    let mut set = ModeSet { cmds: Vec::new() };
    let first = *s.first()?;
    if first.is_ascii_digit() {
        // An absolute octal mode (Go's ParseInt(s, 8, 16), then only mode bits).
        let mut value: u32 = 0;
        for &b in s {
            if !(b'0'..=b'7').contains(&b) {
                return None;
            }
            value = value * 8 + u32::from(b - b'0');
            if value > 0o77777 {
                return None;
            }
        }
        if value & !u32::from(STANDARD_BITS | IS_TXT) != 0 {
            return None;
        }
        set.add(b'=', STANDARD_BITS | IS_TXT, value as u16, 0);
        return Some(set);
    }

    let mask: u16 = !0; // umask 0
    let mut s = s;
    let mut equal_op_done = false;
    loop {
        let mut who: u16 = 0;
        loop {
            match s.first()? {
                b'a' => who |= STANDARD_BITS,
                b'u' => who |= IS_UID | RWXU,
                b'g' => who |= IS_GID | RWXG,
                b'o' => who |= RWXO,
                _ => break,
            }
            s = &s[1..];
        }
        loop {
            // `s` is not empty here: checked above, or it starts with a
            // character that is not a comma.
            let op = *s.first()?;
            s = &s[1..];
            match op {
                b'+' | b'-' => {}
                b'=' => equal_op_done = false,
                _ => return None,
            }
            who &= !IS_TXT;
            let (mut perm, mut perm_x) = (0u16, 0u16);
            loop {
                let b = s.first().copied().unwrap_or(0);
                match b {
                    b'r' => perm |= RUSR | RGRP | ROTH,
                    b's' => {
                        if who == 0 || who & !RWXO != 0 {
                            perm |= IS_UID | IS_GID;
                        }
                    }
                    b't' => {
                        if who == 0 || who & !RWXO != 0 {
                            who |= IS_TXT;
                            perm |= IS_TXT;
                        }
                    }
                    b'w' => perm |= WUSR | WGRP | WOTH,
                    b'X' => {
                        if op != b'-' {
                            perm_x = XUSR | XGRP | XOTH;
                        } else {
                            perm |= XUSR | XGRP | XOTH;
                        }
                    }
                    b'x' => perm |= XUSR | XGRP | XOTH,
                    b'u' | b'g' | b'o' => {
                        if perm != 0 {
                            set.add(op, who, perm, mask);
                            perm = 0;
                        }
                        if op == b'=' {
                            equal_op_done = true;
                        }
                        if perm_x != 0 {
                            set.add(b'X', who, perm_x, mask);
                            perm_x = 0;
                        }
                        set.add(b, who, u16::from(op), mask);
                    }
                    _ => {
                        if perm != 0 || (op == b'=' && !equal_op_done) {
                            if op == b'=' {
                                equal_op_done = true;
                            }
                            set.add(op, who, perm, mask);
                        }
                        if perm_x != 0 {
                            set.add(b'X', who, perm_x, mask);
                        }
                        break;
                    }
                }
                s = &s[1..];
            }
            match s.first() {
                None => {
                    set.compress();
                    return Some(set);
                }
                Some(b',') => {
                    s = &s[1..];
                    break;
                }
                Some(_) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(expr: &str, mode: u32, is_dir: bool) -> u32 {
        ModeSet::parse(expr).unwrap().apply(mode, is_dir)
    }

    #[test]
    fn octal_replaces_all_mode_bits() {
        assert_eq!(apply("755", 0o4600, false), 0o755);
        assert_eq!(apply("0644", 0o777, false), 0o644);
        assert_eq!(apply("1777", 0o700, true), 0o1777);
        assert_eq!(apply("4755", 0o644, false), 0o4755);
        for bad in ["8", "17777", "0x7", "7a", "777777"] {
            assert!(ModeSet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn symbolic_clauses() {
        let cases: &[(&str, u32, bool, u32)] = &[
            ("u+x", 0o644, false, 0o744),
            ("go-w", 0o666, false, 0o644),
            ("a+r", 0o200, false, 0o644),
            ("+x", 0o644, false, 0o755),
            ("=rw,+X", 0o644, false, 0o666),
            ("=rw,+X", 0o744, false, 0o777),
            ("=rw,+X", 0o600, true, 0o777),
            ("+X", 0o644, false, 0o644),
            ("+X", 0o600, true, 0o711),
            ("u=rwx,go=rx", 0o000, false, 0o755),
            ("u=rwx,go=u-w", 0o000, false, 0o755),
            ("go=", 0o777, false, 0o700),
            ("g=u", 0o640, false, 0o660),
            ("o=g", 0o654, false, 0o655),
            ("u+s", 0o755, false, 0o4755),
            ("g+s", 0o755, true, 0o2755),
            ("+t", 0o755, true, 0o1755),
            ("o+t", 0o755, true, 0o755),
            ("u-s", 0o4755, false, 0o755),
            ("a=", 0o4777, false, 0o0),
            ("ug+w,o-rwx", 0o444, false, 0o660),
            ("u+x,u-x", 0o700, false, 0o600),
            ("+w-r", 0o444, false, 0o222),
        ];
        for &(expr, mode, is_dir, want) in cases {
            assert_eq!(
                apply(expr, mode, is_dir),
                want,
                "{expr} on {mode:o} (dir: {is_dir})"
            );
        }
    }

    #[test]
    fn syntax_errors() {
        for bad in ["", "u", "z+x", "u+x,", "u+x,,g+w", "+x y", "u*x", ","] {
            assert!(ModeSet::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            ModeSet::parse("u!").unwrap_err().to_string(),
            "invalid chmod parameter: 'u!'"
        );
    }
}
