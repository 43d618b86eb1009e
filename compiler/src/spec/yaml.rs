//! YAML text into a spanned [`Node`] tree, from `saphyr-parser`'s marked events (yaml_serde keeps
//! no positions). Scalars resolve by the YAML 1.2 core schema; anchors, aliases and `<<` merge keys
//! are honoured; duplicate keys, non-string keys and a second document are errors.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Tag};

use super::doc::{Key, Node, Pos, Value};
use super::error::{At, ErrorKind, SpecError};

/// Deepest nesting accepted (a spec needs about 8); bounds the recursive drop of the tree.
pub(crate) const MAX_DEPTH: usize = 128;
/// Most nodes a document may expand to through aliases (a "billion laughs" guard).
const MAX_NODES: usize = 1_000_000;

fn pos(m: &Marker) -> Pos {
    Pos {
        line: m.line(),
        column: m.col() + 1,
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Pos,
        anchor: usize,
    },
    Map {
        entries: Vec<(Key, Node)>,
        pending: Option<Key>,
        pos: Pos,
        anchor: usize,
    },
}

struct Builder<'f> {
    file: &'f str,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    root: Option<Node>,
}

impl Builder<'_> {
    fn err(&self, p: Pos, kind: ErrorKind, msg: impl Into<String>) -> SpecError {
        SpecError::new(At::text(self.file, p), kind, msg)
    }

    fn count(&mut self, n: usize, p: Pos) -> Result<(), SpecError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(self.err(
                p,
                ErrorKind::InvalidValue,
                format!("the document expands to more than {MAX_NODES} values (aliases?)"),
            ));
        }
        Ok(())
    }

    /// True when the innermost open container is a mapping waiting for a key.
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { pending: None, .. }))
    }

    fn open(&mut self, frame: Frame, p: Pos) -> Result<(), SpecError> {
        if self.expecting_key() {
            return Err(self.err(
                p,
                ErrorKind::WrongType,
                "mapping keys must be plain strings, found a list or mapping used as a key",
            ));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.err(
                p,
                ErrorKind::InvalidValue,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Attach a finished node to its parent (or make it the document root).
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), SpecError> {
        if anchor > 0 {
            let p = node.pos.unwrap_or(Pos { line: 1, column: 1 });
            self.count(node.size(), p)?;
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, pending, .. }) => match pending.take() {
                Some(key) => entries.push((key, node)),
                // Scalar keys are taken before resolution (see `scalar`); anything else is not a key.
                None => {
                    let p = node.pos.unwrap_or(Pos { line: 1, column: 1 });
                    return Err(self.err(
                        p,
                        ErrorKind::WrongType,
                        "mapping keys must be plain strings, found an alias used as a key",
                    ));
                }
            },
        }
        Ok(())
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<Cow<'_, Tag>>,
        p: Pos,
    ) -> Result<(), SpecError> {
        self.count(1, p)?;
        if let Some(Frame::Map { pending, .. }) = self.stack.last_mut() {
            if pending.is_none() {
                *pending = Some(Key {
                    name: text.into_owned(),
                    pos: Some(p),
                });
                return Ok(());
            }
        }
        let value = match (&tag, style) {
            (Some(t), _) => self.tagged(t, &text, p)?,
            (None, ScalarStyle::Plain) => resolve_plain(&text),
            (None, _) => Value::Str(text.into_owned()),
        };
        self.finish(Node::new(value, Some(p)), anchor)
    }

    fn tagged(&self, tag: &Tag, text: &str, p: Pos) -> Result<Value, SpecError> {
        let bad = |what: &str| {
            self.err(
                p,
                ErrorKind::WrongType,
                format!("`!!{}` tag on \"{text}\", which is not {what}", tag.suffix),
            )
        };
        if !tag.is_yaml_core_schema() {
            return Err(self.err(
                p,
                ErrorKind::InvalidValue,
                format!(
                    "unsupported YAML tag `{}{}` (only the core schema tags !!str, !!int, !!float, !!bool, !!null)",
                    tag.handle, tag.suffix
                ),
            ));
        }
        let plain = resolve_plain(text);
        Ok(match tag.suffix.as_str() {
            "str" => Value::Str(text.to_string()),
            "int" => match plain {
                Value::Int(_) => plain,
                _ => return Err(bad("an integer")),
            },
            "float" => match plain {
                Value::Int(i) => Value::Float(i as f64),
                Value::Float(_) => plain,
                _ => return Err(bad("a number")),
            },
            "bool" => match plain {
                Value::Bool(_) => plain,
                _ => return Err(bad("a boolean")),
            },
            "null" => match plain {
                Value::Null => plain,
                _ => return Err(bad("null")),
            },
            other => {
                return Err(self.err(
                    p,
                    ErrorKind::InvalidValue,
                    format!("unsupported YAML tag `!!{other}` on a scalar"),
                ))
            }
        })
    }

    fn close_map(&mut self, end: Pos) -> Result<(), SpecError> {
        let Some(Frame::Map {
            entries,
            pending,
            pos: p,
            anchor,
        }) = self.stack.pop()
        else {
            return Err(self.err(end, ErrorKind::Syntax, "unbalanced mapping end"));
        };
        let mut entries = entries;
        if let Some(k) = pending {
            // The parser always pairs keys with values; a dangling key reads as null to stay total.
            let kp = k.pos;
            entries.push((k, Node::new(Value::Null, kp)));
        }
        let merged = self.merge(entries)?;
        self.finish(Node::new(Value::Map(merged), Some(p)), anchor)
    }

    /// Apply `<<` merge keys (explicit keys win, earlier merges win over later ones) and reject
    /// duplicate explicit keys.
    fn merge(&self, entries: Vec<(Key, Node)>) -> Result<Vec<(Key, Node)>, SpecError> {
        let mut own: Vec<(Key, Node)> = Vec::with_capacity(entries.len());
        let mut merges: Vec<Node> = Vec::new();
        for (k, v) in entries {
            if k.name == "<<" {
                merges.push(v);
                continue;
            }
            if let Some((first, _)) = own.iter().find(|(o, _)| o.name == k.name) {
                let p = k.pos.unwrap_or(Pos { line: 1, column: 1 });
                let prev = first
                    .pos
                    .map(|q| format!(" (first at line {})", q.line))
                    .unwrap_or_default();
                return Err(self.err(p, ErrorKind::InvalidValue, format!("duplicate key `{}`{prev}", k.name)));
            }
            own.push((k, v));
        }
        for m in merges {
            let p = m.pos.unwrap_or(Pos { line: 1, column: 1 });
            let sources = match m.value {
                Value::Map(e) => vec![e],
                Value::Seq(items) => {
                    let mut out = Vec::new();
                    for it in items {
                        match it.value {
                            Value::Map(e) => out.push(e),
                            other => {
                                return Err(self.err(
                                    it.pos.unwrap_or(p),
                                    ErrorKind::WrongType,
                                    format!("`<<` merges mappings, found {}", other.describe()),
                                ))
                            }
                        }
                    }
                    out
                }
                other => {
                    return Err(self.err(
                        p,
                        ErrorKind::WrongType,
                        format!("`<<` merges mappings, found {}", other.describe()),
                    ))
                }
            };
            for src in sources {
                for (k, v) in src {
                    if !own.iter().any(|(o, _)| o.name == k.name) {
                        own.push((k, v));
                    }
                }
            }
        }
        Ok(own)
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
pub(crate) fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            if let Ok(i) = i128::from_str_radix(hex, 16) {
                return Value::Int(i);
            }
        }
    }
    if let Some(oct) = s.strip_prefix("0o") {
        if !oct.is_empty() && oct.chars().all(|c| ('0'..='7').contains(&c)) {
            if let Ok(i) = i128::from_str_radix(oct, 8) {
                return Value::Int(i);
            }
        }
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !body.is_empty() && body.chars().all(|c| c.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i128>() {
            return Value::Int(i);
        }
    }
    if is_core_float(body) {
        if let Ok(x) = s.parse::<f64>() {
            return Value::Float(x);
        }
    }
    Value::Str(s.to_string())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` (sign already stripped).
fn is_core_float(s: &str) -> bool {
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
    let mant_ok = match mant.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mant),
    };
    let exp_ok = match exp {
        None => true,
        Some(e) => digits(e.strip_prefix(['-', '+']).unwrap_or(e)),
    };
    mant_ok && exp_ok
}

/// Parse one YAML document into a spanned tree. `Ok(None)` for an empty stream.
pub fn parse(src: &str, file: &str) -> Result<Option<Node>, SpecError> {
    let mut b = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
    };
    let mut documents = 0usize;
    let mut parser = Parser::new_from_str(src);
    while let Some(ev) = parser.next_event() {
        let (ev, span) = match ev {
            Ok(x) => x,
            Err(e) => {
                return Err(b.err(
                    pos(e.marker()),
                    ErrorKind::Syntax,
                    format!("invalid YAML: {}", e.info()),
                ))
            }
        };
        let p = pos(&span.start);
        match ev {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(b.err(
                        p,
                        ErrorKind::Syntax,
                        "a spec holds one YAML document; found a second one",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, tag) => b.scalar(text, style, anchor, tag, p)?,
            Event::Alias(id) => {
                let Some(node) = b.anchors.get(&id).cloned() else {
                    return Err(b.err(p, ErrorKind::Syntax, "alias of an unknown anchor"));
                };
                b.count(node.size(), p)?;
                // An alias node points at its use, not at the anchored original.
                let node = Node::new(node.value, Some(p));
                b.finish(node, 0)?;
            }
            Event::SequenceStart(anchor, _) => b.open(
                Frame::Seq {
                    items: Vec::new(),
                    pos: p,
                    anchor,
                },
                p,
            )?,
            Event::MappingStart(anchor, _) => b.open(
                Frame::Map {
                    entries: Vec::new(),
                    pending: None,
                    pos: p,
                    anchor,
                },
                p,
            )?,
            Event::SequenceEnd => match b.stack.pop() {
                Some(Frame::Seq { items, pos: sp, anchor }) => {
                    b.finish(Node::new(Value::Seq(items), Some(sp)), anchor)?
                }
                _ => return Err(b.err(p, ErrorKind::Syntax, "unbalanced list end")),
            },
            Event::MappingEnd => b.close_map(p)?,
            Event::StreamEnd => break,
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
        }
    }
    Ok(b.root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(n: &Node) -> &[(Key, Node)] {
        match &n.value {
            Value::Map(e) => e,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn core_schema_scalars() {
        assert_eq!(resolve_plain("12"), Value::Int(12));
        assert_eq!(resolve_plain("-3"), Value::Int(-3));
        assert_eq!(resolve_plain("0x1f"), Value::Int(31));
        assert_eq!(resolve_plain("1.0e-5"), Value::Float(1.0e-5));
        assert_eq!(resolve_plain("1e-5"), Value::Float(1.0e-5));
        assert_eq!(resolve_plain(".5"), Value::Float(0.5));
        assert_eq!(resolve_plain("10000."), Value::Float(10000.0));
        assert_eq!(resolve_plain("~"), Value::Null);
        assert_eq!(resolve_plain("True"), Value::Bool(true));
        assert_eq!(resolve_plain("yes"), Value::Str("yes".into()));
        assert_eq!(resolve_plain("1.2.3"), Value::Str("1.2.3".into()));
        assert_eq!(resolve_plain("e5"), Value::Str("e5".into()));
    }

    #[test]
    fn positions_are_one_based() {
        let n = parse("a: 1\nb:\n  c: \"x\"\n", "t.yaml").unwrap().unwrap();
        let e = map(&n);
        assert_eq!(e[0].0.pos, Some(Pos { line: 1, column: 1 }));
        assert_eq!(e[0].1.pos, Some(Pos { line: 1, column: 4 }));
        let inner = map(&e[1].1);
        assert_eq!(inner[0].0.pos, Some(Pos { line: 3, column: 3 }));
        assert_eq!(inner[0].1.value, Value::Str("x".into()));
    }

    #[test]
    fn anchors_aliases_and_merge() {
        let src = "a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  q: 3\n";
        let n = parse(src, "t.yaml").unwrap().unwrap();
        let b = map(&map(&n)[1].1);
        let kv: Vec<(&str, &Value)> = b.iter().map(|(k, v)| (k.name.as_str(), &v.value)).collect();
        assert_eq!(kv, [("q", &Value::Int(3)), ("p", &Value::Int(1))]);
    }

    #[test]
    fn errors_are_located() {
        let e = parse("a: 1\na: 2\n", "t.yaml").unwrap_err();
        assert_eq!(e.position(), Some((2, 1)));
        assert!(e.to_string().contains("duplicate key `a`"), "{e}");
        let e = parse("a: [1, 2\nb: 3\n", "t.yaml").unwrap_err();
        assert_eq!(e.kind(), Some(ErrorKind::Syntax));
        assert!(e.position().is_some());
        let e = parse("a: 1\n---\nb: 2\n", "t.yaml").unwrap_err();
        assert_eq!(e.position(), Some((2, 1)));
        assert!(parse("# only a comment\n", "t.yaml").unwrap().is_none());
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let e = parse(&src, "t.yaml").unwrap_err();
        assert!(e.to_string().contains("expands to more than"), "{e}");
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let src = "[".repeat(1000) + &"]".repeat(1000);
        let e = parse(&src, "t.yaml").unwrap_err();
        // saphyr's own recursion limit may fire before ours; either way a located error.
        assert!(e.position().is_some(), "{e}");
        let e = parse(&("a:\n".to_string() + &"  - ".repeat(200) + "x\n"), "t.yaml");
        assert!(e.is_err());
    }
}
