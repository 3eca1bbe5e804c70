//! Tokens of the Exec language. `/` starts a regular expression only right
//! after `=~` or `!~` (elsewhere it divides), which is how NXLog reads it.

use crate::value::{Value, Zone};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Field(String),
    Capture(usize),
    Lit(Value),
    Regex {
        pattern: String,
        flags: String,
    },
    Subst {
        pattern: String,
        replacement: String,
        flags: String,
    },
    Ident(String),
    Op(&'static str),
    Eof,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// A lexing error at a byte offset.
#[derive(Debug)]
pub(crate) struct LexError {
    pub offset: usize,
    pub message: String,
}

const OPS: [&str; 23] = [
    "==", "!=", "=~", "!~", "<=", ">=", "->", "<", ">", "=", "+", "-", "*", "/", "%", "(", ")",
    "{", "}", ",", ";", "!", "&",
];

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}
fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}
fn is_field_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
}

pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, LexError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out: Vec<Token> = Vec::new();
    let err = |offset: usize, message: String| Err(LexError { offset, message });
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let after_match = matches!(
            out.last(),
            Some(Token {
                tok: Tok::Op("=~" | "!~"),
                ..
            })
        );
        let tok = if c == b'$' {
            i += 1;
            if i < b.len() && b[i] == b'{' {
                let Some(close) = src[i..].find('}') else {
                    return err(start, "unterminated '${' field name (expected '}')".into());
                };
                let name = src[i + 1..i + close].trim().to_string();
                if name.is_empty() {
                    return err(start, "empty field name in '${}'".into());
                }
                i += close + 1;
                Tok::Field(name)
            } else if i < b.len() && b[i].is_ascii_digit() {
                let s = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                match src[s..i].parse::<usize>() {
                    Ok(n) if n < 1000 => Tok::Capture(n),
                    _ => return err(start, format!("invalid capture group '${}'", &src[s..i])),
                }
            } else {
                let s = i;
                while i < b.len() && is_field_char(b[i]) {
                    i += 1;
                }
                if s == i {
                    return err(start, "expected a field name after '$'".into());
                }
                Tok::Field(src[s..i].to_string())
            }
        } else if c == b'\'' {
            let Some(close) = src[i + 1..].find('\'') else {
                return err(start, "unterminated string (missing closing ')".into());
            };
            let s = src[i + 1..i + 1 + close].to_string();
            i += close + 2;
            Tok::Lit(Value::String(s))
        } else if c == b'"' {
            let (s, next) = double_quoted(src, i)?;
            i = next;
            Tok::Lit(Value::String(s))
        } else if after_match && c == b'/' {
            let (pattern, next) = regex_part(src, i + 1, start)?;
            let (flags, next) = flags(src, next);
            i = next;
            Tok::Regex { pattern, flags }
        } else if after_match && c == b's' && b.get(i + 1) == Some(&b'/') {
            let (pattern, next) = regex_part(src, i + 2, start)?;
            let (replacement, next) = regex_part(src, next, start)?;
            let (flags, next) = flags(src, next);
            i = next;
            Tok::Subst {
                pattern,
                replacement,
                flags,
            }
        } else if c.is_ascii_digit() {
            if let Some((lit, len)) = datetime_literal(&src[i..]) {
                i += len;
                lit
            } else {
                let (v, next) = integer(src, i)?;
                i = next;
                Tok::Lit(Value::Integer(v))
            }
        } else if is_ident_start(c) {
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            let w = &src[start..i];
            if w.eq_ignore_ascii_case("true") {
                Tok::Lit(Value::Boolean(true))
            } else if w.eq_ignore_ascii_case("false") {
                Tok::Lit(Value::Boolean(false))
            } else if w.eq_ignore_ascii_case("undef") {
                Tok::Lit(Value::Undef)
            } else {
                Tok::Ident(w.to_string())
            }
        } else if let Some(op) = OPS.iter().find(|op| src[i..].starts_with(**op)) {
            i += op.len();
            if *op == "!" || *op == "&" {
                return err(start, format!("unexpected '{op}' (use 'not' / 'and')"));
            }
            Tok::Op(op)
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return err(start, format!("unexpected character '{ch}'"));
        };
        out.push(Token { tok, start, end: i });
    }
    out.push(Token {
        tok: Tok::Eof,
        start: src.len(),
        end: src.len(),
    });
    Ok(out)
}

