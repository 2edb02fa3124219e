//! Path expressions that point at one node of a YAML document.
//!
//! The grammar, documented in the README, is small on purpose: dotted keys,
//! `[N]` indexes, `[key=value]` selectors that pick a sequence item by one of
//! its fields, and `["quoted key"]` for keys holding `.`, `[` or `=`. A leading
//! `.` or `$.` is accepted so paths copied from yq or JSONPath work unchanged.

use std::fmt;

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index; negative counts from the end (`[-1]` is the last item).
    Index(i64),
    /// The sequence item that is a mapping whose `key` is the scalar `value`.
    Select { key: String, value: String },
}

/// A parsed path such as `spec.template.spec.containers[name=app].image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    segments: Vec<Segment>,
}

/// Why a path expression could not be parsed; `offset` is a character index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    pub path: String,
    pub offset: usize,
    pub reason: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid path `{}` at character {}: {}",
            self.path,
            self.offset + 1,
            self.reason
        )
    }
}

impl std::error::Error for PathError {}

impl Path {
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn from_segments(segments: Vec<Segment>) -> Path {
        Path { segments }
    }

    pub fn parse(text: &str) -> Result<Path, PathError> {
        Parser {
            text,
            chars: text.chars().collect(),
            pos: 0,
        }
        .parse()
    }
}

impl std::str::FromStr for Path {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Path, PathError> {
        Path::parse(s)
    }
}

struct Parser<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl Parser<'_> {
    fn error<T>(&self, reason: impl Into<String>) -> Result<T, PathError> {
        Err(PathError {
            path: self.text.to_string(),
            offset: self.pos,
            reason: reason.into(),
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn parse(mut self) -> Result<Path, PathError> {
        if self.text.trim().is_empty() {
            return self.error("the path is empty; write e.g. `image.tag`");
        }
        if self.text.starts_with("$.") {
            self.pos = 2;
        } else if self.text.starts_with('.') {
            self.pos = 1;
        }
        let mut segments = Vec::new();
        let mut need_key = true;
        while let Some(c) = self.peek() {
            match c {
                '[' => {
                    self.pos += 1;
                    segments.push(self.bracket()?);
                    need_key = false;
                }
                '.' if !need_key => {
                    self.pos += 1;
                    need_key = true;
                    if self.peek().is_none() {
                        return self.error("the path ends with `.`");
                    }
                }
                '.' => return self.error("empty key between dots"),
                _ if need_key => {
                    segments.push(Segment::Key(self.bare_key()?));
                    need_key = false;
                }
                _ => return self.error(format!("expected `.` or `[` before `{c}`")),
            }
        }
        if segments.is_empty() {
            return self.error("the path names no key");
        }
        Ok(Path { segments })
    }

    fn bare_key(&mut self) -> Result<String, PathError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == '.' || c == '[' {
                break;
            }
            if c == ']' {
                return self.error("unmatched `]`");
            }
            self.pos += 1;
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    /// After `[`: an index, a quoted key, or a `key=value` selector, then `]`.
    fn bracket(&mut self) -> Result<Segment, PathError> {
        self.skip_spaces();
        let segment = match self.peek() {
            Some('"') | Some('\'') => Segment::Key(self.quoted()?),
            Some(c) if c.is_ascii_digit() || c == '-' => {
                let start = self.pos;
                self.pos += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                let digits: String = self.chars[start..self.pos].iter().collect();
                match digits.parse::<i64>() {
                    Ok(n) => Segment::Index(n),
                    Err(_) => {
                        self.pos = start;
                        return self.error("expected an index such as `[0]` or `[-1]`");
                    }
                }
            }
            Some(_) => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != '=' && c != ']') {
                    self.pos += 1;
                }
                let key: String = self.chars[start..self.pos].iter().collect();
                let key = key.trim().to_string();
                if self.peek() != Some('=') {
                    self.pos = start;
                    return self.error(
                        "expected `[N]`, `[\"key\"]` or `[field=value]` (quote keys in brackets)",
                    );
                }
                if key.is_empty() {
                    return self.error("selector has no field name before `=`");
                }
                self.pos += 1;
                self.skip_spaces();
                let value = match self.peek() {
                    Some('"') | Some('\'') => self.quoted()?,
                    _ => {
                        let vstart = self.pos;
                        while self.peek().is_some_and(|c| c != ']') {
                            self.pos += 1;
                        }
                        let v: String = self.chars[vstart..self.pos].iter().collect();
                        v.trim().to_string()
                    }
                };
                Segment::Select { key, value }
            }
            None => return self.error("unclosed `[`"),
        };
        self.skip_spaces();
        match self.peek() {
            Some(']') => {
                self.pos += 1;
                Ok(segment)
            }
            Some(c) => self.error(format!("expected `]`, found `{c}`")),
            None => self.error("unclosed `[`"),
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(' ') {
            self.pos += 1;
        }
    }

    /// A quoted string: `"..."` with JSON escapes, or `'...'` where `''` is a quote.
    fn quoted(&mut self) -> Result<String, PathError> {
        let quote = self.peek().unwrap_or('"');
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                self.pos = open;
                return self.error("unterminated quoted key");
            };
            self.pos += 1;
            if c == quote {
                if quote == '\'' && self.peek() == Some('\'') {
                    self.pos += 1;
                    out.push('\'');
                    continue;
                }
                return Ok(out);
            }
            if c == '\\' && quote == '"' {
                out.push(self.escape()?);
            } else {
                out.push(c);
            }
        }
    }

    fn escape(&mut self) -> Result<char, PathError> {
        let Some(c) = self.peek() else {
            return self.error("unterminated escape");
        };
        self.pos += 1;
        Ok(match c {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hex: String = self.chars.iter().skip(self.pos).take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32);
                match code {
                    Some(ch) => {
                        self.pos += 4;
                        ch
                    }
                    None => return self.error("`\\u` needs four hex digits"),
                }
            }
            other => {
                self.pos -= 1;
                return self.error(format!("unknown escape `\\{other}`"));
            }
        })
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(k) if is_bare(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Key(k) => write!(f, "[{}]", json_quote(k))?,
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Select { key, value } => {
                    if is_bare(value) && !value.contains(' ') {
                        write!(f, "[{key}={value}]")?
                    } else {
                        write!(f, "[{key}={}]", json_quote(value))?
                    }
                }
            }
        }
        Ok(())
    }
}

