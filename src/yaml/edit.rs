//! Splice a new value into a scalar's bytes, choosing quoting so the value
//! still loads as the same *string*.
//!
//! Where the old value's bytes end is [`span`](super::tree::span)'s answer. The
//! replacement keeps the style written in the file; a plain scalar is quoted
//! only when the new value would otherwise load as something else (`1.10` is
//! a float, `on` a YAML 1.1 boolean for Kubernetes' loader, `# x` a comment).

use std::ops::Range;
use std::sync::LazyLock;

use regex_lite::Regex;

use super::tree::{describe_block, Scalar, Style, YamlError, YamlErrorKind};

/// Replace `range` of the source with `text`, which loads as `value` of the
/// kind `loads`; the guard checks exactly that after the edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    pub range: Range<usize>,
    pub text: String,
    pub value: String,
    pub loads: Loads,
}

/// What a scalar loads as, for the kinds tagbump writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loads {
    /// A string, in every loader.
    Str,
    /// An integer, the same one in every loader (`3`, `-12`).
    Int,
    /// A boolean, the same in every loader (`true`, `False`).
    Bool,
    /// Anything else or a kind loaders disagree on (`yes`, `010`, `1.10`, null).
    Other,
}

impl Loads {
    /// What the scalar's text loads as.
    pub fn of(scalar: &Scalar) -> Loads {
        match (&scalar.tag, scalar.style) {
            _ if scalar.string_tag() => Loads::Str,
            (Some(_), _) => Loads::Other,
            (None, Style::Plain) => Loads::of_plain(&scalar.value, scalar.empty),
            (None, _) => Loads::Str,
        }
    }

    /// What `text` written as an untagged plain scalar loads as.
    pub fn of_plain(text: &str, empty: bool) -> Loads {
        if empty {
            Loads::Other
        } else if PLAIN_INT.is_match(text) {
            Loads::Int
        } else if PLAIN_BOOL.is_match(text) {
            Loads::Bool
        } else if !NON_STRING.is_match(text) && !go_resolves(text) {
            Loads::Str
        } else {
            Loads::Other
        }
    }
}

/// Decimal integers every loader reads as the same number: no leading zero
/// (octal in YAML 1.1 and Go), no `_` (a separator only in YAML 1.1 and Go).
static PLAIN_INT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:0|[-+]?[1-9][0-9]{0,17})$").expect("a valid pattern"));

/// Booleans in both YAML 1.1 and 1.2 core.
static PLAIN_BOOL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:true|True|TRUE|false|False|FALSE)$").expect("a valid pattern")
});

/// The text to write for `value` in place of `scalar`, in the scalar's style
/// where that keeps `value` a string, else double-quoted.
pub fn render(scalar: &Scalar, value: &str, line: usize) -> Result<String, YamlError> {
    if scalar.empty {
        // Inserted right after `key:` (and its properties), so it brings its
        // own separating space.
        let text = if plain_is_safe(value, scalar.flow, false) {
            value.to_string()
        } else {
            double_quoted(value)
        };
        return Ok(format!(" {text}"));
    }
    Ok(match scalar.style {
        Style::Plain if plain_is_safe(value, scalar.flow, scalar.string_tag()) => value.to_string(),
        Style::SingleQuoted if single_is_safe(value) => single_quoted(value),
        Style::Literal | Style::Folded => {
            return Err(YamlError::new(
                YamlErrorKind::NotEditable,
                line,
                format!("the value is a {}", describe_block(scalar.style)),
            ))
        }
        _ => double_quoted(value),
    })
}

/// Whether the text already in the file, for a scalar whose loaded value
/// equals the wanted one, also loads as a string. `tag: 1.10` holds "1.10" as
/// text but a YAML loader reads the float 1.1, so it is not up to date.
pub fn already_string(scalar: &Scalar) -> bool {
    !scalar.empty
        && (scalar.style != Style::Plain
            || plain_is_safe(&scalar.value, scalar.flow, scalar.string_tag()))
}