/// NXLog double-quote escapes: `\\ \" \n \r \t \b \xHH`; any other backslash
/// is kept as written (so `"C:\Windows"` stays intact, but `"C:\test"` holds a tab).
fn double_quoted(src: &str, open: usize) -> Result<(String, usize), LexError> {
    let b = src.as_bytes();
    let mut i = open + 1;
    let mut out = String::new();
    loop {
        let Some(rel) = src[i..].find(['"', '\\']) else {
            return Err(LexError {
                offset: open,
                message: "unterminated string (missing closing \")".into(),
            });
        };
        out.push_str(&src[i..i + rel]);
        i += rel;
        if b[i] == b'"' {
            return Ok((out, i + 1));
        }
        let Some(&e) = b.get(i + 1) else {
            return Err(LexError {
                offset: open,
                message: "unterminated string (missing closing \")".into(),
            });
        };
        i += 2;
        match e {
            b'\\' => out.push('\\'),
            b'"' => out.push('"'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'b' => out.push('\u{8}'),
            b'x' => {
                let hex = src
                    .get(i..i + 2)
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
                match hex {
                    Some(h) => {
                        out.push(char::from(u8::from_str_radix(h, 16).unwrap_or(0)));
                        i += 2;
                    }
                    None => {
                        return Err(LexError {
                            offset: i - 2,
                            message: "invalid \\x escape (expected two hex digits, e.g. \\x41)"
                                .into(),
                        })
                    }
                }
            }
            _ => {
                out.push('\\');
                i -= 1; // keep the following character as it is
            }
        }
    }
}

/// One `/.../` section of a regex or substitution; `\/` stands for `/`.
fn regex_part(src: &str, mut i: usize, start: usize) -> Result<(String, usize), LexError> {
    let b = src.as_bytes();
    let mut out = String::new();
    while i < b.len() {
        match b[i] {
            b'/' => return Ok((out, i + 1)),
            b'\\' if b.get(i + 1) == Some(&b'/') => {
                out.push('/');
                i += 2;
            }
            b'\\' if i + 1 < b.len() => {
                out.push('\\');
                let ch = src[i + 1..].chars().next().unwrap_or('\\');
                out.push(ch);
                i += 1 + ch.len_utf8();
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    Err(LexError {
        offset: start,
        message: "unterminated regular expression (missing closing /)".into(),
    })
}

fn flags(src: &str, mut i: usize) -> (String, usize) {
    let s = i;
    while i < src.len() && src.as_bytes()[i].is_ascii_alphabetic() {
        i += 1;
    }
    (src[s..i].to_string(), i)
}

fn integer(src: &str, start: usize) -> Result<(i64, usize), LexError> {
    let b = src.as_bytes();
    let mut i = start;
    let overflow = || LexError {
        offset: start,
        message: "integer literal out of range".into(),
    };
    let mut v: i64 = if src[i..].starts_with("0x") || src[i..].starts_with("0X") {
        i += 2;
        let s = i;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        if s == i {
            return Err(LexError {
                offset: start,
                message: "invalid hexadecimal literal".into(),
            });
        }
        i64::from_str_radix(&src[s..i], 16).map_err(|_| overflow())?
    } else {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        src[start..i].parse().map_err(|_| overflow())?
    };
    // K/M/G suffixes (1024-based), e.g. `file_size(...) >= 5M`
    if let Some(&s) = b.get(i) {
        let mult = match s {
            b'K' | b'k' => Some(1024),
            b'M' | b'm' => Some(1024 * 1024),
            b'G' | b'g' => Some(1024 * 1024 * 1024),
            _ => None,
        };
        if let Some(m) = mult {
            if !b.get(i + 1).is_some_and(|c| is_ident(*c)) {
                v = v.checked_mul(m).ok_or_else(overflow)?;
                i += 1;
            }
        }
    }
    if b.get(i).is_some_and(|c| is_ident(*c) || *c == b'.') {
        return Err(LexError {
            offset: start,
            message: format!(
                "invalid number '{}'",
                &src[start
                    ..src[i..]
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
                        .map_or(src.len(), |e| i + e)]
            ),
        });
    }
    Ok((v, i))
}

/// `YYYY-MM-DD hh:mm:ss[.f][Z|+hh:mm]` or with `T`.
fn datetime_literal(s: &str) -> Option<(Tok, usize)> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let ok = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b' ' || b[10] == b'T')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !ok {
        return None;
    }
    let mut end = 19;
    if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end += 1;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    if b.get(end) == Some(&b'Z') {
        end += 1;
    } else if matches!(b.get(end), Some(b'+' | b'-'))
        && digits(end + 1..end + 3)
        && b.get(end + 3) == Some(&b':')
        && digits(end + 4..end + 6)
    {
        end += 6;
    }
    let text = &s[..end];
    // Zone-less literals are local time, like NXLog; resolved here once.
    let d = crate::value::parse_datetime(text, Zone::Local)?;
    Some((Tok::Lit(Value::DateTime(d)), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn basic_tokens() {
        assert_eq!(
            toks("$a = 'x\\y' + \"q\\n\\\"\\x41\\d\";"),
            vec![
                Tok::Field("a".into()),
                Tok::Op("="),
                Tok::Lit(Value::String("x\\y".into())),
                Tok::Op("+"),
                Tok::Lit(Value::String("q\n\"A\\d".into())),
                Tok::Op(";"),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("5M 0x10 1k")[..3],
            [
                Tok::Lit(Value::Integer(5 << 20)),
                Tok::Lit(Value::Integer(16)),
                Tok::Lit(Value::Integer(1024))
            ]
        );
        assert_eq!(
            toks("$x =~ /a\\/b\\d/i")[2],
            Tok::Regex {
                pattern: "a/b\\d".into(),
                flags: "i".into()
            }
        );
        assert_eq!(
            toks("$x =~ s/a/b/g")[2],
            Tok::Subst {
                pattern: "a".into(),
                replacement: "b".into(),
                flags: "g".into()
            }
        );
        assert_eq!(toks("4 / 2")[1], Tok::Op("/"));
        assert_eq!(
            toks("${a b} $1")[..2],
            [Tok::Field("a b".into()), Tok::Capture(1)]
        );
        assert!(matches!(
            toks("2024-01-02 03:04:05")[0],
            Tok::Lit(Value::DateTime(_))
        ));
        assert!(matches!(
            toks("TRUE undef")[..2],
            [Tok::Lit(Value::Boolean(true)), Tok::Lit(Value::Undef)]
        ));
    }

    #[test]
    fn lex_errors() {
        for bad in [
            "'abc",
            "\"abc",
            "$",
            "$x =~ /abc",
            "\"\\xZZ\"",
            "99999999999999999999",
            "12abc",
            "@",
            "!x",
        ] {
            assert!(tokenize(bad).is_err(), "{bad}");
        }
    }
}
