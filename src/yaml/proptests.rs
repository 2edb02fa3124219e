//! Property tests: over generated documents and over the fixtures, setting
//! any leaf to any tag-like value changes only that scalar's bytes, and the
//! result loads (with yaml-rust2's own loader, not this engine's tree) as the
//! old document with just that leaf replaced by the new value, and every alias
//! of it too. Leaves come with anchors, `!!str` tags, aliases, empty values,
//! and integers and booleans (which stay integers and booleans when the new
//! value is one). Plus: no input, however mangled, makes the engine panic.

use proptest::prelude::*;
use yaml_rust2::{Yaml, YamlLoader};

use super::*;

/// A generated document: block structure with comments, blank lines, every
/// scalar style, flow collections, multibyte text; rendered with `\n` or `\r\n`.
#[derive(Debug, Clone)]
enum Gen {
    Map(Vec<(String, Gen)>),
    Seq(Vec<Gen>),
    Flow(Vec<(String, Leaf)>),
    Leaf(Leaf),
    /// `*aN` for the N-th anchor defined so far in the document (modulo
    /// their number), or a plain `x` when there is none yet.
    Alias(usize),
}

#[derive(Debug, Clone)]
struct Leaf {
    value: String,
    style: Style,
    comment: Option<String>,
    /// `&aN` before the value (block context only).
    anchor: bool,
    /// `!!str` before the value.
    tag: bool,
    /// No value at all (`key:`, `key: &aN`): loads as null.
    empty: bool,
    /// Written plain as is: an integer or a boolean.
    raw: bool,
}

fn leaf() -> impl Strategy<Value = Leaf> {
    let value = prop_oneof![
        "[a-z][a-z0-9.-]{0,12}",
        "v[0-9]\\.[0-9]{1,2}\\.[0-9]",
        "[a-zé☕日]{1,6}",
        "registry\\.example\\.com/[a-z]{1,5}/app:[0-9]\\.[0-9]",
        Just("it's".to_string()),
        Just("say \"hi\"".to_string()),
        Just("".to_string()),
    ];
    let style = prop_oneof![
        Just(Style::Plain),
        Just(Style::SingleQuoted),
        Just(Style::DoubleQuoted)
    ];
    let comment = proptest::option::of("[ a-z#:é\t]{0,10}");
    let raw = prop_oneof![
        "[1-9][0-9]{0,3}",
        Just("0".to_string()),
        Just("true".to_string()),
        Just("False".to_string())
    ];
    // 0..6: an ordinary string, 6: raw, 7: empty.
    let kind = 0..8u8;
    (
        value,
        style,
        comment,
        any::<bool>(),
        any::<bool>(),
        kind,
        raw,
    )
        .prop_map(
            |(value, style, comment, anchor, tag, kind, raw_value)| Leaf {
                value: match kind {
                    6 => raw_value,
                    7 => String::new(),
                    _ => value,
                },
                style,
                comment,
                anchor,
                tag: tag && kind < 6,
                empty: kind == 7,
                raw: kind == 6,
            },
        )
}

fn gen() -> impl Strategy<Value = Gen> {
    let base = prop_oneof![
        4 => leaf().prop_map(Gen::Leaf),
        1 => (0..4usize).prop_map(Gen::Alias),
        1 => prop::collection::vec(("[a-z]{1,4}", leaf()), 1..4).prop_map(|entries| Gen::Flow(dedup(entries))),
    ];
    base.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(("[a-z][a-z0-9_é]{0,6}", inner.clone()), 1..5)
                .prop_map(|entries| Gen::Map(dedup(entries))),
            prop::collection::vec(inner, 1..4).prop_map(Gen::Seq),
        ]
    })
}

fn dedup<T>(entries: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut seen = std::collections::HashSet::new();
    entries
        .into_iter()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect()
}

/// How a leaf is written in its style; plain falls back to double quotes when
/// the value would not stay a plain string. Properties are not included.
fn scalar_text(leaf: &Leaf, flow: bool) -> String {
    match leaf.style {
        _ if leaf.raw => leaf.value.clone(),
        Style::Plain if edit::plain_is_safe(&leaf.value, flow, false) => leaf.value.clone(),
        Style::SingleQuoted => format!("'{}'", leaf.value.replace('\'', "''")),
        _ => edit::double_quoted(&leaf.value),
    }
}

/// A generated leaf: its path, its value, and the paths of its aliases.
type GenLeaf = (Vec<Segment>, String, Vec<Vec<Segment>>);

