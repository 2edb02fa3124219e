//! Parse a YAML stream into the tree of [`super::tree`], with byte offsets.
//!
//! Why not `Marker::index()`: in yaml-rust2 it counts characters, not bytes, and
//! drifts inside block scalars (see `docs/dependencies.md`). Lines and
//! columns are right, so offsets are computed from a table of line starts and
//! a walk of `col` characters. A leading UTF-8 BOM makes the parser fail when a
//! comment follows it, so it is stripped first and added back to every offset.

use std::collections::HashMap;
use std::rc::Rc;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::tree::{Document, Node, NodeKind, Scalar, Stream, Style, YamlError, YamlErrorKind};

/// Deeper nesting than this is refused: it is never a manifest, and dropping or
/// walking such a tree recursively could exhaust the stack.
const MAX_DEPTH: usize = 512;

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
    let Ok(span) = super::tree::span(src, &local_key, key.line) else {
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
    use crate::yaml::tree::scalar_at;
    use crate::yaml::Path;

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
