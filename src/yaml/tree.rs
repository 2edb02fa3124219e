//! The light tree a YAML stream parses into ([`parse`](super::parse)): nodes
//! whose scalars know where they start in the source bytes, and the one error
//! type of the engine. The tree is only ever read: nothing here serializes YAML.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::rc::Rc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

impl Style {
    fn describe(self) -> &'static str {
        match self {
            Style::Plain => "plain scalar",
            Style::SingleQuoted => "single-quoted scalar",
            Style::DoubleQuoted => "double-quoted scalar",
            Style::Literal => "literal block scalar (`|`)",
            Style::Folded => "folded block scalar (`>`)",
        }
    }
}

/// A scalar as parsed: its loaded value and where its text starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    pub value: String,
    pub style: Style,
    /// Byte offset of the first character of the scalar's text (the opening
    /// quote for quoted styles), after any anchor or tag.
    pub start: usize,
    /// Inside a flow collection (`{...}` / `[...]`), where `,[]{}` end a plain scalar.
    pub flow: bool,
    /// The explicit tag before the value, resolved (`!!int` is
    /// `tag:yaml.org,2002:int`, the non-specific `!` is `!`).
    pub tag: Option<String>,
    /// An empty value (`key:` with nothing after it, maybe after an anchor or
    /// a tag), which loads as null (`""` with `!!str`). `start` is then where
    /// a value is inserted: after the key's `:` and any properties on its
    /// line, or [`Scalar::NOWHERE`] when there is no such place (a `-` item).
    pub empty: bool,
}

impl Scalar {
    pub const NOWHERE: usize = usize::MAX;

    /// Whether an explicit tag precedes the value.
    pub fn tagged(&self) -> bool {
        self.tag.is_some()
    }

    /// Whether the tag, if any, keeps the value a string: `!!str` or the
    /// non-specific `!`. A plain scalar with no tag resolves by its text.
    pub fn string_tag(&self) -> bool {
        matches!(self.tag.as_deref(), Some(STR_TAG | "!"))
    }

    /// The tag as written in most files: `!!int` rather than its long form.
    pub fn tag_display(&self) -> String {
        match &self.tag {
            Some(t) => match t.strip_prefix("tag:yaml.org,2002:") {
                Some(short) => format!("!!{short}"),
                None if t.starts_with('!') => t.clone(),
                None => format!("!<{t}>"),
            },
            None => String::new(),
        }
    }
}

/// The resolved `!!str` tag.
pub const STR_TAG: &str = "tag:yaml.org,2002:str";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Scalar(Scalar),
    Mapping(Vec<(Node, Node)>),
    Sequence(Vec<Node>),
    /// `*name`; `anchor_line` is where `&name` was defined, `anchor` the
    /// parser's id for it (see [`Node::anchor`]) and `scalar` the anchored
    /// node when it is a scalar (an alias of an image string is followed to it).
    Alias {
        name: String,
        anchor_line: usize,
        anchor: usize,
        scalar: Option<Rc<Node>>,
    },
}

/// A node and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub line: usize,
    /// The parser's id of the anchor (`&name`) on this node, 0 for none. Ids
    /// count anchors in the order they appear in the stream.
    pub anchor: usize,
}

impl Node {
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a scalar whose text is a string, for matching keys and selectors.
    pub fn as_str(&self) -> Option<&str> {
        self.as_scalar().map(|s| s.value.as_str())
    }

    pub fn as_mapping(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Mapping(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_sequence(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Sequence(items) => Some(items),
            _ => None,
        }
    }

    /// The value under `key` in a mapping (the first, if the key is duplicated).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_mapping()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// What this node is, for error messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Scalar(s) => s.style.describe().to_string(),
            NodeKind::Mapping(_) => "mapping".to_string(),
            NodeKind::Sequence(_) => "sequence".to_string(),
            NodeKind::Alias { name, .. } => format!("alias (`*{name}`)"),
        }
    }
}

/// An error in the YAML engine, with the 1-based line it concerns (0 when no
/// single line applies). Callers prefix the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub message: String,
    pub kind: YamlErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YamlErrorKind {
    /// The text is not valid YAML.
    Syntax,
    /// The path matched nothing.
    NotFound,
    /// The path matched in several places and no choice was given.
    Ambiguous,
    /// The path matched something that cannot be edited as a scalar.
    NotEditable,
    /// The new value cannot be written (e.g. it is not valid in any style).
    BadValue,
    /// The engine's check of its own output failed: a bug, nothing written.
    Internal,
}

