//! The guard: before new text is written anywhere (a file on disk, a blob in
//! a commit), it is parsed again and must load as the old text with exactly
//! the edited scalars changed, each now its new value of the kind intended
//! (a string, or the integer or boolean it was). Everything else must load
//! the same: keys, order, styles that decide types, tags, anchors, and every
//! alias still pointing at the same anchor (so the aliases of an edited anchor
//! follow it, and nothing else moves).
//!
//! The engine's own rules should make a mismatch impossible; this check turns
//! any bug in them into a refusal instead of a broken manifest.
//!
//! Cost: only what an edit touched is parsed again. In a document whose root
//! is a block mapping with its keys at the start of their lines (values
//! files, manifests), that is the top-level entries holding the edits, each
//! run of them parsed on its own: a parser at a line-start key of the root
//! mapping is always in the same state, so the entry loads alone as it does
//! in place. Otherwise, and whenever an entry does not parse alone (an alias
//! of an anchor in another entry), the whole document is parsed from its own
//! bytes; and when a document cannot stand alone (a `%TAG` directive, an alias
//! into another document), the whole text.

use std::collections::HashMap;
use std::ops::Range;

use super::edit::{Loads, Splice};
use super::tree::{Node, NodeKind, Scalar, Stream, Style, YamlError, YamlErrorKind};

/// Check `new_src`, made from `old_src` (parsed as `old`) by applying
/// `splices`. The error names the line (in the old text) where they differ.
pub fn check(
    old_src: &str,
    old: &Stream,
    new_src: &str,
    splices: &[Splice],
) -> Result<(), YamlError> {
    let mut splices = splices.to_vec();
    splices.sort_by_key(|s| (s.range.start, s.range.end));
    splices.dedup();
    if splices.is_empty() {
        return Ok(());
    }
    let docs = &old.documents;
    let shifts = Shifts::new(&splices);
    let mut touched: Vec<(usize, Vec<&Splice>)> = Vec::new();
    for splice in &splices {
        let at = splice.range.start;
        let last = docs.len().saturating_sub(1);
        let i = docs.partition_point(|d| d.range.start <= at).checked_sub(1);
        let Some(i) = i.filter(|&i| {
            let d = &docs[i];
            at < d.range.end || (i == last && at == d.range.end)
        }) else {
            return Err(refused(0, "an edit lies outside every document".into()));
        };
        match touched.last_mut() {
            Some((j, list)) if *j == i => list.push(splice),
            _ => touched.push((i, vec![splice])),
        }
    }

    let mut full: Option<Stream> = None;
    for (i, edits) in touched {
        let old_doc = &docs[i];
        if entries_check_out(old_src, old, i, new_src, &edits, &shifts) {
            continue;
        }
        let range = shifts.range(&old_doc.range, i + 1 == docs.len());
        let alone = new_src
            .get(range)
            .and_then(|text| Stream::parse(text).ok())
            .filter(|s| s.documents.len() == 1);
        let (new, new_root) = match &alone {
            Some(stream) => (stream, &stream.documents[0].root),
            None => {
                if full.is_none() {
                    let stream = Stream::parse(new_src).map_err(|e| {
                        refused(
                            e.line,
                            format!("the edited text is no longer valid YAML ({})", e.message),
                        )
                    })?;
                    if stream.documents.len() != docs.len() {
                        return Err(refused(
                            0,
                            format!(
                                "the edited text has {} documents instead of {}",
                                stream.documents.len(),
                                docs.len()
                            ),
                        ));
                    }
                    full = Some(stream);
                }
                let stream = full.as_ref().expect("parsed just above");
                (stream, &stream.documents[i].root)
            }
        };
        let mut compare = Compare::new(old, new, &edits);
        compare
            .node(&old_doc.root, new_root)
            .map_err(|(line, why)| refused(line, why))?;
        if compare.seen != compare.edits.len() {
            return Err(refused(
                0,
                format!(
                    "{} of {} edits in document {i} did not land on a scalar",
                    compare.edits.len() - compare.seen,
                    compare.edits.len()
                ),
            ));
        }
    }
    Ok(())
}

