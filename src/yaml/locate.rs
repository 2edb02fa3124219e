//! Parse a YAML stream into a light tree whose scalars know where they start in
//! the source bytes, and resolve [`Path`]s against it.
//!
//! Why not `Marker::index()`: in yaml-rust2 it counts characters, not bytes, and
//! drifts inside block scalars (see `docs/dependencies.md`). Lines and
//! columns are right, so offsets are computed from a table of line starts and
//! a walk of `col` characters. A leading UTF-8 BOM makes the parser fail when a
//! comment follows it, so it is stripped first and added back to every offset.
//!
//! The tree is only ever read: nothing here serializes YAML.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::rc::Rc;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::path::{Path, Segment};

/// Deeper nesting than this is refused: it is never a manifest, and dropping or
/// walking such a tree recursively could exhaust the stack.
const MAX_DEPTH: usize = 512;

/// The presentation style of a scalar in the source.
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

/// A node found by a path: the document it is in and the path as written.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    pub document: usize,
    pub node: &'a Node,
}

/// Why a path did not resolve in one document; `depth` is how many segments
/// did match, so the most helpful of several documents' reasons can be shown.
#[derive(Debug, Clone)]
struct Miss {
    depth: usize,
    line: usize,
    message: String,
    kind: YamlErrorKind,
}

impl Stream {
    /// Parse `src` (the whole file text, BOM and all).
    pub fn parse(src: &str) -> Result<Stream, YamlError> {
        let (bom, body) = match src.strip_prefix('\u{feff}') {
            Some(rest) => (src.len() - rest.len(), rest),
            None => (0, src),
        };
        let error = match Builder::new(body, bom, None).run() {
            Ok(stream) => return Ok(stream),
            Err(failed) => failed,
        };
        // Flow collections whose later lines are indented no deeper than the
        // key they belong to (`podAnnotations: {` ... `}` at column 0) are
        // valid to libyaml, go-yaml and PyYAML, but yaml-rust2 refuses them.
        // Inside a flow collection a line break is only a separator, so the
        // text is parsed again with the offending breaks (and comments on
        // those lines) turned into spaces: same length, every byte offset the
        // same, every scalar's value the same. Lines are counted on the text
        // as written. Anything else, or no progress, reports the first error.
        let Failed {
            error,
            mut flow_open,
            mut at,
        } = error;
        if !error.message.contains("invalid indentation") {
            return Err(error);
        }
        let lines = Offsets::new(body, bom).line_starts;
        let mut text = body.as_bytes().to_vec();
        for _ in 0..MAX_FLOW_JOINS {
            let Some(open) = flow_open else { break };
            if !join_flow_lines(&mut text, open, at) {
                break;
            }
            let Ok(joined) = std::str::from_utf8(&text) else {
                break;
            };
            match Builder::new(joined, bom, Some(&lines)).run() {
                Ok(stream) => return Ok(stream),
                Err(next) if next.error.message.contains("invalid indentation") && next.at > at => {
                    flow_open = next.flow_open;
                    at = next.at;
                }
                Err(_) => break,
            }
        }
        Err(error)
    }

    /// Every node `path` names, across all documents (or only document `only`).
    ///
    /// Errors when no document has a match; the message comes from the
    /// document where the path got furthest.
    pub fn resolve<'a>(
        &'a self,
        path: &Path,
        only: Option<usize>,
    ) -> Result<Vec<Found<'a>>, YamlError> {
        let mut found = Vec::new();
        let mut best: Option<Miss> = None;
        for (i, doc) in self.documents.iter().enumerate() {
            if only.is_some_and(|n| n != i) {
                continue;
            }
            match resolve_in(&doc.root, path) {
                Ok(Some(node)) => found.push(Found { document: i, node }),
                Ok(None) => {}
                Err(miss) => {
                    if best.as_ref().is_none_or(|b| miss.depth > b.depth) {
                        best = Some(miss);
                    }
                }
            }
        }
        if !found.is_empty() {
            return Ok(found);
        }
        let docs = if only.is_some() {
            1
        } else {
            self.documents.len()
        };
        match best {
            Some(miss) if miss.kind != YamlErrorKind::NotFound => {
                Err(YamlError::new(miss.kind, miss.line, miss.message))
            }
            Some(miss) => {
                let suffix = if docs > 1 {
                    format!(" (searched {docs} documents)")
                } else {
                    String::new()
                };
                Err(YamlError::new(
                    YamlErrorKind::NotFound,
                    miss.line,
                    format!("`{path}` not found: {}{suffix}", miss.message),
                ))
            }
            None => Err(YamlError::new(
                YamlErrorKind::NotFound,
                0,
                format!("`{path}` not found: the file has no documents"),
            )),
        }
    }
}

