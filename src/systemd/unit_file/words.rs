/*!
Splitting a setting's value into words, as systemd's `extract_first_word()`
does (`src/basic/extract-word.c`, the same in 252 and 257), with the C
escapes of `cunescape_one()` (`src/basic/escape.c`).

Only the flags the settings this module reads pass are modelled; there is
no `EXTRACT_RELAX`, so an unbalanced quote or a trailing backslash is an
error, as it is for those settings in systemd.
*/

/// `WHITESPACE` in systemd's `src/basic/string-util.h`.
pub const WHITESPACE: &[u8] = b" \t\n\r";

/// The `EXTRACT_*` flags that matter here.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    /// `EXTRACT_UNQUOTE`: `'...'` and `"..."` group, and the quotes go.
    pub unquote: bool,
    /// `EXTRACT_RETAIN_ESCAPE`: a backslash is an ordinary character.
    pub retain_escape: bool,
    /// `EXTRACT_CUNESCAPE`: `\n`, `\x41`, `\u00e9`, ... are decoded.
    pub cunescape: bool,
    /// `EXTRACT_UNESCAPE_SEPARATORS`: `\:` (a separator) and `\\` stand
    /// for themselves.
    pub unescape_separators: bool,
    /// `EXTRACT_DONT_COALESCE_SEPARATORS`: two separators in a row
    /// enclose an empty word.
    pub dont_coalesce: bool,
}

/// Why a value could not be split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyntaxError {
    UnbalancedQuotes,
    TrailingBackslash,
    BadEscape,
    /// A `\x..` escape made bytes that are not UTF-8.
    NotUtf8,
}

impl SyntaxError {
    pub fn describe(self) -> &'static str {
        match self {
            SyntaxError::UnbalancedQuotes => "a quote is not closed",
            SyntaxError::TrailingBackslash => "it ends in a lone backslash",
            SyntaxError::BadEscape => "it has an invalid backslash escape",
            SyntaxError::NotUtf8 => "an escape in it makes invalid UTF-8",
        }
    }
}