/// The fast path: when document `i`'s root is a block mapping whose keys
/// start their lines, parse only the run of top-level entries that holds the
/// edits, on its own, and compare it. `false` means "not shown this way":
/// the caller then checks the whole document, and reports any mismatch.
fn entries_check_out(
    old_src: &str,
    old: &Stream,
    i: usize,
    new_src: &str,
    edits: &[&Splice],
    shifts: &Shifts,
) -> bool {
    let doc = &old.documents[i];
    let Some(entries) = doc.root.as_mapping() else {
        return false;
    };
    let bytes = old_src.as_bytes();
    let starts: Option<Vec<usize>> = entries
        .iter()
        .map(|(k, _)| {
            let s = k.as_scalar()?;
            let at_line_start = s.start == doc.range.start
                || (s.start > 0 && matches!(bytes.get(s.start - 1), Some(b'\n' | b'\r')));
            (s.start != Scalar::NOWHERE
                && !s.empty
                && at_line_start
                && matches!(
                    s.style,
                    Style::Plain | Style::SingleQuoted | Style::DoubleQuoted
                ))
            .then_some(s.start)
        })
        .collect();
    let Some(starts) = starts else {
        return false;
    };
    // The entry each edit is in: the last whose key starts at or before it.
    let entry_of = |at: usize| starts.partition_point(|&s| s <= at).checked_sub(1);
    let (Some(first), Some(last)) = (
        edits.first().and_then(|e| entry_of(e.range.start)),
        edits.last().and_then(|e| entry_of(e.range.start)),
    ) else {
        return false;
    };
    let end = starts.get(last + 1).copied().unwrap_or(doc.range.end);
    let is_last_doc = i + 1 == old.documents.len() && end == doc.range.end;
    let range = shifts.range(&(starts[first]..end), is_last_doc);
    let Some(text) = new_src.get(range) else {
        return false;
    };
    // A document marker would end the document in place but not alone.
    let marker = |line: &str| {
        (line.starts_with("---") || line.starts_with("..."))
            && line[3..].starts_with([' ', '\t', '\r']) | line[3..].is_empty()
    };
    if text.split('\n').any(marker) {
        return false;
    }
    let Ok(new) = Stream::parse(text) else {
        return false;
    };
    let [new_doc] = new.documents.as_slice() else {
        return false;
    };
    let Some(new_entries) = new_doc.root.as_mapping() else {
        return false;
    };
    if new_doc.root.anchor != 0 || new_entries.len() != last - first + 1 {
        return false;
    }
    let mut compare = Compare::new(old, &new, edits);
    let same = entries[first..=last]
        .iter()
        .zip(new_entries)
        .all(|((ka, va), (kb, vb))| compare.node(ka, kb).is_ok() && compare.node(va, vb).is_ok());
    same && compare.seen == compare.edits.len()
}

/// Where positions of the old text are in the new one: the splices' starts,
/// sorted, and the running sum of how much each moved the text after it.
struct Shifts {
    starts: Vec<usize>,
    /// `moved[n]`: the change in length made by the first `n` splices.
    moved: Vec<isize>,
}

impl Shifts {
    fn new(sorted: &[Splice]) -> Shifts {
        let mut moved = vec![0isize];
        for s in sorted {
            let last = moved[moved.len() - 1];
            moved.push(last + s.text.len() as isize - s.range.len() as isize);
        }
        Shifts {
            starts: sorted.iter().map(|s| s.range.start).collect(),
            moved,
        }
    }

    fn at(&self, pos: usize, inclusive: bool) -> usize {
        let n = self
            .starts
            .partition_point(|&s| s < pos || (inclusive && s == pos));
        (pos as isize + self.moved[n]).max(0) as usize
    }

    /// Where `range` of the old text is in the new one. An insertion exactly
    /// at a range's start belongs to that range, so it moves only its end;
    /// one at the very end of the text belongs to the last range.
    fn range(&self, range: &Range<usize>, last: bool) -> Range<usize> {
        self.at(range.start, false)..self.at(range.end, last)
    }
}

fn refused(line: usize, why: String) -> YamlError {
    YamlError::new(
        YamlErrorKind::Internal,
        line,
        format!(
            "tagbump's check of its own edit failed: {why}; nothing was written. \
             This is a bug in tagbump"
        ),
    )
}

/// A walk of the old and new trees side by side.
struct Compare<'a> {
    /// Edited scalars by their start in the old text.
    edits: HashMap<usize, &'a Splice>,
    seen: usize,
    /// Old anchor id -> new anchor id, as they are met in document order.
    anchors: HashMap<usize, usize>,
    old_names: &'a HashMap<usize, String>,
    new_names: &'a HashMap<usize, String>,
}