/// Walk one document. `Ok(None)` means the document is empty (a bare `---`).
fn resolve_in<'a>(root: &'a Node, path: &Path) -> Result<Option<&'a Node>, Miss> {
    if matches!(&root.kind, NodeKind::Scalar(s) if s.value.is_empty() || s.value == "~") {
        return Ok(None);
    }
    let mut node = root;
    let segments = path.segments();
    for (depth, segment) in segments.iter().enumerate() {
        let step = Step { path, depth, node };
        node = match segment {
            Segment::Key(key) => step.key(key)?,
            Segment::Index(index) => step.index(*index)?,
            Segment::Select { key, value } => step.select(key, value)?,
        };
    }
    Ok(Some(node))
}

/// One segment of a path applied to the node the previous ones reached.
struct Step<'p, 'a> {
    path: &'p Path,
    depth: usize,
    node: &'a Node,
}

impl<'a> Step<'_, 'a> {
    /// Where the path has got to, for messages (built only when needed).
    fn here(&self) -> String {
        if self.depth == 0 {
            "the document root".to_string()
        } else {
            let done = self.path.segments()[..self.depth].to_vec();
            format!("`{}`", Path::from_segments(done))
        }
    }

    /// A miss at this depth.
    fn miss(&self, line: usize, message: String) -> Miss {
        Miss {
            depth: self.depth,
            line,
            message,
            kind: YamlErrorKind::NotFound,
        }
    }

    /// A refusal that outranks every "not found" (the path did lead somewhere).
    fn refuse(&self, kind: YamlErrorKind, line: usize, message: String) -> Miss {
        Miss {
            depth: usize::MAX,
            line,
            message,
            kind,
        }
    }

    fn not_a(&self, what: &str) -> Miss {
        let node = self.node;
        self.miss(
            node.line,
            format!("{} is a {}, not a {what}", self.here(), node.describe()),
        )
    }

    fn key(&self, key: &str) -> Result<&'a Node, Miss> {
        let (node, path) = (self.node, self.path);
        let Some(entries) = node.as_mapping() else {
            return Err(self.not_a("mapping"));
        };
        let mut matches = entries.iter().filter(|(k, _)| k.as_str() == Some(key));
        let Some((first_key, value)) = matches.next() else {
            let here = self.here();
            if let Some(merge) = merged_from(entries) {
                return Err(self.refuse(
                    YamlErrorKind::NotEditable,
                    node.line,
                    format!(
                        "`{path}`: {here} has no key `{key}` of its own; it may come \
                         through the merge key `<<` from {merge}, and tagbump does \
                         not edit through merge keys; edit the value under that \
                         anchor, or add `{key}` to {here} to override it"
                    ),
                ));
            }
            let keys = list_hint("keys there", entries.iter().filter_map(|(k, _)| k.as_str()));
            return Err(self.miss(node.line, format!("no key `{key}` in {here}{keys}")));
        };
        if let Some((dup, _)) = matches.next() {
            return Err(self.refuse(
                YamlErrorKind::Ambiguous,
                dup.line,
                format!(
                    "`{path}` is ambiguous: key `{key}` appears twice in {} \
                     (lines {} and {}); remove one",
                    self.here(),
                    first_key.line,
                    dup.line
                ),
            ));
        }
        Ok(value)
    }

    fn index(&self, index: i64) -> Result<&'a Node, Miss> {
        let Some(items) = self.node.as_sequence() else {
            return Err(self.not_a("sequence"));
        };
        let len = items.len() as i64;
        let at = if index < 0 { len + index } else { index };
        usize::try_from(at)
            .ok()
            .and_then(|i| items.get(i))
            .ok_or_else(|| {
                self.miss(
                    self.node.line,
                    format!(
                        "index [{index}] is out of range: {} has {len} items",
                        self.here()
                    ),
                )
            })
    }

    fn select(&self, key: &str, value: &str) -> Result<&'a Node, Miss> {
        let Some(items) = self.node.as_sequence() else {
            return Err(self.not_a("sequence"));
        };
        let named = |item: &&Node| item.get(key).and_then(Node::as_str) == Some(value);
        let mut matches = items.iter().filter(named);
        let Some(item) = matches.next() else {
            let values = items
                .iter()
                .filter_map(|i| i.get(key).and_then(Node::as_str));
            let hint = list_hint(&format!("`{key}` values there"), values);
            return Err(self.miss(
                self.node.line,
                format!("no item of {} has `{key}: {value}`{hint}", self.here()),
            ));
        };
        if let Some(other) = matches.next() {
            return Err(self.refuse(
                YamlErrorKind::Ambiguous,
                other.line,
                format!(
                    "`{}` is ambiguous: several items of {} have `{key}: {value}` \
                     (lines {} and {}); select by index instead",
                    self.path,
                    self.here(),
                    item.line,
                    other.line
                ),
            ));
        }
        Ok(item)
    }
}

