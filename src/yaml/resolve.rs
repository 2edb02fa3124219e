//! Resolve a [`Path`] against a parsed stream: every node it names, or the
//! most helpful reason it names none ("not found: keys there are …").

use super::path::{Path, Segment};
use super::tree::{Node, NodeKind, Stream, Style, YamlError, YamlErrorKind};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::tree::scalar_at;

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
}