struct Render {
    out: String,
    nl: &'static str,
    /// Every leaf of the current document.
    leaves: Vec<GenLeaf>,
    /// Anchors defined so far in the current document: (name, leaf index).
    anchors: Vec<(String, usize)>,
    /// Anchors defined so far in the stream, for unique names.
    anchor_count: usize,
}

impl Render {
    fn comment(&mut self, leaf: &Leaf) {
        if let Some(c) = &leaf.comment {
            self.out.push_str(" #");
            self.out.push_str(c);
        }
    }

    /// Render `node` as the value of a mapping key or sequence item whose
    /// indicator has already been written at `indent`.
    fn value(&mut self, node: &Gen, indent: usize, path: &mut Vec<Segment>) {
        match node {
            Gen::Leaf(leaf) => {
                if leaf.anchor {
                    let name = format!("a{}", self.anchor_count);
                    self.anchor_count += 1;
                    self.out.push_str(&format!(" &{name}"));
                    self.anchors.push((name, self.leaves.len()));
                }
                if leaf.tag {
                    self.out.push_str(" !!str");
                }
                if !leaf.empty {
                    self.out.push(' ');
                    self.out.push_str(&scalar_text(leaf, false));
                }
                self.comment(leaf);
                self.out.push_str(self.nl);
                self.leaves
                    .push((path.clone(), leaf.value.clone(), Vec::new()));
            }
            Gen::Alias(n) => {
                match self.anchors.get(n % self.anchors.len().max(1)).cloned() {
                    Some((name, leaf)) => {
                        self.out.push_str(&format!(" *{name}"));
                        self.leaves[leaf].2.push(path.clone());
                    }
                    None => {
                        self.out.push_str(" x");
                        self.leaves.push((path.clone(), "x".into(), Vec::new()));
                    }
                }
                self.out.push_str(self.nl);
            }
            Gen::Flow(entries) => {
                let parts: Vec<String> = entries
                    .iter()
                    .map(|(k, leaf)| {
                        let text = scalar_text(leaf, true);
                        match (leaf.tag, leaf.empty) {
                            (_, true) => format!("{k}:"),
                            (true, false) => format!("{k}: !!str {text}"),
                            (false, false) => format!("{k}: {text}"),
                        }
                    })
                    .collect();
                self.out.push_str(&format!(" {{{}}}", parts.join(", ")));
                self.out.push_str(self.nl);
                for (k, leaf) in entries {
                    path.push(Segment::Key(k.clone()));
                    self.leaves
                        .push((path.clone(), leaf.value.clone(), Vec::new()));
                    path.pop();
                }
            }
            Gen::Map(_) | Gen::Seq(_) => {
                self.out.push_str(" # nested");
                self.out.push_str(self.nl);
                self.block(node, indent + 2, path);
            }
        }
    }

    fn block(&mut self, node: &Gen, indent: usize, path: &mut Vec<Segment>) {
        let pad = " ".repeat(indent);
        match node {
            Gen::Map(entries) => {
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i % 2 == 1 {
                        self.out.push_str(self.nl);
                        self.out.push_str(&format!("{pad}# about {k}{}", self.nl));
                    }
                    self.out.push_str(&format!("{pad}{k}:"));
                    path.push(Segment::Key(k.clone()));
                    self.value(v, indent, path);
                    path.pop();
                }
            }
            Gen::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.out.push_str(&format!("{pad}-"));
                    path.push(Segment::Index(i as i64));
                    match item {
                        // A nested block collection goes on the next lines.
                        Gen::Map(_) | Gen::Seq(_) => {
                            self.out.push_str(self.nl);
                            self.block(item, indent + 2, path);
                        }
                        // An empty `-` item has no place to write a value in
                        // (refused with a message); generate a value there.
                        Gen::Leaf(leaf) if leaf.empty => {
                            let mut leaf = leaf.clone();
                            leaf.empty = false;
                            leaf.value = "x".into();
                            self.value(&Gen::Leaf(leaf), indent, path)
                        }
                        _ => self.value(item, indent, path),
                    }
                    path.pop();
                }
            }
            Gen::Flow(_) | Gen::Leaf(_) | Gen::Alias(_) => {
                let mut root = String::from("root");
                if let Gen::Leaf(_) = node {
                    root.push('_');
                }
                self.out.push_str(&format!("{pad}{root}:"));
                path.push(Segment::Key(root));
                self.value(node, indent, path);
                path.pop();
            }
        }
    }
}