/// What a mapping merges in with `<<`, if anything: `*name (anchor at line N)`.
fn merged_from(entries: &[(Node, Node)]) -> Option<String> {
    let (_, value) = entries.iter().find(|(k, _)| {
        k.as_scalar()
            .is_some_and(|s| s.value == "<<" && s.style == Style::Plain)
    })?;
    let describe = |node: &Node| match &node.kind {
        NodeKind::Alias {
            name, anchor_line, ..
        } => format!("*{name} (the anchor `&{name}` at line {anchor_line})"),
        _ => format!("the mapping at line {}", node.line),
    };
    Some(match &value.kind {
        NodeKind::Sequence(items) => items.iter().map(describe).collect::<Vec<_>>().join(", "),
        _ => describe(value),
    })
}

fn list_hint<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = names.iter().take(12).map(|n| format!("`{n}`")).collect();
    let more = if names.len() > 12 {
        format!(", … ({} in all)", names.len())
    } else {
        String::new()
    };
    format!(" ({what}: {}{more})", shown.join(", "))
}

/// How many times a parse is retried with flow lines joined (see [`Stream::parse`]).
const MAX_FLOW_JOINS: usize = 64;

/// Why a parse failed: the error, the flow collection open there (its
/// opener's offset in the parsed text) and the error's offset.
struct Failed {
    error: YamlError,
    flow_open: Option<usize>,
    at: usize,
}