type Mismatch = (usize, String);

impl<'a> Compare<'a> {
    fn new(old: &'a Stream, new: &'a Stream, edits: &[&'a Splice]) -> Compare<'a> {
        Compare {
            edits: edits.iter().map(|s| (s.range.start, *s)).collect(),
            seen: 0,
            anchors: HashMap::new(),
            old_names: &old.anchors,
            new_names: &new.anchors,
        }
    }

    fn node(&mut self, old: &Node, new: &Node) -> Result<(), Mismatch> {
        let differ = |what: String| Err((old.line, what));
        if (old.anchor == 0) != (new.anchor == 0) {
            return differ("an anchor was added or lost".into());
        }
        if old.anchor != 0 {
            if self.old_names.get(&old.anchor) != self.new_names.get(&new.anchor) {
                return differ("an anchor was renamed".into());
            }
            self.anchors.insert(old.anchor, new.anchor);
        }
        match (&old.kind, &new.kind) {
            (NodeKind::Scalar(a), NodeKind::Scalar(b)) => {
                let edit = (a.start != Scalar::NOWHERE)
                    .then(|| self.edits.get(&a.start).copied())
                    .flatten();
                match edit {
                    Some(splice) => {
                        self.seen += 1;
                        if b.value != splice.value {
                            return differ(format!(
                                "the edited value loads as {:?}, not {:?}",
                                b.value, splice.value
                            ));
                        }
                        if Loads::of(b) != splice.loads || a.tag != b.tag {
                            return differ(format!(
                                "the edited value {:?} no longer loads as a {}",
                                b.value,
                                describe(splice.loads)
                            ));
                        }
                        Ok(())
                    }
                    None if a.value == b.value
                        && (a.style == Style::Plain) == (b.style == Style::Plain)
                        && a.tag == b.tag
                        && a.empty == b.empty =>
                    {
                        Ok(())
                    }
                    None => differ(format!(
                        "a scalar that was not edited changed from {:?} to {:?}",
                        a.value, b.value
                    )),
                }
            }
            (NodeKind::Mapping(a), NodeKind::Mapping(b)) => {
                if a.len() != b.len() {
                    return differ(format!(
                        "a mapping went from {} to {} keys",
                        a.len(),
                        b.len()
                    ));
                }
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    self.node(ka, kb)?;
                    self.node(va, vb)?;
                }
                Ok(())
            }
            (NodeKind::Sequence(a), NodeKind::Sequence(b)) => {
                if a.len() != b.len() {
                    return differ(format!(
                        "a sequence went from {} to {} items",
                        a.len(),
                        b.len()
                    ));
                }
                for (ia, ib) in a.iter().zip(b) {
                    self.node(ia, ib)?;
                }
                Ok(())
            }
            (NodeKind::Alias { anchor: a, .. }, NodeKind::Alias { anchor: b, .. }) => {
                if self.anchors.get(a) == Some(b) {
                    Ok(())
                } else {
                    differ("an alias points at another anchor".into())
                }
            }
            _ => differ(format!("a {} became a {}", old.describe(), new.describe())),
        }
    }
}

fn describe(loads: Loads) -> &'static str {
    match loads {
        Loads::Str => "string",
        Loads::Int => "integer",
        Loads::Bool => "boolean",
        Loads::Other => "value",
    }
}

/// Every alias of an anchored scalar that `splices` edit: (alias line,
/// anchor name, anchor line), in document order.
pub fn followers(stream: &Stream, splices: &[Splice]) -> Vec<(usize, String, usize)> {
    let starts: Vec<usize> = splices.iter().map(|s| s.range.start).collect();
    let mut out = Vec::new();
    for doc in &stream.documents {
        walk(&doc.root, &mut |node| {
            if let NodeKind::Alias {
                name,
                anchor_line,
                scalar: Some(target),
                ..
            } = &node.kind
            {
                if target
                    .as_scalar()
                    .is_some_and(|s| starts.contains(&s.start))
                {
                    out.push((node.line, name.clone(), *anchor_line));
                }
            }
        });
    }
    out
}