/// A cursor over a value, as the `const char **p` systemd passes around:
/// `None` once the value is used up (systemd's `*p = NULL`).
#[derive(Clone, Copy, Debug)]
pub struct Cursor<'a> {
    text: &'a [u8],
    at: Option<usize>,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Cursor<'a> {
        Cursor { text: text.as_bytes(), at: Some(0) }
    }

    /// Whether the byte just before the cursor is `byte`: the BindPaths=
    /// parser's `p[-1] == ':'`, which asks which separator ended a word.
    pub fn after(&self, byte: u8) -> bool {
        match self.at {
            Some(at) if at > 0 => self.text[at - 1] == byte,
            _ => false,
        }
    }

    /// Where the cursor is, `None` at the end.
    pub fn offset(&self) -> Option<usize> {
        self.at
    }

    fn byte(&self, at: usize) -> u8 {
        self.text.get(at).copied().unwrap_or(0)
    }

    /// The next word, `Ok(None)` when there is none left.
    pub fn next_word(
        &mut self,
        separators: &[u8],
        flags: Flags,
    ) -> Result<Option<String>, SyntaxError> {
        match self.next_bytes(separators, flags)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| SyntaxError::NotUtf8),
        }
    }

    fn next_bytes(
        &mut self,
        separators: &[u8],
        flags: Flags,
    ) -> Result<Option<Vec<u8>>, SyntaxError> {
        let Some(mut at) = self.at else {
            return Ok(None);
        };
        let is_separator = |c: u8| c != 0 && separators.contains(&c);
        // With DONT_COALESCE a word exists as soon as we start, so that a
        // separator right away yields an empty word.
        let mut word: Option<Vec<u8>> =
            if flags.dont_coalesce { Some(Vec::new()) } else { None };

        loop {
            let c = self.byte(at);
            if c == 0 {
                self.at = None;
                return Ok(word);
            }
            if !is_separator(c) {
                break;
            }
            at += 1;
            if flags.dont_coalesce {
                self.at = Some(at);
                return Ok(word);
            }
        }

        let mut out = word.take().unwrap_or_default();
        let mut quote = 0u8;
        let mut backslash = false;
        loop {
            let c = self.byte(at);
            if backslash {
                if c == 0 {
                    return Err(SyntaxError::TrailingBackslash);
                }
                if flags.cunescape || flags.unescape_separators {
                    let decoded = if flags.cunescape {
                        cunescape_one(&self.text[at..])
                    } else {
                        None
                    };
                    if let Some((bytes, len)) = decoded {
                        out.extend_from_slice(&bytes);
                        at += len - 1;
                    } else if flags.unescape_separators
                        && (is_separator(c) || c == b'\\')
                    {
                        out.push(c);
                    } else {
                        return Err(SyntaxError::BadEscape);
                    }
                } else {
                    out.push(c);
                }
                backslash = false;
            } else if quote != 0 {
                loop {
                    let c = self.byte(at);
                    if c == 0 {
                        return Err(SyntaxError::UnbalancedQuotes);
                    }
                    if c == quote {
                        // Only UNQUOTE ever opens a quote here.
                        quote = 0;
                        break;
                    }
                    if c == b'\\' && !flags.retain_escape {
                        backslash = true;
                        break;
                    }
                    out.push(c);
                    at += 1;
                }
            } else {
                loop {
                    let c = self.byte(at);
                    if c == 0 {
                        self.at = None;
                        return Ok(Some(out));
                    }
                    if (c == b'\'' || c == b'"') && flags.unquote {
                        quote = c;
                        break;
                    }
                    if c == b'\\' && !flags.retain_escape {
                        backslash = true;
                        break;
                    }
                    if is_separator(c) {
                        at += 1;
                        if !flags.dont_coalesce {
                            while is_separator(self.byte(at)) {
                                at += 1;
                            }
                            if self.byte(at) == 0 {
                                self.at = None;
                                return Ok(Some(out));
                            }
                        }
                        self.at = Some(at);
                        return Ok(Some(out));
                    }
                    out.push(c);
                    at += 1;
                }
            }
            at += 1;
        }
    }
}

/// Splits a whole value into words.
pub fn split(
    text: &str,
    separators: &[u8],
    flags: Flags,
) -> Result<Vec<String>, SyntaxError> {
    many(text, usize::MAX, separators, flags)
}

/// `extract_many_words()`: up to `n` words; fewer when the value ends.
pub fn many(
    text: &str,
    n: usize,
    separators: &[u8],
    flags: Flags,
) -> Result<Vec<String>, SyntaxError> {
    let mut cursor = Cursor::new(text);
    let mut words = Vec::new();
    while words.len() < n {
        match cursor.next_word(separators, flags)? {
            Some(word) => words.push(word),
            None => break,
        }
    }
    Ok(words)
}

/// One C escape after its backslash: the bytes it stands for and how many
/// input bytes it used, or `None` if it is not a valid escape. NUL is
/// refused, as systemd refuses it.
fn cunescape_one(p: &[u8]) -> Option<(Vec<u8>, usize)> {
    let simple = |b: u8| Some((vec![b], 1));
    match *p.first()? {
        b'a' => simple(0x07),
        b'b' => simple(0x08),
        b'f' => simple(0x0c),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(0x0b),
        b'\\' => simple(b'\\'),
        b'"' => simple(b'"'),
        b'\'' => simple(b'\''),
        // "an extension of the XDG syntax files"
        b's' => simple(b' '),
        b'x' => {
            let value = hex(p.get(1..3)?)?;
            // A byte, copied as is even if it is not ASCII ("eight_bit").
            (value != 0).then(|| (vec![value as u8], 3))
        }
        b'u' => unicode(hex(p.get(1..5)?)?, 5),
        b'U' => unicode(hex(p.get(1..9)?)?, 9),
        b'0'..=b'7' => {
            let digits = p.get(0..3)?;
            let mut value = 0u32;
            for &d in digits {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                value = value * 8 + u32::from(d - b'0');
            }
            (value != 0 && value <= 255).then(|| (vec![value as u8], 3))
        }
        _ => None,
    }
}