/// Turn the line breaks between a flow collection's opener at `from` and the
/// token at `to` into spaces, and the comments ending those lines too, leaving
/// quoted scalars alone. Every byte keeps its offset. Returns whether anything
/// changed.
fn join_flow_lines(text: &mut [u8], from: usize, to: usize) -> bool {
    let to = to.min(text.len());
    let mut changed = false;
    let mut i = from;
    while i < to {
        match text[i] {
            b'"' | b'\'' => {
                // Skip the quoted scalar: a break inside it folds differently.
                let quote = text[i];
                i += 1;
                while i < text.len() {
                    match text[i] {
                        b'\\' if quote == b'"' => i += 2,
                        b'\'' if quote == b'\'' && text.get(i + 1) == Some(&b'\'') => i += 2,
                        c if c == quote => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'#' if i == 0 || matches!(text[i - 1], b' ' | b'\t' | b'\n' | b'\r') => {
                while i < text.len() && !matches!(text[i], b'\n' | b'\r') {
                    text[i] = b' ';
                    i += 1;
                }
                changed = true;
            }
            b'\n' | b'\r' => {
                text[i] = b' ';
                changed = true;
                i += 1;
            }
            _ => i += 1,
        }
    }
    changed
}

/// Maps parser markers (line, character column) to byte offsets.
struct Offsets<'a> {
    src: &'a str,
    base: usize,
    line_starts: Vec<usize>,
    /// The last (line, col, byte) looked up: markers mostly move forward, so a
    /// walk can resume there instead of re-walking a long line.
    cursor: (usize, usize, usize),
}

impl<'a> Offsets<'a> {
    fn new(src: &'a str, base: usize) -> Offsets<'a> {
        let bytes = src.as_bytes();
        let mut line_starts = vec![0];
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => line_starts.push(i + 1),
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                    line_starts.push(i + 2);
                    i += 1;
                }
                b'\r' => line_starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        Offsets {
            src,
            base,
            line_starts,
            cursor: (0, 0, 0),
        }
    }

    /// Byte offset (in `src`, without the BOM base) of a marker.
    fn local(&mut self, marker: &Marker) -> usize {
        let line = marker.line().saturating_sub(1);
        let col = marker.col();
        let Some(&line_start) = self.line_starts.get(line) else {
            return self.src.len();
        };
        let (mut byte, mut at) = if self.cursor.0 == line && self.cursor.1 <= col {
            (self.cursor.2, self.cursor.1)
        } else {
            (line_start, 0)
        };
        let rest = &self.src[byte..];
        for c in rest.chars() {
            if at == col {
                break;
            }
            byte += c.len_utf8();
            at += 1;
        }
        self.cursor = (line, at, byte);
        byte
    }

    fn absolute(&mut self, marker: &Marker) -> usize {
        self.local(marker) + self.base
    }

    fn char_at(&mut self, marker: &Marker) -> Option<char> {
        let at = self.local(marker);
        self.src[at..].chars().next()
    }
}

enum Open {
    Mapping {
        line: usize,
        flow: bool,
        /// Where its start marker is, in the parsed text.
        at: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
    Sequence {
        line: usize,
        flow: bool,
        at: usize,
        anchor: usize,
        items: Vec<Node>,
    },
}

impl Open {
    fn flow(&self) -> bool {
        match self {
            Open::Mapping { flow, .. } | Open::Sequence { flow, .. } => *flow,
        }
    }

    /// The collection is complete: its node.
    fn close(self) -> Node {
        match self {
            Open::Mapping {
                line,
                anchor,
                entries,
                ..
            } => Node {
                line: first_line(line, entries_line(&entries)),
                kind: NodeKind::Mapping(entries),
                anchor,
            },
            Open::Sequence {
                line,
                anchor,
                items,
                ..
            } => Node {
                kind: NodeKind::Sequence(items),
                line,
                anchor,
            },
        }
    }
}

/// What is known about an anchor: its name, line, and the node when it is a scalar.
type AnchorInfo = (String, usize, Option<Rc<Node>>);

struct Builder<'a> {
    src: &'a str,
    offsets: Offsets<'a>,
    /// Line starts of the text as written, when `src` has flow lines joined.
    written_lines: Option<&'a [usize]>,
    /// Anchor id -> what an alias of it needs to know.
    anchors: HashMap<usize, AnchorInfo>,
}

impl<'a> Builder<'a> {
    fn new(src: &'a str, base: usize, written_lines: Option<&'a [usize]>) -> Builder<'a> {
        Builder {
            src,
            offsets: Offsets::new(src, base),
            written_lines,
            anchors: HashMap::new(),
        }
    }

    fn syntax_error(err: &yaml_rust2::ScanError) -> YamlError {
        let m = err.marker();
        YamlError::new(
            YamlErrorKind::Syntax,
            m.line(),
            format!(
                "invalid YAML at column {}: {}",
                m.col() + 1,
                err.info().trim_end_matches('.')
            ),
        )
    }

    /// The 1-based line, in the text as written, of a byte offset in `src`.
    fn line_at(&self, local: usize) -> usize {
        let starts = self.written_lines.unwrap_or(&self.offsets.line_starts);
        starts.partition_point(|&s| s <= local).max(1)
    }

    /// The 1-based line of a marker, in the text as written.
    fn line_of(&mut self, marker: &Marker) -> usize {
        match self.written_lines {
            None => marker.line(),
            Some(_) => {
                let local = self.offsets.local(marker);
                self.line_at(local)
            }
        }
    }

    fn run(mut self) -> Result<Stream, Failed> {
        let mut parser = Parser::new_from_str(self.src);
        let mut documents = Vec::new();
        // Where the next document's text starts: the start of the text, then
        // each DocumentEnd marker (at `...`, or at the next `---`). Not the
        // DocumentStart marker: for an implicit document it sits after the
        // first key.
        let mut start = self.offsets.base;
        let mut stack: Vec<Open> = Vec::new();
        loop {
            let (event, marker) = parser.next_token().map_err(|e| self.failed(&e, &stack))?;
            let line = self.line_of(&marker);
            let in_flow = stack.last().is_some_and(Open::flow);
            let node = match event {
                Event::StreamEnd => break,
                Event::DocumentEnd => {
                    start = self.offsets.absolute(&marker);
                    continue;
                }
                Event::StreamStart | Event::DocumentStart | Event::Nothing => continue,
                Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                    let mapping = matches!(event, Event::MappingStart(..));
                    let open = self.open(mapping, anchor, &marker, line, in_flow, stack.len())?;
                    stack.push(open);
                    continue;
                }
                Event::MappingEnd | Event::SequenceEnd => match stack.pop() {
                    Some(open) => open.close(),
                    None => continue,
                },
                Event::Scalar(value, style, anchor, tag) => {
                    let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                    self.scalar((value, style, anchor, tag), &marker, line, in_flow)
                }
                Event::Alias(id) => {
                    let (name, anchor_line, scalar) =
                        self.anchors.get(&id).cloned().unwrap_or_default();
                    Node {
                        kind: NodeKind::Alias {
                            name,
                            anchor_line,
                            anchor: id,
                            scalar,
                        },
                        line,
                        anchor: 0,
                    }
                }
            };
            match stack.last_mut() {
                None => {
                    self.remember_empty_anchor(&node);
                    documents.push(Document {
                        root: node,
                        range: start..start,
                    });
                }
                Some(open) => self.add(open, node),
            }
        }
        // Each document runs to where the next one starts.
        let mut next = self.offsets.base + self.src.len();
        for doc in documents.iter_mut().rev() {
            doc.range.end = next.max(doc.range.start);
            next = doc.range.start;
        }
        let anchors = self
            .anchors
            .into_iter()
            .map(|(id, (name, _, _))| (id, name))
            .collect();
        Ok(Stream { documents, anchors })
    }

    /// The parse failed: say where, and which flow collection was open then
    /// (the outermost: every line in it is flow context).
    fn failed(&mut self, e: &yaml_rust2::ScanError, stack: &[Open]) -> Failed {
        let flow_open = stack.iter().find_map(|open| match open {
            Open::Mapping { flow: true, at, .. } | Open::Sequence { flow: true, at, .. } => {
                Some(*at)
            }
            _ => None,
        });
        Failed {
            error: Self::syntax_error(e),
            flow_open,
            at: self.offsets.local(e.marker()),
        }
    }

    /// A mapping or sequence starts.
    fn open(
        &mut self,
        mapping: bool,
        anchor: usize,
        marker: &Marker,
        line: usize,
        in_flow: bool,
        depth: usize,
    ) -> Result<Open, Failed> {
        if depth >= MAX_DEPTH {
            return Err(Failed {
                error: YamlError::new(
                    YamlErrorKind::Syntax,
                    line,
                    format!("nesting deeper than {MAX_DEPTH} levels"),
                ),
                flow_open: None,
                at: 0,
            });
        }
        let opener = self.offsets.char_at(marker);
        let at = self.offsets.absolute(marker);
        self.remember_anchor(anchor, at, None);
        let local = at - self.offsets.base;
        Ok(if mapping {
            Open::Mapping {
                line,
                flow: in_flow || opener == Some('{'),
                at: local,
                anchor,
                entries: Vec::new(),
                key: None,
            }
        } else {
            Open::Sequence {
                line,
                flow: in_flow || opener == Some('['),
                at: local,
                anchor,
                items: Vec::new(),
            }
        })
    }

    /// A scalar event (its value, style, anchor and resolved tag) as a node.
    fn scalar(
        &mut self,
        (value, style, anchor, tag): (String, TScalarStyle, usize, Option<String>),
        marker: &Marker,
        line: usize,
        flow: bool,
    ) -> Node {
        // A plain scalar cannot be empty text: this is an empty node, and
        // its marker is the next token's position.
        let empty = style == TScalarStyle::Plain && value.is_empty();
        let start = if empty {
            Scalar::NOWHERE
        } else {
            self.offsets.absolute(marker)
        };
        let style = match style {
            TScalarStyle::SingleQuoted => Style::SingleQuoted,
            TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
            TScalarStyle::Literal => Style::Literal,
            TScalarStyle::Folded => Style::Folded,
            _ => Style::Plain,
        };
        let node = Node {
            kind: NodeKind::Scalar(Scalar {
                value,
                style,
                start,
                flow,
                tag,
                empty,
            }),
            line,
            anchor,
        };
        // An empty value's own place (after its key) is known only once it
        // is paired with the key, in `add`.
        if !empty {
            self.remember_anchor(anchor, start, Some(&node));
        }
        node
    }

    /// Put a finished node into the collection that holds it.
    fn add(&mut self, open: &mut Open, node: Node) {
        match open {
            Open::Sequence { items, .. } => {
                self.remember_empty_anchor(&node);
                items.push(node)
            }
            Open::Mapping { entries, key, .. } => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    let node = place_empty_value(self.src, self.offsets.base, &k, node);
                    self.remember_empty_anchor(&node);
                    entries.push((k, node));
                }
            },
        }
    }

    /// Record where anchor `id` is defined, reading its name from the source
    /// (the parser keeps only numbers): the nearest `&name` before `at`, the
    /// absolute offset of the node's marker. Keeps the node when it is a scalar.
    fn remember_anchor(&mut self, id: usize, at: usize, node: Option<&Node>) {
        if id == 0 {
            return;
        }
        let scalar = node
            .filter(|n| n.as_scalar().is_some())
            .cloned()
            .map(Rc::new);
        let local = at.saturating_sub(self.offsets.base).min(self.src.len());
        let before = self.src.get(..local).unwrap_or_default();
        let (name, line) = match before.rfind('&') {
            Some(amp) => {
                let name: String = before[amp + 1..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !",[]{}".contains(*c))
                    .collect();
                let line = self.line_at(amp);
                (name, line)
            }
            None => (String::new(), 0),
        };
        self.anchors.insert(id, (name, line, scalar));
    }

    /// [`Builder::remember_anchor`] for an empty scalar, once its place is
    /// known; other nodes were remembered when they were made.
    fn remember_empty_anchor(&mut self, node: &Node) {
        let Some(scalar) = node.as_scalar().filter(|s| s.empty) else {
            return;
        };
        let at = if scalar.start == Scalar::NOWHERE {
            // Past the end of its line: the anchor is on it or before it.
            let starts = self.written_lines.unwrap_or(&self.offsets.line_starts);
            let next = starts.get(node.line).copied();
            self.offsets.base + next.unwrap_or(self.src.len())
        } else {
            scalar.start
        };
        self.remember_anchor(node.anchor, at, Some(node));
    }
}