fn walk(node: &Node, visit: &mut impl FnMut(&Node)) {
    visit(node);
    match &node.kind {
        NodeKind::Mapping(entries) => {
            for (k, v) in entries {
                walk(k, visit);
                walk(v, visit);
            }
        }
        NodeKind::Sequence(items) => items.iter().for_each(|i| walk(i, visit)),
        NodeKind::Scalar(_) | NodeKind::Alias { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::edit::apply;

    fn splice(src: &str, find: &str, text: &str, value: &str) -> Splice {
        let start = src.find(find).expect("in the source");
        Splice {
            range: start..start + find.len(),
            text: text.into(),
            value: value.into(),
            loads: Loads::Str,
        }
    }

    fn run(src: &str, splices: Vec<Splice>) -> Result<(), YamlError> {
        let stream = Stream::parse(src).unwrap();
        let new = apply(src, splices.clone()).unwrap();
        check(src, &stream, &new, &splices)
    }

    #[test]
    fn a_right_splice_passes() {
        let src = "a: 1\ntag: &t v1 # c\nb: *t\n---\nother: x\n";
        assert!(run(src, vec![splice(src, "v1", "v2", "v2")]).is_ok());
    }

    #[test]
    fn a_splice_that_breaks_an_anchor_is_refused() {
        // The 0.1 bug: the value written after the anchor's place, not after
        // the anchor, so the anchor becomes part of a string and `*t` dangles.
        let src = "tag: &t # filled by CI\nalias: *t\n";
        let at = src.find(':').unwrap() + 1;
        let wrong = Splice {
            range: at..at,
            text: " 1.4.2".into(),
            value: "1.4.2".into(),
            loads: Loads::Str,
        };
        let err = run(src, vec![wrong]).unwrap_err();
        assert_eq!(err.kind, YamlErrorKind::Internal);
        assert!(err.message.contains("no longer valid YAML"), "{err}");
    }

    #[test]
    fn a_splice_that_changes_another_value_is_refused() {
        let src = "a: x\nb: y\n";
        // Claims to set `a` but writes a second key into it.
        let err = run(src, vec![splice(src, "x", "z\nc: 1", "z")]).unwrap_err();
        assert_eq!(err.kind, YamlErrorKind::Internal, "{err}");
        // Claims a string but writes a float.
        let err = run(src, vec![splice(src, "x", "1.10", "1.10")]).unwrap_err();
        assert!(err.message.contains("no longer loads as a string"), "{err}");
        // Lands between scalars.
        let at = src.find('\n').unwrap();
        let stray = Splice {
            range: at..at,
            text: " # x".into(),
            value: "x".into(),
            loads: Loads::Str,
        };
        let err = run(src, vec![stray]).unwrap_err();
        assert!(err.message.contains("did not land on a scalar"), "{err}");
    }

    #[test]
    fn only_touched_documents_are_parsed_again() {
        // Document 1 would not parse alone (alias into document 0), but only
        // document 2 is edited, so it is checked alone.
        let src = "a: &x 1\n---\nb: *x\n---\nc: v1\n";
        assert!(run(src, vec![splice(src, "v1", "v2", "v2")]).is_ok());
        // An edit that adds a document is caught by the full parse.
        let err = run(src, vec![splice(src, "v1", "v2\n---\nd: 1", "v2")]).unwrap_err();
        assert!(err.message.contains("documents instead of"), "{err}");
    }

    #[test]
    fn an_entry_that_would_end_the_document_in_place_is_refused() {
        // Alone, `a: z\n...\n` is one entry; in place, `...` ends the
        // document and `b` moves to a second one.
        let src = "a: x\nb: y\n";
        let err = run(src, vec![splice(src, "x", "z\n...", "z")]).unwrap_err();
        assert_eq!(err.kind, YamlErrorKind::Internal, "{err}");
    }

    #[test]
    fn a_splice_over_an_anchor_is_refused() {
        let src = "a: &x v1\nb: *x\n";
        let at = src.find("&x").unwrap();
        let rename = Splice {
            range: at..at + 5,
            text: "&y v2".into(),
            value: "v2".into(),
            loads: Loads::Str,
        };
        let err = run(src, vec![rename]).unwrap_err();
        assert_eq!(err.kind, YamlErrorKind::Internal, "{err}");
    }

    #[test]
    fn followers_of_an_edited_anchor() {
        let src = "tag: &t v1\na: *t\nb: [*t]\n";
        let stream = Stream::parse(src).unwrap();
        let f = followers(&stream, &[splice(src, "v1", "v2", "v2")]);
        assert_eq!(f, vec![(2, "t".into(), 1), (3, "t".into(), 1)]);
    }
}