/// Whether `value` written as a plain scalar loads back as the same string,
/// under YAML 1.2 (core schema), YAML 1.1 (PyYAML) and go-yaml, the loader
/// of Helm and kubectl. An explicit `!!str` tag makes type resolution moot.
pub fn plain_is_safe(value: &str, flow: bool, tagged: bool) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    let last = value.chars().last().unwrap_or(first);
    if first.is_whitespace() || last.is_whitespace() || last == ':' {
        return false;
    }
    if value
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}'))
    {
        return false;
    }
    if "[]{},#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if matches!(first, '-' | '?' | ':') {
        let second = value[first.len_utf8()..].chars().next();
        if second.is_none_or(char::is_whitespace) || first != '-' {
            return false;
        }
    }
    if value.contains(": ") || value.contains(" #") || value.contains(":\t") {
        return false;
    }
    if flow && value.contains([',', '[', ']', '{', '}']) {
        return false;
    }
    if value.starts_with("---") || value.starts_with("...") {
        return false;
    }
    tagged || !(NON_STRING.is_match(value) || go_resolves(value))
}

/// Whether go-yaml (v2 and v3, as in Helm and kubectl) would load the plain
/// scalar `value` as something other than a string. Beyond the YAML 1.1 and
/// 1.2 patterns, it resolves a plain scalar that starts with a sign or a digit
/// by Go's `strconv.ParseInt(s, 0, 64)` after removing every `_`: `0X1F`,
/// `0B101`, `0O17`, `0o1_7`, `-0o17`, `0x_1F` and `-_1` are integers to it.
pub fn go_resolves(value: &str) -> bool {
    if !value.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
        return false;
    }
    let plain: String = value.chars().filter(|&c| c != '_').collect();
    GO_INT.is_match(&plain)
}

/// What Go's `strconv.ParseInt(s, 0, 64)` accepts, ignoring the range
/// (ParseUint and ParseFloat take the out-of-range ones, still not strings).
static GO_INT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[-+]?(?:0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$")
        .expect("a valid pattern")
});

/// Plain scalars that YAML 1.2 core or YAML 1.1 (PyYAML's, go-yaml v2's) would
/// resolve to null, bool, int, float, timestamp, merge or value.
static NON_STRING: LazyLock<Regex> = LazyLock::new(|| {
    let patterns = [
        // null
        r"~|null|Null|NULL",
        // bool: 1.2, then 1.1's extra spellings
        r"true|True|TRUE|false|False|FALSE",
        r"y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF",
        // int, 1.2 core
        r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+",
        // int, 1.1 (binary, octal, underscores, hex, base 60)
        r"[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
        // float, 1.2 core
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        // float, 1.1
        r"[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*",
        // timestamp, 1.1 (a date, optionally followed by a time)
        r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+).*)?",
        // merge and value keys, 1.1
        r"<<|=",
    ];
    let alternation = patterns.join("|");
    Regex::new(&format!("^(?:{alternation})$")).expect("the resolver patterns are valid")
});

fn single_is_safe(value: &str) -> bool {
    !value
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}'))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
}

