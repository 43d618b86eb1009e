//! A small spanned document tree that both YAML and JSON map into, so the resolver reports the
//! line and column of whatever it rejects. Values built in memory (`serde_json::Value`) carry no
//! positions; errors about them name the key path only.

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A value with the position where it starts in the source text, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Option<Pos>,
}

/// A mapping key (always a string in a spec) with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Option<Pos>,
}

/// The data model of a spec: JSON's, with integers kept apart from floats.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Wide enough that any integer a user writes is kept exactly (range checks come later).
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order; duplicates are rejected by the readers.
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// How a value is named in "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Int(i) => format!("the integer {i}"),
            Value::Float(x) => format!("the number {x}"),
            Value::Str(s) => {
                let short: String = s.chars().take(40).collect();
                let dots = if s.chars().count() > 40 { "..." } else { "" };
                format!("the string \"{short}{dots}\"")
            }
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }
}

impl Node {
    pub fn new(value: Value, pos: Option<Pos>) -> Node {
        Node { value, pos }
    }

    /// Number of nodes in this subtree (bounds alias expansion).
    pub fn size(&self) -> usize {
        match &self.value {
            Value::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|(_, v)| v.size()).sum::<usize>(),
            _ => 1,
        }
    }

    /// A tree without positions from an in-memory JSON value (configs built by surgery).
    pub fn from_json(v: &serde_json::Value) -> Node {
        let value = match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i128::from(i))
                } else if let Some(u) = n.as_u64() {
                    Value::Int(i128::from(u))
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => Value::Seq(items.iter().map(Node::from_json).collect()),
            serde_json::Value::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| {
                        (
                            Key {
                                name: k.clone(),
                                pos: None,
                            },
                            Node::from_json(v),
                        )
                    })
                    .collect(),
            ),
        };
        Node { value, pos: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_json_keeps_order_and_kinds() {
        let v = serde_json::json!({"b": 1, "a": [1.5, "x", null, true], "big": u64::MAX});
        let n = Node::from_json(&v);
        let Value::Map(entries) = &n.value else {
            panic!("not a map: {n:?}")
        };
        let names: Vec<&str> = entries.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(names, ["b", "a", "big"]);
        assert_eq!(entries[0].1.value, Value::Int(1));
        assert_eq!(entries[2].1.value, Value::Int(i128::from(u64::MAX)));
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("not a seq")
        };
        assert_eq!(items[0].value, Value::Float(1.5));
        assert_eq!(items[1].value, Value::Str("x".into()));
        assert_eq!(items[2].value, Value::Null);
        assert_eq!(items[3].value, Value::Bool(true));
        assert_eq!(n.size(), 8);
    }
}
