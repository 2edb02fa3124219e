//! The byte-exact YAML engine: find a scalar by path and replace only its
//! bytes. Comments, quoting, key order, indentation, blank lines, line endings
//! and every other document in the file are left exactly as they were.
//!
//! Pure: no I/O, no async, no git. [`Editor`] is the entry point.

pub mod edit;
pub mod parse;
pub mod path;
pub mod resolve;
pub mod tree;

pub mod guard;

pub use edit::{Loads, Splice};
pub use path::{Path, PathError, Segment};
pub use tree::{Document, Node, NodeKind, Scalar, Stream, Style, YamlError, YamlErrorKind};

/// Which documents of a multi-document file a path edit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Documents {
    /// The path must match in exactly one document (the default).
    #[default]
    One,
    /// Edit every document where the path matches.
    All,
    /// Only document N (0-based).
    Index(usize),
}

/// One scalar a path or scan resolved to, and what it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// 0-based document index.
    pub document: usize,
    /// 1-based line of the scalar.
    pub line: usize,
    /// The path or rule that found it, for messages.
    pub what: String,
    pub old: String,
    pub new: String,
    /// False when the scalar already held the value (nothing is written).
    pub changed: bool,
}

/// Collects edits to one file's text and applies them together.
pub struct Editor<'a> {
    src: &'a str,
    stream: Stream,
    splices: Vec<Splice>,
    outcomes: Vec<Outcome>,
}

impl<'a> Editor<'a> {
    pub fn new(src: &'a str) -> Result<Editor<'a>, YamlError> {
        Ok(Editor {
            src,
            stream: Stream::parse(src)?,
            splices: Vec::new(),
            outcomes: Vec::new(),
        })
    }

    pub fn src(&self) -> &'a str {
        self.src
    }

    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// Set the scalar at `path` to `value` in the chosen documents.
    pub fn set(
        &mut self,
        path: &Path,
        value: &str,
        documents: Documents,
    ) -> Result<Vec<Outcome>, YamlError> {
        let count = self.stream.documents.len();
        let only = match documents {
            Documents::Index(n) if n >= count => {
                return Err(YamlError::new(
                    YamlErrorKind::NotFound,
                    0,
                    format!("there is no document {n}: the file has {count} (numbered from 0)"),
                ))
            }
            Documents::Index(n) => Some(n),
            _ => None,
        };
        let found = self.stream.resolve(path, only)?;
        if documents == Documents::One && found.len() > 1 {
            let places: Vec<String> = found
                .iter()
                .map(|f| format!("document {} (line {})", f.document, f.node.line))
                .collect();
            return Err(YamlError::new(
                YamlErrorKind::Ambiguous,
                0,
                format!(
                    "`{path}` matches in {} documents: {}; use --all to edit each, \
                     or --document N to pick one",
                    found.len(),
                    places.join(", ")
                ),
            ));
        }
        let mut outcomes = Vec::new();
        for f in found {
            let splice = edit_for(self.src, f.node, value, Keep::Type)?;
            outcomes.push(Outcome {
                document: f.document,
                line: f.node.line,
                what: path.to_string(),
                old: f.node.as_str().unwrap_or_default().to_string(),
                new: value.to_string(),
                changed: splice.is_some(),
            });
            self.splices.extend(splice);
        }
        self.outcomes.extend(outcomes.iter().cloned());
        Ok(outcomes)
    }

    /// Record an edit computed elsewhere with [`edit_for`] (image scans walk
    /// [`Editor::stream`] and hand their edits back through here).
    pub fn push(&mut self, splice: Option<Splice>, outcome: Outcome) {
        self.splices.extend(splice);
        self.outcomes.push(outcome);
    }

    /// The edits recorded so far.
    pub fn splices(&self) -> &[Splice] {
        &self.splices
    }

    /// Whether any edit changes the text.
    pub fn changed(&self) -> bool {
        !self.splices.is_empty()
    }

    /// Every alias that follows an edited anchor: (alias line, anchor name,
    /// anchor line). Their values change with it; callers say so.
    pub fn followers(&self) -> Vec<(usize, String, usize)> {
        guard::followers(&self.stream, &self.splices)
    }