fn single_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `value` as a double-quoted scalar, escaped so it loads back unchanged.
pub fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            '\u{feff}' => out.push_str("\\uFEFF"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || ('\u{80}'..'\u{a0}').contains(&c) => {
                out.push_str(&format!("\\x{:02X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Apply `splices` to `src`. Identical splices are applied once; overlapping
/// different ones are a bug in the caller and reported as such.
pub fn apply(src: &str, mut splices: Vec<Splice>) -> Result<String, Range<usize>> {
    splices.sort_by_key(|s| (s.range.start, s.range.end));
    splices.dedup();
    let mut out = String::with_capacity(src.len() + 64);
    let mut at = 0;
    for splice in &splices {
        if splice.range.start < at {
            return Err(splice.range.clone());
        }
        out.push_str(&src[at..splice.range.start]);
        out.push_str(&splice.text);
        at = splice.range.end;
    }
    out.push_str(&src[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_would_change_type_are_not_plain() {
        for v in [
            "",
            "1.10",
            "1",
            "-1",
            "+12",
            "0x1F",
            "0o17",
            "017",
            "0b101",
            "1_000",
            "1e3",
            "1E-3",
            ".5",
            "1.",
            ".inf",
            "-.Inf",
            ".nan",
            "true",
            "False",
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "N",
            "null",
            "~",
            "NULL",
            "2024-01-02",
            "2024-1-2T10:00:00Z",
            "1:20",
            "190:20:30.15",
            "<<",
            "=",
            // go-yaml's strconv.ParseInt(s, 0, 64) after removing `_`
            "0X1F",
            "0B101",
            "0O17",
            "0o1_7",
            "-0o17",
            "0x_1F",
            "-_1",
            "+0b1",
        ] {
            assert!(!plain_is_safe(v, false, false), "{v:?} must be quoted");
        }
    }

    #[test]
    fn what_plain_text_loads_as() {
        for (text, loads) in [
            ("3", Loads::Int),
            ("-12", Loads::Int),
            ("0", Loads::Int),
            ("true", Loads::Bool),
            ("False", Loads::Bool),
            ("1.4.2", Loads::Str),
            ("v3", Loads::Str),
            // Loaders disagree, or it is neither: not kept as a type.
            ("010", Loads::Other),
            ("+3", Loads::Int),
            ("1_000", Loads::Other),
            ("yes", Loads::Other),
            ("1.10", Loads::Other),
            ("~", Loads::Other),
            ("0x1F", Loads::Other),
        ] {
            assert_eq!(Loads::of_plain(text, false), loads, "{text:?}");
        }
        assert_eq!(Loads::of_plain("", true), Loads::Other);
    }

    #[test]
    fn values_with_indicators_are_not_plain() {
        for v in [
            "*x", "&x", "!x", "@x", "`x", "#x", "%x", "- x", "-", "? x", ":x", "|", ">", "'x",
            "\"x", "[x", "{x", "a: b", "a #b", "a:", " a", "a ", "a\nb", "a\tb", "---x", "...",
        ] {
            assert!(!plain_is_safe(v, false, false), "{v:?} must be quoted");
        }
        for v in ["a,b", "a[0]", "{x}"] {
            assert!(
                !plain_is_safe(v, true, false),
                "{v:?} must be quoted in flow context"
            );
        }
    }

    #[test]
    fn ordinary_tags_stay_plain() {
        for v in [
            "1.4.2",
            "v1.10",
            "1.10.0",
            "1.4.2-rc.1",
            "latest",
            "sha-3f2a9c1",
            "2024.01.02",
            "main_42",
            "-rc1",
            "a,b",
            "registry.example.com:5000/team/app:1.4.2",
            "app@sha256:abc",
            "1.2.3+build.5",
            "café",
        ] {
            assert!(plain_is_safe(v, false, false), "{v:?} should stay plain");
        }
        // A date-stamped build number is an int to a loader: quoted.
        assert!(!plain_is_safe("20240102", false, false));
    }

    #[test]
    fn an_explicit_tag_makes_resolution_moot() {
        assert!(plain_is_safe("1.10", false, true));
        assert!(!plain_is_safe("a: b", false, true));
    }

    #[test]
    fn double_quoting_escapes() {
        assert_eq!(double_quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(double_quoted("a\nb\tc\u{1}"), r#""a\nb\tc\x01""#);
        assert_eq!(double_quoted("é"), "\"é\"");
    }

    #[test]
    fn splices_apply_in_order_and_refuse_overlap() {
        let src = "0123456789";
        let s = |a, b, t: &str| Splice {
            range: a..b,
            text: t.into(),
            value: t.into(),
            loads: Loads::Str,
        };
        assert_eq!(
            apply(src, vec![s(5, 6, "X"), s(1, 2, "YY")]).unwrap(),
            "0YY234X6789"
        );
        assert_eq!(
            apply(src, vec![s(1, 2, "Y"), s(1, 2, "Y")]).unwrap(),
            "0Y23456789"
        );
        assert!(apply(src, vec![s(1, 4, "Y"), s(2, 3, "Z")]).is_err());
    }
}