fn is_bare(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(['"', '\'', '$', ' ', '-'])
        && !key.contains(['.', '[', ']', '='])
}

/// A JSON string literal: the path grammar's double-quoted keys.
fn json_quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(text: &str) -> Vec<Segment> {
        Path::parse(text).unwrap().segments
    }
    fn key(k: &str) -> Segment {
        Segment::Key(k.into())
    }

    #[test]
    fn dotted_keys() {
        assert_eq!(segs("a.b.c"), vec![key("a"), key("b"), key("c")]);
        assert_eq!(segs(".a.b"), vec![key("a"), key("b")]);
        assert_eq!(segs("$.a"), vec![key("a")]);
    }

    #[test]
    fn indexes_and_selectors() {
        assert_eq!(
            segs("spec.containers[0].image"),
            vec![
                key("spec"),
                key("containers"),
                Segment::Index(0),
                key("image")
            ]
        );
        assert_eq!(segs("list[-1]"), vec![key("list"), Segment::Index(-1)]);
        let sel = Segment::Select {
            key: "name".into(),
            value: "app".into(),
        };
        assert_eq!(
            segs("containers[name=app]"),
            vec![key("containers"), sel.clone()]
        );
        assert_eq!(
            segs("containers[name=\"app\"]"),
            vec![key("containers"), sel.clone()]
        );
        assert_eq!(
            segs("containers[ name = 'app' ]"),
            vec![key("containers"), sel]
        );
        assert_eq!(
            segs("c[name=\"a]b\"].image"),
            vec![
                key("c"),
                Segment::Select {
                    key: "name".into(),
                    value: "a]b".into()
                },
                key("image")
            ]
        );
    }

    #[test]
    fn quoted_keys() {
        assert_eq!(
            segs("metadata.annotations[\"prometheus.io/port\"]"),
            vec![
                key("metadata"),
                key("annotations"),
                key("prometheus.io/port")
            ]
        );
        assert_eq!(segs("a['it''s']"), vec![key("a"), key("it's")]);
        assert_eq!(segs("[\"a\\\"b\\u00e9\"]"), vec![key("a\"bé")]);
        assert_eq!(segs("[\"x\"][\"y\"]"), vec![key("x"), key("y")]);
    }

    #[test]
    fn unicode_keys() {
        assert_eq!(segs("été.naïve"), vec![key("été"), key("naïve")]);
    }

    #[test]
    fn errors_name_the_place() {
        for (text, want) in [
            ("", "empty"),
            ("a..b", "empty key"),
            ("a.", "ends with"),
            ("a[", "unclosed"),
            ("a[0", "unclosed"),
            ("a[x]", "expected `[N]`"),
            ("a[\"x]", "unterminated"),
            ("a[0]b", "expected `.` or `[`"),
            ("a]", "unmatched"),
            ("a[=x]", "no field name"),
            ("a[\"\\q\"]", "unknown escape"),
        ] {
            let err = Path::parse(text).unwrap_err();
            assert!(
                err.to_string().contains(want),
                "{text:?}: {err} should contain {want:?}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "a.b.c",
            "spec.containers[name=app].image",
            "list[0][-1]",
            "metadata.annotations[\"prometheus.io/port\"]",
            "c[name=\"a b\"]",
        ] {
            let path = Path::parse(text).unwrap();
            assert_eq!(path.to_string(), text);
            assert_eq!(Path::parse(&path.to_string()).unwrap(), path);
        }
    }
}