/// Give an empty mapping value an insertion point and its own line: after
/// the `:` that follows its key and after any properties (`&anchor`, `!tag`)
/// written on that line, so `tag:` becomes `tag: v1`, `tag: # c` becomes
/// `tag: v1 # c` and `tag: &t # c` becomes `tag: &t v1 # c`.
fn place_empty_value(src: &str, base: usize, key: &Node, mut value: Node) -> Node {
    let NodeKind::Scalar(scalar) = &mut value.kind else {
        return value;
    };
    let Some(key_scalar) = key.as_scalar() else {
        return value;
    };
    if !scalar.empty || key_scalar.empty {
        return value;
    }
    // Offsets are absolute (BOM included); `src` here is the text after the BOM.
    let full_start = key_scalar.start;
    let Some(local) = full_start.checked_sub(base) else {
        return value;
    };
    let local_key = Scalar {
        start: local,
        ..key_scalar.clone()
    };
    let Ok(span) = super::edit::span(src, &local_key, key.line) else {
        return value;
    };
    let bytes = src.as_bytes();
    let blanks = |from: usize| {
        from + bytes[from..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count()
    };
    let colon = blanks(span.end);
    if bytes.get(colon) != Some(&b':') {
        return value;
    }
    value.line = key.line;
    let mut at = colon + 1;
    // Properties on the key's line: each `&name` or `!tag` up to a blank.
    loop {
        let next = blanks(at);
        if !matches!(bytes.get(next), Some(b'&' | b'!')) {
            break;
        }
        let end = next
            + bytes[next..]
                .iter()
                .take_while(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                .count();
        at = end;
    }
    scalar.start = base + at;
    value
}

/// Block mappings report a start marker after their first key; the first
/// key's own line is the truthful one.
fn entries_line(entries: &[(Node, Node)]) -> Option<usize> {
    entries.first().map(|(k, _)| k.line)
}

fn first_line(marker_line: usize, key_line: Option<usize>) -> usize {
    key_line.map_or(marker_line, |k| k.min(marker_line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_at<'a>(stream: &'a Stream, path: &str) -> &'a Scalar {
        let found = stream.resolve(&Path::parse(path).unwrap(), None).unwrap();
        assert_eq!(found.len(), 1, "{path}");
        found[0].node.as_scalar().unwrap()
    }

    #[test]
    fn byte_offsets_survive_multibyte_text_before_the_target() {
        let src = "# café ☕ naïve\nname: \"héllo\"\ntag: v1 # 🚀\n";
        let stream = Stream::parse(src).unwrap();
        let tag = scalar_at(&stream, "tag");
        assert_eq!(&src[tag.start..tag.start + 2], "v1");
        let name = scalar_at(&stream, "name");
        assert_eq!(&src[name.start..name.start + 1], "\"");
    }

    #[test]
    fn offsets_with_bom_and_crlf() {
        let src = "\u{feff}# comment\r\na:\r\n  b: 'x'\r\n";
        let stream = Stream::parse(src).unwrap();
        let b = scalar_at(&stream, "a.b");
        assert_eq!(&src[b.start..b.start + 3], "'x'");
        assert_eq!(b.style, Style::SingleQuoted);
    }

    #[test]
    fn long_single_line_flow_document() {
        let items: Vec<String> = (0..2000).map(|i| format!("k{i}: \"é{i}\"")).collect();
        let src = format!("{{{}}}\n", items.join(", "));
        let stream = Stream::parse(&src).unwrap();
        let s = scalar_at(&stream, "k1999");
        assert!(s.flow);
        assert_eq!(&src[s.start..s.start + 8], "\"é1999\"");
    }

    #[test]
    fn flow_context_is_known() {
        let stream = Stream::parse("a: {b: [c, d]}\ne: f\n").unwrap();
        assert!(scalar_at(&stream, "a.b[1]").flow);
        assert!(!scalar_at(&stream, "e").flow);
    }

    #[test]
    fn aliases_name_their_anchor() {
        let src = "base: &tag v1\nother: *tag\n";
        let stream = Stream::parse(src).unwrap();
        let found = stream
            .resolve(&Path::parse("other").unwrap(), None)
            .unwrap();
        let NodeKind::Alias {
            name,
            anchor_line,
            scalar,
            ..
        } = &found[0].node.kind
        else {
            panic!("an alias: {:?}", found[0].node)
        };
        assert_eq!((name.as_str(), *anchor_line), ("tag", 1));
        assert_eq!(scalar.as_ref().and_then(|n| n.as_str()), Some("v1"));
    }

    #[test]
    fn not_found_messages_say_what_is_there() {
        let stream = Stream::parse("image:\n  repository: x\n  tag: y\n").unwrap();
        let err = stream
            .resolve(&Path::parse("image.tags").unwrap(), None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: `image.tags` not found: no key `tags` in `image` (keys there: `repository`, `tag`)"
        );
        let err = stream
            .resolve(&Path::parse("image.tag.x").unwrap(), None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: `image.tag.x` not found: `image.tag` is a plain scalar, not a mapping"
        );
    }

    #[test]
    fn selector_messages() {
        let src = "c:\n- name: app\n  image: a\n- name: side\n  image: b\n";
        let stream = Stream::parse(src).unwrap();
        let err = stream
            .resolve(&Path::parse("c[name=web].image").unwrap(), None)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("no item of `c` has `name: web` (`name` values there: `app`, `side`)"),
            "{err}"
        );
        let err = stream
            .resolve(&Path::parse("c[5]").unwrap(), None)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("index [5] is out of range: `c` has 2 items"),
            "{err}"
        );
        assert_eq!(scalar_at(&stream, "c[-1].image").value, "b");
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let stream = Stream::parse("a: 1\nb: 2\na: 3\n").unwrap();
        let err = stream
            .resolve(&Path::parse("a").unwrap(), None)
            .unwrap_err();
        assert_eq!(err.kind, YamlErrorKind::Ambiguous);
        assert_eq!(
            err.to_string(),
            "line 3: `a` is ambiguous: key `a` appears twice in the document root (lines 1 and 3); remove one"
        );
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = Stream::parse("a: 1\nb: [\n").unwrap_err();
        assert_eq!(err.kind, YamlErrorKind::Syntax);
        assert!(err.line >= 2, "{err}");
        let err = Stream::parse("a:\n  b: 1\n c: 2\n").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let src = "[".repeat(100_000);
        let err = Stream::parse(&src).unwrap_err();
        assert_eq!(err.kind, YamlErrorKind::Syntax, "{err}");
    }

    #[test]
    fn documents_are_kept_apart() {
        let src = "---\na: 1\n...\n---\na: 2\n---\n";
        let stream = Stream::parse(src).unwrap();
        let found = stream.resolve(&Path::parse("a").unwrap(), None).unwrap();
        let docs: Vec<usize> = found.iter().map(|f| f.document).collect();
        assert_eq!(docs, vec![0, 1]);
    }
}
