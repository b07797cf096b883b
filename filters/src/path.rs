//! Request path normalisation: the one spelling of a path that policy
//! matches, routing sees and the upstream receives.
//!
//! A path is normalised once, before matchers and routing, so that
//! `/echo//secret`, `/echo/./secret`, `/echo/%73ecret` and
//! `/echo/x/../secret` are all `/echo/secret` to a `^/echo/secret` rule, and
//! `/v1/../echo/trav` is routed as `/echo/trav`. [`normalize`] takes the path
//! part only (the caller splits the query off at `?`) and applies, in order:
//!
//! - **Length**: a path longer than 8192 bytes is refused.
//! - **Absolute**: the path must start with `/` (the `OPTIONS *` form is refused too).
//! - **Raw characters**: a backslash `\` or a control character (0x00–0x1F,
//!   0x7F) is refused.
//! - **Percent-encoding** (RFC 3986 §2.3, §6.2.2): escapes of unreserved
//!   characters (`A`–`Z`, `a`–`z`, `0`–`9`, `-`, `.`, `_`, `~`) are decoded
//!   (`%73` → `s`, `%2E` → `.`); every other escape stays encoded with its hex
//!   digits upper-cased (`%3a` → `%3A`). An encoded slash (`%2F`), encoded
//!   backslash (`%5C`) or encoded NUL (`%00`) is refused, since it is ambiguous
//!   between segment data and a separator. A malformed escape (`%`, `%4`,
//!   `%G1`) is refused.
//! - **Empty segments**: repeated slashes collapse to one (`//` → `/`).
//! - **Dot segments** (RFC 3986 §5.2.4), after decoding so `%2e%2e` counts:
//!   `.` is dropped and `..` removes the segment before it. A `..` that would
//!   climb above the root (`/../x`) is refused rather than clamped.
//! - **Trailing slash**: kept when the path ends with one; a path ending in a
//!   `.` or `..` segment ends with a slash (`/a/b/.` → `/a/b/`, `/a/b/..` → `/a/`).
//!
//! - **Non-ASCII**: a raw non-ASCII character is percent-encoded as its
//!   UTF-8 bytes (`é` → `%C3%A9`), so `/sécret` and `/s%C3%A9cret` are one
//!   path (and what is forwarded is plain ASCII).
//!
//! A path that is already normal (the common case, `/v1/chat/completions`)
//! is recognised in one byte scan and returned borrowed, without allocating.

use std::borrow::Cow;

/// Longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 8192;

/// Why a path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Longer than [`MAX_PATH_LEN`] bytes.
    #[error("path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    /// Empty, `*`, or anything else not starting with `/`.
    #[error("path does not start with `/`")]
    NotAbsolute,
    /// A raw `\`.
    #[error("path contains a backslash")]
    Backslash,
    /// A raw control character (0x00–0x1F or 0x7F).
    #[error("path contains a control character")]
    ControlCharacter,
    /// `%2F`: an encoded `/`.
    #[error("path contains an encoded slash (%2F)")]
    EncodedSlash,
    /// `%5C`: an encoded `\`.
    #[error("path contains an encoded backslash (%5C)")]
    EncodedBackslash,
    /// `%00`: an encoded NUL.
    #[error("path contains an encoded NUL (%00)")]
    EncodedNul,
    /// `%` not followed by two hex digits.
    #[error("path contains a malformed percent-escape")]
    InvalidPercentEncoding,
    /// A `..` segment with nothing left to remove.
    #[error("path climbs above the root with `..`")]
    AboveRoot,
}

/// The normal form of `path` (see the module doc for the rules): borrowed
/// when `path` is already normal, or why it is refused.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_normal(path.as_bytes()) {
        return Ok(Cow::Borrowed(path));
    }
    normalize_slow(path).map(Cow::Owned)
}

/// One scan: no `%`, `\`, control character, empty segment (`//`) or dot
/// segment (`/.` or `/..` followed by `/` or the end). Assumes a leading `/`.
fn is_normal(bytes: &[u8]) -> bool {
    let at = |i: usize| bytes.get(i).copied();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'%' | b'\\' | 0x00..=0x1F | 0x7F..=0xFF => return false,
            b'/' => match (at(i + 1), at(i + 2), at(i + 3)) {
                (Some(b'/'), _, _)
                | (Some(b'.'), None | Some(b'/'), _)
                | (Some(b'.'), Some(b'.'), None | Some(b'/')) => return false,
                _ => {}
            },
            _ => {}
        }
    }
    true
}

/// The full normalisation, for paths [`is_normal`] did not accept.
fn normalize_slow(path: &str) -> Result<String, PathError> {
    let mut out = String::with_capacity(path.len());
    let mut seg = String::new();
    let mut trailing_slash = false;
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(raw) = segments.next() {
        let last = segments.peek().is_none();
        decode_segment(raw, &mut seg)?;
        match seg.as_str() {
            "" | "." => trailing_slash = last,
            ".." => {
                let parent = out.rfind('/').ok_or(PathError::AboveRoot)?;
                out.truncate(parent);
                trailing_slash = last;
            }
            s => {
                out.push('/');
                out.push_str(s);
                trailing_slash = false;
            }
        }
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

/// Writes `raw` (one segment, no `/`) into `seg` with escapes of unreserved
/// characters decoded and the others upper-cased; refuses what the policy refuses.
fn decode_segment(raw: &str, seg: &mut String) -> Result<(), PathError> {
    seg.clear();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                let hex = |c: Option<char>| c.filter(char::is_ascii_hexdigit);
                let (Some(hi), Some(lo)) = (hex(chars.next()), hex(chars.next())) else {
                    return Err(PathError::InvalidPercentEncoding);
                };
                let value = (hex_value(hi) << 4) | hex_value(lo);
                match value {
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::EncodedBackslash),
                    0 => return Err(PathError::EncodedNul),
                    v if is_unreserved(v) => seg.push(char::from(v)),
                    _ => {
                        seg.push('%');
                        seg.push(hi.to_ascii_uppercase());
                        seg.push(lo.to_ascii_uppercase());
                    }
                }
            }
            '\\' => return Err(PathError::Backslash),
            c if c.is_ascii_control() => return Err(PathError::ControlCharacter),
            c if !c.is_ascii() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    seg.push('%');
                    seg.push(char::from(HEX[usize::from(b >> 4)]));
                    seg.push(char::from(HEX[usize::from(b & 0xF)]));
                }
            }
            c => seg.push(c),
        }
    }
    Ok(())
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The value of an ASCII hex digit (0 for anything else, never reached).
fn hex_value(c: char) -> u8 {
    c.to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
        .unwrap_or(0)
}

/// RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~".
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