fn hex(digits: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

fn unicode(value: u32, len: usize) -> Option<(Vec<u8>, usize)> {
    let c = char::from_u32(value).filter(|&c| c != '\0')?;
    let mut buf = [0u8; 4];
    Some((c.encode_utf8(&mut buf).as_bytes().to_vec(), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNQUOTE: Flags = Flags {
        unquote: true,
        retain_escape: false,
        cunescape: false,
        unescape_separators: false,
        dont_coalesce: false,
    };

    fn words(text: &str, seps: &[u8], flags: Flags) -> Vec<String> {
        split(text, seps, flags).unwrap()
    }

    #[test]
    fn whitespace_and_quotes() {
        assert_eq!(words("a  b\tc", WHITESPACE, UNQUOTE), ["a", "b", "c"]);
        assert_eq!(
            words(r#""a b" 'c d' e"f g"h"#, WHITESPACE, UNQUOTE),
            ["a b", "c d", "ef gh"]
        );
        assert_eq!(words(r#""""#, WHITESPACE, UNQUOTE), [""]);
        assert_eq!(words("  ", WHITESPACE, UNQUOTE), Vec::<String>::new());
        assert_eq!(
            split(r#""a b"#, WHITESPACE, UNQUOTE),
            Err(SyntaxError::UnbalancedQuotes)
        );
    }

    #[test]
    fn backslashes() {
        // Without CUNESCAPE a backslash takes the next byte literally.
        assert_eq!(words(r"a\ b c", WHITESPACE, UNQUOTE), ["a b", "c"]);
        assert_eq!(
            split(r"a\", WHITESPACE, UNQUOTE),
            Err(SyntaxError::TrailingBackslash)
        );
        let retain = Flags { retain_escape: true, ..UNQUOTE };
        assert_eq!(words(r"a\x2db c", WHITESPACE, retain), [r"a\x2db", "c"]);
        let c = Flags { cunescape: true, ..Flags::default() };
        assert_eq!(words(r"a\x2db\s\u00e9", b":", c), ["a-b é"]);
        assert_eq!(split(r"a\q", b":", c), Err(SyntaxError::BadEscape));
        assert_eq!(split(r"a\x00", b":", c), Err(SyntaxError::BadEscape));
        assert_eq!(split(r"a\xff", b":", c), Err(SyntaxError::NotUtf8));
        let seps = Flags { unescape_separators: true, ..c };
        assert_eq!(words(r"a\:b:c", b":", seps), ["a:b", "c"]);
    }

    #[test]
    fn coalescing() {
        let c = Flags::default();
        assert_eq!(words("a::b:", b":", c), ["a", "b"]);
        assert_eq!(words(":a", b":", c), ["a"]);
        let dont = Flags { dont_coalesce: true, ..c };
        assert_eq!(words("a::b", b":", dont), ["a", "", "b"]);
        assert_eq!(words(":a", b":", dont), ["", "a"]);
        assert_eq!(words("a:", b":", dont), ["a", ""]);
        assert_eq!(many("a:b:c:d", 3, b":", dont).unwrap(), ["a", "b", "c"]);
        assert_eq!(many("a:b:c:d", 2, b":", c).unwrap(), ["a", "b"]);
    }

    #[test]
    fn which_separator_ended_a_word() {
        let flags = Flags { dont_coalesce: true, ..UNQUOTE };
        let mut cursor = Cursor::new("/a:/b /c");
        let seps = b": \t\n\r";
        assert_eq!(cursor.next_word(seps, flags).unwrap().unwrap(), "/a");
        assert!(cursor.after(b':'));
        assert_eq!(cursor.next_word(seps, flags).unwrap().unwrap(), "/b");
        assert!(!cursor.after(b':'));
        assert_eq!(cursor.next_word(seps, flags).unwrap().unwrap(), "/c");
        assert!(!cursor.after(b':'));
        assert_eq!(cursor.next_word(seps, flags).unwrap(), None);
    }
}