/// Documents rendered as one stream; returns the text and each leaf's
/// (document, path, aliases).
fn render(docs: &[Gen], crlf: bool, bom: bool) -> (String, Vec<(usize, Path, Vec<Path>)>) {
    let mut r = Render {
        out: String::new(),
        nl: if crlf { "\r\n" } else { "\n" },
        leaves: Vec::new(),
        anchors: Vec::new(),
        anchor_count: 0,
    };
    if bom {
        r.out.push('\u{feff}');
    }
    r.out.push_str(&format!("# generated ☕{}", r.nl));
    let mut all = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        if docs.len() > 1 || d > 0 {
            r.out.push_str(&format!("---{}", r.nl));
        }
        r.leaves.clear();
        r.anchors.clear();
        r.block(doc, 0, &mut Vec::new());
        for (path, _value, aliases) in r.leaves.drain(..) {
            let aliases = aliases.into_iter().map(Path::from_segments).collect();
            all.push((d, Path::from_segments(path), aliases));
        }
    }
    (r.out, all)
}

fn tag_like() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
        1 => prop::sample::select(vec![
            "1.10", "true", "on", "yes", "null", "~", "0x1F", "1e3", "", "a: b", "a #b", "*x",
            "- x", "it's", "q\"uote", "2024-01-02", "v1.2.3", "1.0",
        ]).prop_map(str::to_string),
    ]
}

/// The loaded node at `path` in `doc`.
fn at<'a>(doc: &'a mut Yaml, path: &Path) -> &'a mut Yaml {
    let mut node = doc;
    for segment in path.segments() {
        node = match segment {
            Segment::Key(k) => match node {
                Yaml::Hash(h) => h.get_mut(&Yaml::String(k.clone())).expect("key exists"),
                other => panic!("not a mapping at {k}: {other:?}"),
            },
            Segment::Index(i) => match node {
                Yaml::Array(items) => &mut items[*i as usize],
                other => panic!("not a sequence: {other:?}"),
            },
            Segment::Select { .. } => unreachable!("generated paths have no selectors"),
        };
    }
    node
}

/// What the leaf loads as after it is set to `value`: an integer or boolean
/// stays one when `value` is one (the engine keeps the type), else a string.
fn expected(old: &Yaml, value: &str) -> Yaml {
    match (old, Loads::of_plain(value, false)) {
        (Yaml::Integer(_), Loads::Int) => Yaml::Integer(value.parse().expect("an integer")),
        (Yaml::Boolean(_), Loads::Bool) => Yaml::Boolean(value.eq_ignore_ascii_case("true")),
        _ => Yaml::String(value.to_string()),
    }
}

/// The property itself, for one document and one leaf with these aliases.
fn check_leaf(src: &str, document: usize, path: &Path, aliases: &[Path], value: &str) {
    let out = set(src, path, value, Documents::Index(document))
        .unwrap_or_else(|e| panic!("setting {path} in document {document}: {e}\n{src}"));

    // 1. Only bytes of the target scalar differ.
    let stream = Stream::parse(src).unwrap();
    let found = stream.resolve(path, Some(document)).unwrap();
    let node = found[0].node;
    let scalar = node.as_scalar().expect("leaf is a scalar");
    let span = tree::span(src, scalar, node.line).unwrap();
    assert_eq!(&src[..span.start], &out[..span.start]);
    // Independently of the span: every line but the scalar's is unchanged
    // (a single-line scalar in the source stays on one line).
    if !src[span.clone()].contains(['\n', '\r']) {
        let (a, b): (Vec<&str>, Vec<&str>) = (src.split('\n').collect(), out.split('\n').collect());
        assert_eq!(a.len(), b.len(), "line count changed");
        let changed: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        assert!(
            changed.len() <= 1 && changed.iter().all(|&i| i + 1 == node.line),
            "lines {changed:?} changed, scalar on {}",
            node.line
        );
    }
    assert_eq!(&src[span.end..], &out[out.len() - (src.len() - span.end)..]);

    // 2. The result loads as the old document with only that leaf replaced.
    let body = |s: &str| s.strip_prefix('\u{feff}').unwrap_or(s).to_string();
    // yaml-rust2's own loader refuses flow collections left of their key's
    // column (the engine reads them; see Stream::parse): for those files the
    // byte checks above and the engine's guard are the property.
    let Ok(mut want) = YamlLoader::load_from_str(&body(src)) else {
        assert!(
            src.contains(['{', '[']),
            "the oracle refused a file without flow collections"
        );
        return;
    };
    let new = expected(at(&mut want[document], path), value);
    for p in std::iter::once(path).chain(aliases) {
        *at(&mut want[document], p) = new.clone();
    }
    let got = YamlLoader::load_from_str(&body(&out)).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(got, want, "\n--- src\n{src}\n--- out\n{out}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_documents(
        docs in prop::collection::vec(gen(), 1..3),
        crlf in any::<bool>(),
        bom in any::<bool>(),
        values in prop::collection::vec(tag_like(), 8),
    ) {
        let (src, leaves) = render(&docs, crlf, bom);
        for (i, (document, path, aliases)) in leaves.iter().enumerate() {
            check_leaf(&src, *document, path, aliases, &values[i % values.len()]);
        }
    }

}

