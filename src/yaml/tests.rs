//! Whole-text tests of the engine: every case asserts the complete output, so
//! a stray byte anywhere in the file fails the test.

use super::*;

fn set_one(src: &str, path: &str, value: &str) -> String {
    set(src, &Path::parse(path).unwrap(), value, Documents::One)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn set_err(src: &str, path: &str, value: &str, documents: Documents) -> YamlError {
    set(src, &Path::parse(path).unwrap(), value, documents).unwrap_err()
}

#[test]
fn only_the_target_bytes_change() {
    let src = "\
# Default values for app.
image:
  repository: registry.example.com/team/app   # where CI pushes

  tag: 1.4.1    # bumped by CI
  pullPolicy: IfNotPresent
replicas: 2
";
    assert_eq!(
        set_one(src, "image.tag", "1.4.2"),
        "\
# Default values for app.
image:
  repository: registry.example.com/team/app   # where CI pushes

  tag: 1.4.2    # bumped by CI
  pullPolicy: IfNotPresent
replicas: 2
"
    );
}

#[test]
fn quoting_style_is_kept() {
    let src = "a: \"1.0\"\nb: '1.0'\nc: 1.0.0\n";
    assert_eq!(set_one(src, "a", "2.0"), "a: \"2.0\"\nb: '1.0'\nc: 1.0.0\n");
    assert_eq!(set_one(src, "b", "2.0"), "a: \"1.0\"\nb: '2.0'\nc: 1.0.0\n");
    assert_eq!(
        set_one(src, "c", "2.0.1"),
        "a: \"1.0\"\nb: '1.0'\nc: 2.0.1\n"
    );
}

#[test]
fn plain_values_that_would_change_type_are_quoted() {
    let src = "tag: v1\n";
    for (value, want) in [
        ("1.10", "tag: \"1.10\"\n"),
        ("true", "tag: \"true\"\n"),
        ("yes", "tag: \"yes\"\n"),
        ("on", "tag: \"on\"\n"),
        ("null", "tag: \"null\"\n"),
        ("~", "tag: \"~\"\n"),
        ("0x1F", "tag: \"0x1F\"\n"),
        ("1e3", "tag: \"1e3\"\n"),
        ("*star", "tag: \"*star\"\n"),
        ("&amp", "tag: \"&amp\"\n"),
        ("!bang", "tag: \"!bang\"\n"),
        ("@at", "tag: \"@at\"\n"),
        ("`tick", "tag: \"`tick\"\n"),
        ("#hash", "tag: \"#hash\"\n"),
        ("%pct", "tag: \"%pct\"\n"),
        ("- dash", "tag: \"- dash\"\n"),
        ("a: b", "tag: \"a: b\"\n"),
        ("a #b", "tag: \"a #b\"\n"),
        ("", "tag: \"\"\n"),
        ("1.4.2", "tag: 1.4.2\n"),
    ] {
        assert_eq!(set_one(src, "tag", value), want, "value {value:?}");
    }
}

#[test]
fn quoted_styles_are_escaped() {
    assert_eq!(set_one("a: 'x'\n", "a", "it's"), "a: 'it''s'\n");
    assert_eq!(
        set_one("a: \"x\"\n", "a", "say \"hi\"\\"),
        "a: \"say \\\"hi\\\"\\\\\"\n"
    );
    // A control character cannot live in single quotes: double quotes take over.
    assert_eq!(set_one("a: 'x'\n", "a", "t\tb"), "a: \"t\\tb\"\n");
    assert_eq!(set_one("a: \"\"\n", "a", "v1"), "a: \"v1\"\n");
    assert_eq!(set_one("a: ''\n", "a", "v1"), "a: 'v1'\n");
    // Quoted values that read as numbers stay quoted and need nothing more.
    assert_eq!(set_one("a: \"1.9\"\n", "a", "1.10"), "a: \"1.10\"\n");
}

#[test]
fn multi_line_quoted_values_are_replaced_whole() {
    let src = "a: \"one\n  two\"\nb: 1\n";
    assert_eq!(set_one(src, "a", "v2"), "a: \"v2\"\nb: 1\n");
}

#[test]
fn already_up_to_date_changes_nothing() {
    let mut editor = Editor::new("tag: 1.4.2 # x\n").unwrap();
    let out = editor
        .set(&Path::parse("tag").unwrap(), "1.4.2", Documents::One)
        .unwrap();
    assert!(!out[0].changed);
    assert!(!editor.changed());
    assert_eq!(editor.finish().unwrap(), "tag: 1.4.2 # x\n");
}

#[test]
fn a_float_that_reads_like_the_value_is_fixed_by_quoting() {
    // `1.10` loads as the float 1.1: writing the same text again is not enough.
    assert_eq!(set_one("tag: 1.10\n", "tag", "1.10"), "tag: \"1.10\"\n");
}

#[test]
fn comments_around_the_value() {
    let src = "\
a:
  # before
  b: x # after
  # below
\tc: 1
";
    // Tabs are not valid indentation, so keep them in comments only.
    let src = src.replace("\tc: 1\n", "  c: 1 #\ttab\n");
    assert_eq!(
        set_one(&src, "a.b", "new"),
        "a:\n  # before\n  b: new # after\n  # below\n  c: 1 #\ttab\n"
    );
    assert_eq!(
        set_one(&src, "a.c", "2.0.0"),
        "a:\n  # before\n  b: x # after\n  # below\n  c: 2.0.0 #\ttab\n"
    );
    // `#` without a space before it is part of a plain scalar.
    assert_eq!(set_one("a: x#y # c\n", "a", "z"), "a: z # c\n");
}

#[test]
fn flow_collections() {
    let src = "image: {repository: app, tag: v1}  # flow\nlist: [a, 'b', \"c\"]\n";
    assert_eq!(
        set_one(src, "image.tag", "v2"),
        "image: {repository: app, tag: v2}  # flow\nlist: [a, 'b', \"c\"]\n"
    );
    assert_eq!(
        set_one(src, "list[0]", "a,b"),
        "image: {repository: app, tag: v1}  # flow\nlist: [\"a,b\", 'b', \"c\"]\n"
    );
    assert_eq!(
        set_one(src, "list[2]", "z"),
        "image: {repository: app, tag: v1}  # flow\nlist: [a, 'b', \"z\"]\n"
    );
    assert_eq!(set_one("a: {b: c}\n", "a.b", "d"), "a: {b: d}\n");
    assert_eq!(set_one("a: [x,y]\n", "a[1]", "z"), "a: [x,z]\n");
}

#[test]
fn block_sequences_and_selectors() {
    let src = "\
spec:
  containers:
    - name: sidecar
      image: envoy:1.0
    - name: app
      image: registry.example.com/team/app:1.4.1 # app
";
    assert_eq!(
        set_one(
            src,
            "spec.containers[name=app].image",
            "registry.example.com/team/app:1.4.2"
        ),
        src.replace("app:1.4.1", "app:1.4.2")
    );
    assert_eq!(
        set_one(src, "spec.containers[0].image", "envoy:1.1"),
        src.replace("envoy:1.0", "envoy:1.1")
    );
}

#[test]
fn quoted_keys_in_paths() {
    let src = "metadata:\n  annotations:\n    prometheus.io/port: \"8080\"\n    \"a.b\": c\n";
    assert_eq!(
        set_one(src, "metadata.annotations[\"prometheus.io/port\"]", "9090"),
        src.replace("8080", "9090")
    );
    assert_eq!(
        set_one(src, "metadata.annotations[\"a.b\"]", "d"),
        src.replace(": c", ": d")
    );
}

#[test]
fn crlf_line_endings_survive() {
    let src = "a:\r\n  b: x # c\r\n  d: 'y'\r\n";
    assert_eq!(set_one(src, "a.b", "z"), "a:\r\n  b: z # c\r\n  d: 'y'\r\n");
    assert_eq!(set_one(src, "a.d", "w"), "a:\r\n  b: x # c\r\n  d: 'w'\r\n");
}

#[test]
fn a_bom_survives_and_does_not_shift_the_splice() {
    let src = "\u{feff}# values\nimage:\n  tag: v1\n";
    assert_eq!(
        set_one(src, "image.tag", "v2"),
        "\u{feff}# values\nimage:\n  tag: v2\n"
    );
}

#[test]
fn multibyte_text_before_the_target() {
    let src = "# Équipe café ☕\ndescription: \"naïve – 日本\"\nimage:\n  tag: v1 # 🚀\n";
    assert_eq!(
        set_one(src, "image.tag", "v2"),
        "# Équipe café ☕\ndescription: \"naïve – 日本\"\nimage:\n  tag: v2 # 🚀\n"
    );
    assert_eq!(
        set_one(src, "description", "é"),
        src.replace("\"naïve – 日本\"", "\"é\"")
    );
}

#[test]
fn anchored_scalar_keeps_its_anchor_and_aliases_follow() {
    let src = "base: &tag v1 # shared\nother: *tag\n";
    assert_eq!(
        set_one(src, "base", "v2"),
        "base: &tag v2 # shared\nother: *tag\n"
    );
    let src = "t: !!str 1.0\n";
    assert_eq!(set_one(src, "t", "1.10"), "t: !!str 1.10\n");
}

#[test]
fn refused_targets_say_what_and_where() {
    let src =
        "base: &tag v1\nother: *tag\nlit: |\n  text\nfold: >\n  text\nmap:\n  k: v\nseq:\n  - 1\n";
    let cases = [
        (
            "other",
            "line 2: the value is an alias (`*tag`) of the anchor defined at line 1",
        ),
        // Block scalars are reported at their first line of text.
        ("lit", "line 4: the value is a literal block scalar (`|`)"),
        ("fold", "line 6: the value is a folded block scalar (`>`)"),
        (
            "map",
            "line 8: the value is a mapping, not a scalar; extend the path to one of its keys (k)",
        ),
        ("seq", "line 10: the value is a sequence of 1 items"),
    ];
    for (path, want) in cases {
        let err = set_err(src, path, "x", Documents::One);
        assert_eq!(err.kind, YamlErrorKind::NotEditable);
        assert!(err.to_string().starts_with(want), "{path}: {err}");
    }
    let err = set_err("a: b\n  c\n", "a", "x", Documents::One);
    assert!(
        err.to_string().contains("folded over several lines"),
        "{err}"
    );
}

#[test]
fn document_markers_and_multi_document_files() {
    let src = "\
%YAML 1.2
---
kind: Deployment
image: app:1
...
---
kind: Service
---
# only a comment
";
    assert_eq!(
        set_one(src, "image", "app:2"),
        src.replace("app:1", "app:2")
    );
}

#[test]
fn multi_document_matches() {
    let src = "---\na: 1 # d0\n---\nb: 2\n---\na: 3 # d2\n";
    let path = Path::parse("a").unwrap();
    let err = set_err(src, "a", "x", Documents::One);
    assert_eq!(err.kind, YamlErrorKind::Ambiguous);
    assert_eq!(
        err.to_string(),
        "`a` matches in 2 documents: document 0 (line 2), document 2 (line 6); \
         use --all to edit each, or --document N to pick one"
    );
    assert_eq!(
        set(src, &path, "x", Documents::All).unwrap(),
        "---\na: x # d0\n---\nb: 2\n---\na: x # d2\n"
    );
    assert_eq!(
        set(src, &path, "x", Documents::Index(2)).unwrap(),
        "---\na: 1 # d0\n---\nb: 2\n---\na: x # d2\n"
    );
    let err = set_err(src, "a", "x", Documents::Index(1));
    assert_eq!(
        err.to_string(),
        "line 4: `a` not found: no key `a` in the document root (keys there: `b`)"
    );
    let err = set_err(src, "a", "x", Documents::Index(7));
    assert_eq!(
        err.to_string(),
        "there is no document 7: the file has 3 (numbered from 0)"
    );
    let err = set_err(src, "c", "x", Documents::All);
    assert_eq!(err.kind, YamlErrorKind::NotFound);
    assert!(err.to_string().ends_with("(searched 3 documents)"), "{err}");
}

#[test]
fn several_edits_to_one_file_apply_together() {
    let src = "a: 1\nb: 'x'\nc: [p, q]\n";
    let mut editor = Editor::new(src).unwrap();
    editor
        .set(&Path::parse("c[1]").unwrap(), "r", Documents::One)
        .unwrap();
    editor
        .set(&Path::parse("a").unwrap(), "v2", Documents::One)
        .unwrap();
    editor
        .set(&Path::parse("b").unwrap(), "y", Documents::One)
        .unwrap();
    assert_eq!(editor.finish().unwrap(), "a: v2\nb: 'y'\nc: [p, r]\n");

    let mut editor = Editor::new(src).unwrap();
    editor
        .set(&Path::parse("a").unwrap(), "v2", Documents::One)
        .unwrap();
    editor
        .set(&Path::parse("a").unwrap(), "v3", Documents::One)
        .unwrap();
    assert_eq!(editor.finish().unwrap_err().kind, YamlErrorKind::Ambiguous);
}

#[test]
fn empty_and_comment_only_files() {
    let err = set_err("", "a", "x", Documents::One);
    assert_eq!(err.kind, YamlErrorKind::NotFound);
    let err = set_err("# nothing\n", "a", "x", Documents::One);
    assert_eq!(err.kind, YamlErrorKind::NotFound);
}

#[test]
fn keys_that_are_not_strings_match_by_their_text() {
    assert_eq!(set_one("1: a\ntrue: b\n", "1", "z"), "1: z\ntrue: b\n");
    assert_eq!(set_one("1: a\ntrue: b\n", "true", "z"), "1: a\ntrue: z\n");
}

#[test]
fn a_value_at_the_end_of_a_file_without_newline() {
    assert_eq!(set_one("a: x", "a", "new"), "a: new");
    assert_eq!(set_one("a: \"x\"", "a", "new"), "a: \"new\"");
}

#[test]
fn empty_values_get_a_value_after_the_colon() {
    assert_eq!(set_one("a:\nb: 1\n", "a", "v1"), "a: v1\nb: 1\n");
    assert_eq!(
        set_one("a: # why\nb: 1\n", "a", "v1"),
        "a: v1 # why\nb: 1\n"
    );
    assert_eq!(set_one("x:\n  a:", "x.a", "v1"), "x:\n  a: v1");
    assert_eq!(set_one("e: {f: }\n", "e.f", "v1"), "e: {f: v1 }\n");
    assert_eq!(
        set_one("\u{feff}a:\n", "a", "1.10"),
        "\u{feff}a: \"1.10\"\n"
    );
    // An empty value is null, not "": asking for "" writes it.
    assert_eq!(set_one("a:\n", "a", ""), "a: \"\"\n");
    let err = set_err("l:\n  -\n  - x\n", "l[0]", "v", Documents::One);
    assert!(
        err.to_string().contains("the value is empty (null)"),
        "{err}"
    );
}

// Issue #8, case 1: properties before an empty value stay in front of it.
#[test]
fn an_anchored_empty_value_gets_the_value_after_its_anchor() {
    let src = "image:\n  tag: &apptag   # filled by CI\nsidecar:\n  tag: *apptag\n";
    assert_eq!(
        set_one(src, "image.tag", "1.4.2"),
        "image:\n  tag: &apptag 1.4.2   # filled by CI\nsidecar:\n  tag: *apptag\n"
    );
    assert_eq!(set_one("a: &x\n", "a", "v1"), "a: &x v1\n");
    assert_eq!(set_one("e: {f: &y }\n", "e.f", "v1"), "e: {f: &y v1 }\n");
}

// Issue #8, case 5: a typed scalar cannot take a string.
#[test]
fn explicitly_typed_scalars_are_refused() {
    for (src, tag) in [
        ("a: 1\nb: !!int 5\n", "!!int"),
        ("a: 1\nb: !!binary aGk=\n", "!!binary"),
        ("a: 1\nb: !custom x\n", "!custom"),
    ] {
        let err = set_err(src, "b", "1.4.2", Documents::One);
        assert_eq!(err.kind, YamlErrorKind::NotEditable, "{err}");
        assert_eq!(err.line, 2, "{err}");
        assert!(
            err.message.contains(&format!("explicit tag `{tag}`")),
            "{err}"
        );
    }
    // `!!str` and the non-specific `!` keep the value a string.
    assert_eq!(set_one("b: !!str 5\n", "b", "1.10"), "b: !!str 1.10\n");
    assert_eq!(set_one("b: ! 5\n", "b", "6"), "b: ! 6\n");
    // A tag with nothing after it is refused on its own line, for that reason.
    let err = set_err("a: 1\nd: !!str\ne: 2\n", "d", "v", Documents::One);
    assert_eq!((err.kind, err.line), (YamlErrorKind::NotEditable, 2));
    assert!(err.message.contains("empty `!!str` scalar"), "{err}");
}

// Issue #8, item 5: an integer stays an integer, a boolean a boolean.
#[test]
fn integers_and_booleans_keep_their_type() {
    assert_eq!(
        set_one("spec:\n  replicas: 2 # scale\n", "spec.replicas", "3"),
        "spec:\n  replicas: 3 # scale\n"
    );
    assert_eq!(set_one("on: true\n", "on", "false"), "on: false\n");
    // A value of another kind is written as a string, as before.
    assert_eq!(set_one("n: 2\n", "n", "v3"), "n: v3\n");
    assert_eq!(set_one("n: 2\n", "n", "010"), "n: \"010\"\n");
    assert_eq!(set_one("b: true\n", "b", "yes"), "b: \"yes\"\n");
    // A float is not kept: `tag: 1.10` is the classic string-as-float trap.
    assert_eq!(set_one("tag: 1.1\n", "tag", "1.2"), "tag: \"1.2\"\n");
    // Quoted numbers are strings and stay strings.
    assert_eq!(set_one("n: \"2\"\n", "n", "3"), "n: \"3\"\n");
    // Already the same integer: nothing to do.
    assert_eq!(set_one("n: 3\n", "n", "3"), "n: 3\n");
}

#[test]
fn an_empty_value_is_reported_on_its_own_line() {
    let stream = Stream::parse("a:\nb: 1\n").unwrap();
    let found = stream.resolve(&Path::parse("a").unwrap(), None).unwrap();
    assert_eq!(found[0].node.line, 1);
}

#[test]
fn ambiguous_paths_are_ambiguous_not_missing() {
    let err = set_err("a: 1\na: 2\n", "a", "v", Documents::One);
    assert_eq!(err.kind, YamlErrorKind::Ambiguous, "{err}");
    let err = set_err(
        "c:\n- name: x\n  v: 1\n- name: x\n  v: 2\n",
        "c[name=x].v",
        "v",
        Documents::One,
    );
    assert_eq!(err.kind, YamlErrorKind::Ambiguous, "{err}");
    assert_eq!(err.line, 4, "{err}");
}

#[test]
fn a_path_through_a_merge_key_names_the_anchor() {
    let src = "base: &defaults\n  tag: v1\napp:\n  <<: *defaults\n  name: app\n";
    let err = set_err(src, "app.tag", "v2", Documents::One);
    assert_eq!(err.kind, YamlErrorKind::NotEditable, "{err}");
    assert!(
        err.message.contains(
            "through the merge key `<<` from *defaults (the anchor `&defaults` at line 1)"
        ),
        "{err}"
    );
}

// Issue #8: files Helm, kubectl and PyYAML load, with flow collections whose
// later lines sit at (or left of) their key's indentation, are edited too.
#[test]
fn flow_collections_closed_at_the_parent_indentation() {
    let src = "\
podAnnotations: {
}
tolerations: [
{key: a, value: x}, # first
{key: b, value: y}
]
image:
  tag: v1
";
    assert_eq!(
        set_one(src, "image.tag", "v2"),
        src.replace("tag: v1", "tag: v2")
    );
    // A value inside such a collection: right bytes, right line.
    assert_eq!(
        set_one(src, "tolerations[1].value", "z"),
        src.replace("value: y", "value: z")
    );
    let stream = Stream::parse(src).unwrap();
    let found = stream
        .resolve(&Path::parse("tolerations[1].value").unwrap(), None)
        .unwrap();
    assert_eq!(found[0].node.line, 5);
    // What is broken for every loader still fails, with the first error.
    let err = set_err(
        "a: [\n1, 2\nimage:\n  tag: v1\n",
        "image.tag",
        "v2",
        Documents::One,
    );
    assert_eq!((err.kind, err.line), (YamlErrorKind::Syntax, 2), "{err}");
}

// The same, inside a block sequence item, with nested flow collections, a
// comment and an empty one: each later line sits left of where yaml-rust2
// wants flow content (and the scanner says "invalid indentation in flow
// construct" for some of them).
#[test]
fn flow_collections_left_of_their_item() {
    let src = "\
containers:
- name: app
  args: [
  \"--a\",
  \"--b\"
  ]
  resources: {
    limits: {cpu: 1},
  requests: {cpu: 1}
  }
nodeSelector: {
  # pick the pool
  pool: \"a\"
}
tolerations: [
]
image:
  tag: v1
";
    assert_eq!(
        set_one(src, "containers[0].resources.requests.cpu", "2"),
        src.replace("requests: {cpu: 1}", "requests: {cpu: 2}")
    );
    assert_eq!(
        set_one(src, "nodeSelector.pool", "b"),
        src.replace("pool: \"a\"", "pool: \"b\"")
    );
    assert_eq!(
        set_one(src, "containers[0].args[1]", "--c"),
        src.replace("\"--b\"", "\"--c\"")
    );
}