impl YamlError {
    pub fn new(kind: YamlErrorKind, line: usize, message: impl Into<String>) -> YamlError {
        YamlError {
            line,
            message: message.into(),
            kind,
        }
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for YamlError {}

/// One document of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub root: Node,
    /// The bytes of the source this document was parsed from, from where it
    /// starts (its `---`, or its first token) to where the next one starts.
    /// Parsed on its own, this text gives the same document; the guard
    /// re-parses only the documents an edit touched.
    pub range: Range<usize>,
}

/// A parsed stream: its documents, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub documents: Vec<Document>,
    /// The name of each anchor, by the parser's id ([`Node::anchor`]).
    pub anchors: HashMap<usize, String>,
}

/// The byte range of `scalar`'s text in `src`, quotes included.
///
/// Block scalars (`|`, `>`) and plain scalars folded over several lines are
/// refused: their text is not one contiguous value a tag would live in.
pub fn span(src: &str, scalar: &Scalar, line: usize) -> Result<Range<usize>, YamlError> {
    let start = scalar.start;
    if scalar.empty {
        if start == Scalar::NOWHERE {
            return Err(YamlError::new(
                YamlErrorKind::NotEditable,
                line,
                "the value is empty (null) and not a mapping value; \
                 write a placeholder such as `\"\"` first",
            ));
        }
        return Ok(start..start);
    }
    let bytes = src.as_bytes();
    let end = match scalar.style {
        Style::Literal | Style::Folded => {
            return Err(YamlError::new(
                YamlErrorKind::NotEditable,
                line,
                format!(
                    "the value is a {}; tagbump edits single-line values only, \
                     so change this one by hand or make it a plain or quoted scalar",
                    describe_block(scalar.style)
                ),
            ))
        }
        Style::SingleQuoted => {
            let mut i = start + 1;
            loop {
                match bytes.get(i) {
                    Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    Some(b'\'') => break i + 1,
                    Some(_) => i += 1,
                    None => break bytes.len(),
                }
            }
        }
        Style::DoubleQuoted => {
            let mut i = start + 1;
            loop {
                match bytes.get(i) {
                    Some(b'\\') => i += 2,
                    Some(b'"') => break i + 1,
                    Some(_) => i += 1,
                    None => break bytes.len(),
                }
            }
        }
        Style::Plain => {
            let end = plain_end(bytes, start, scalar.flow);
            if src.get(start..end) != Some(scalar.value.as_str()) {
                return Err(YamlError::new(
                    YamlErrorKind::NotEditable,
                    line,
                    "the value is a plain scalar folded over several lines; \
                     put it on one line (or quote it) first",
                ));
            }
            end
        }
    };
    Ok(start..end.min(bytes.len()))
}

pub(super) fn describe_block(style: Style) -> &'static str {
    if style == Style::Literal {
        "literal block scalar (`|`)"
    } else {
        "folded block scalar (`>`)"
    }
}

/// Where a plain scalar that starts at `start` ends on its line: before a
/// ` #` comment, a `: ` indicator, a line break, or (in flow context) `,[]{}`,
/// with trailing blanks trimmed.
fn plain_end(bytes: &[u8], start: usize, flow: bool) -> usize {
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        let next = bytes.get(i + 1).copied();
        let blank_or_end = |n: Option<u8>| matches!(n, None | Some(b' ' | b'\t' | b'\n' | b'\r'));
        match b {
            b'\n' | b'\r' => break,
            b'#' if i > start && matches!(bytes[i - 1], b' ' | b'\t') => break,
            b':' if blank_or_end(next)
                || (flow && matches!(next, Some(b',' | b'[' | b']' | b'{' | b'}'))) =>
            {
                break
            }
            b',' | b'[' | b']' | b'{' | b'}' if flow => break,
            _ => i += 1,
        }
    }
    while i > start && matches!(bytes[i - 1], b' ' | b'\t') {
        i -= 1;
    }
    i
}

/// The one scalar `path` names in `stream` (tests).
#[cfg(test)]
pub(crate) fn scalar_at<'a>(stream: &'a Stream, path: &str) -> &'a Scalar {
    let path = super::Path::parse(path).unwrap();
    let found = stream.resolve(&path, None).unwrap();
    assert_eq!(found.len(), 1, "{path}");
    found[0].node.as_scalar().unwrap()
}