proptest! {
    // Each case walks every leaf of every fixture, so fewer cases suffice.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn fixture_documents(values in prop::collection::vec(tag_like(), 4)) {
        for (name, src) in fixture_texts() {
            let Ok(stream) = Stream::parse(&src) else { continue };
            let mut i = 0;
            for (document, doc) in stream.documents.iter().enumerate() {
                for (path, aliases) in string_leaves(&doc.root) {
                    i += 1;
                    let value = &values[i % values.len()];
                    // Fixtures of refusals (duplicate keys, `!!int`) are refused here too.
                    if let Err(e) = set(&src, &path, value, Documents::Index(document)) {
                        if matches!(e.kind, YamlErrorKind::Ambiguous | YamlErrorKind::NotEditable) {
                            continue;
                        }
                    }
                    std::panic::catch_unwind(|| check_leaf(&src, document, &path, &aliases, value))
                        .unwrap_or_else(|_| panic!("fixture {name}, {path} = {value:?}"));
                }
            }
        }
    }

    #[test]
    fn mangled_input_never_panics(
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        insert in "[ \t\n\r:#\\-\\[\\]{}'\",&*!|>%@`?a-z0-9é]{0,6}",
        value in tag_like(),
    ) {
        let texts = fixture_texts();
        prop_assume!(!texts.is_empty());
        let (_, src) = &texts[pick.index(texts.len())];
        let mut at = cut.index(src.len() + 1);
        while !src.is_char_boundary(at) {
            at -= 1;
        }
        for mangled in [format!("{}{insert}{}", &src[..at], &src[at..]), src[..at].to_string()] {
            let _ = Stream::parse(&mangled);
            for path in ["image.tag", "spec.template.spec.containers[name=app].image", "a[0]", "images[-1].newTag"] {
                let _ = set(&mangled, &Path::parse(path).unwrap(), &value, Documents::All);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,200}", path in "[a-z.\\[\\]0-9=\"-]{1,12}") {
        if let Ok(path) = Path::parse(&path) {
            let _ = set(&src, &path, "v1", Documents::All);
        }
    }
}

/// Every YAML file under `fixtures/*/before`.
fn fixture_texts() -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    out.push((path.display().to_string(), text));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"),
        &mut out,
    );
    out.sort();
    out
}

/// Paths of every plain or quoted scalar leaf that is a value (not a key),
/// under mappings and sequences, skipping duplicate keys and anchored
/// collections (their aliases copy them whole: a merge key's `<<: *d`); each
/// with the paths of the aliases of its anchor, which follow it.
fn string_leaves(root: &Node) -> Vec<(Path, Vec<Path>)> {
    // (path, anchor id of a leaf, or of the anchor an alias names)
    fn walk(node: &Node, path: &mut Vec<Segment>, out: &mut Vec<(Vec<Segment>, usize, bool)>) {
        match &node.kind {
            NodeKind::Scalar(s)
                if !matches!(s.style, Style::Literal | Style::Folded) && !path.is_empty() =>
            {
                out.push((path.clone(), node.anchor, false));
            }
            NodeKind::Alias { anchor, .. } if !path.is_empty() => {
                out.push((path.clone(), *anchor, true));
            }
            NodeKind::Mapping(_) | NodeKind::Sequence(_) if node.anchor != 0 => {}
            NodeKind::Mapping(entries) => {
                let mut seen = std::collections::HashSet::new();
                for (k, v) in entries {
                    // Keys the loader reads as numbers or booleans are not looked up by string.
                    let Some(k) = k.as_scalar().filter(|k| edit::already_string(k)) else {
                        continue;
                    };
                    let k = k.value.as_str();
                    if !seen.insert(k) {
                        continue;
                    }
                    path.push(Segment::Key(k.to_string()));
                    walk(v, path, out);
                    path.pop();
                }
            }
            NodeKind::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Segment::Index(i as i64));
                    walk(item, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(root, &mut Vec::new(), &mut found);
    found
        .iter()
        .filter(|(_, _, alias)| !alias)
        .map(|(path, anchor, _)| {
            let aliases = found
                .iter()
                .filter(|(_, a, alias)| *alias && *anchor != 0 && a == anchor)
                .map(|(p, _, _)| Path::from_segments(p.clone()))
                .collect();
            (Path::from_segments(path.clone()), aliases)
        })
        .collect()
}