    /// The new text with every edit applied, after checking that it loads as
    /// the old text with exactly the edited scalars changed (see [`guard`]).
    pub fn finish(self) -> Result<String, YamlError> {
        let src = self.src;
        let new = edit::apply(src, self.splices.clone()).map_err(|range| {
            let line = src[..range.start].lines().count().max(1);
            YamlError::new(
                YamlErrorKind::Ambiguous,
                line,
                "two different values were asked for the same scalar",
            )
        })?;
        guard::check(src, &self.stream, &new, &self.splices)?;
        Ok(new)
    }
}

/// What an edit keeps of the old scalar beyond its properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Write a string (image references and tags are strings).
    String,
    /// Keep an integer or boolean an integer or boolean when the new value
    /// is one (`replicas: 2` set to `3`); strings as with [`Keep::String`].
    Type,
}

/// The splice that sets `node` to `value`, or `None` when it already holds
/// that value. Refuses nodes that are not a single-line scalar, and scalars
/// with an explicit tag other than `!!str`, saying what they are.
pub fn edit_for(
    src: &str,
    node: &Node,
    value: &str,
    keep: Keep,
) -> Result<Option<Splice>, YamlError> {
    let scalar = editable(node, value)?;
    let range = tree::span(src, scalar, node.line)?;
    let old_loads = Loads::of(scalar);
    let typed = match keep {
        Keep::Type if matches!(old_loads, Loads::Int | Loads::Bool) => {
            Some(Loads::of_plain(value, false)).filter(|&l| l == old_loads)
        }
        _ => None,
    };
    if let Some(loads) = typed {
        if scalar.value == value && scalar.style == Style::Plain {
            return Ok(None);
        }
        return Ok(Some(Splice {
            range,
            text: value.to_string(),
            value: value.to_string(),
            loads,
        }));
    }
    if scalar.value == value && edit::already_string(scalar) {
        return Ok(None);
    }
    let text = edit::render(scalar, value, node.line)?;
    Ok(Some(Splice {
        range,
        text,
        value: value.to_string(),
        loads: Loads::Str,
    }))
}

/// The scalar `node` holds, when tagbump can write a value there; else why
/// not: an alias, a collection, an explicit tag other than `!!str`, or a tag
/// with no value after it.
fn editable<'a>(node: &'a Node, value: &str) -> Result<&'a Scalar, YamlError> {
    let refuse = |message: String| {
        Err(YamlError::new(
            YamlErrorKind::NotEditable,
            node.line,
            message,
        ))
    };
    let scalar = match &node.kind {
        NodeKind::Scalar(s) => s,
        NodeKind::Alias {
            name, anchor_line, ..
        } => {
            return refuse(format!(
                "the value is an alias (`*{name}`) of the anchor defined at line \
                 {anchor_line}; edit the anchored value there instead"
            ))
        }
        NodeKind::Mapping(entries) => {
            let keys: Vec<&str> = entries
                .iter()
                .filter_map(|(k, _)| k.as_str())
                .take(8)
                .collect();
            return refuse(format!(
                "the value is a mapping, not a scalar; extend the path to one of its keys ({})",
                keys.join(", ")
            ));
        }
        NodeKind::Sequence(items) => {
            return refuse(format!(
                "the value is a sequence of {} items, not a scalar; extend the path \
                 with [N] or [field=value]",
                items.len()
            ))
        }
    };
    let tag = scalar.tag_display();
    if scalar.tag.is_some() && !scalar.string_tag() {
        return refuse(format!(
            "the value has the explicit tag `{tag}`, and `{tag} {value}` would not load \
             (or not as that type); remove the tag or change the value by hand"
        ));
    }
    if scalar.empty && scalar.tagged() {
        return refuse(format!(
            "the value is an empty `{tag}` scalar (a tag with no text after it); \
             write a placeholder such as `\"\"` in its place first"
        ));
    }
    Ok(scalar)
}

/// Set one path in `src`: the whole engine in one call.
pub fn set(src: &str, path: &Path, value: &str, documents: Documents) -> Result<String, YamlError> {
    let mut editor = Editor::new(src)?;
    editor.set(path, value, documents)?;
    editor.finish()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
