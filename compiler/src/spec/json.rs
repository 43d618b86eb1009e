//! JSON text (a checkpoint's `config.json`) into a spanned [`Node`] tree.
//!
//! `serde_json` checks the syntax first (its messages carry line and column, and it bounds the
//! nesting depth); a small walker over the now-known-valid text then records where each value
//! starts. Strings and numbers are decoded by `serde_json` from their exact source slices.

use super::doc::{Key, Node, Pos, Value};
use super::error::{At, ErrorKind, SpecError};
use super::yaml::MAX_DEPTH;

struct Walker<'s> {
    src: &'s str,
    /// Byte offset of the next character.
    at: usize,
    line: usize,
    column: usize,
    file: &'s str,
}

impl<'s> Walker<'s> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn err(&self, p: Pos, kind: ErrorKind, msg: impl Into<String>) -> SpecError {
        SpecError::new(At::text(self.file, p), kind, msg)
    }

    fn peek(&self) -> Option<char> {
        self.src.get(self.at..).and_then(|s| s.chars().next())
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.bump();
        }
    }

    fn expect(&mut self, want: char) -> Result<(), SpecError> {
        self.skip_ws();
        let p = self.pos();
        match self.bump() {
            Some(c) if c == want => Ok(()),
            _ => Err(self.err(p, ErrorKind::Syntax, format!("invalid JSON: expected `{want}`"))),
        }
    }

    /// The raw text of a string literal, quotes included.
    fn string_slice(&mut self) -> Result<&'s str, SpecError> {
        let start = self.at;
        let p = self.pos();
        self.expect('"')?;
        loop {
            match self.bump() {
                Some('\\') => {
                    self.bump();
                }
                Some('"') => break,
                Some(_) => {}
                None => return Err(self.err(p, ErrorKind::Syntax, "invalid JSON: unterminated string")),
            }
        }
        Ok(self.src.get(start..self.at).unwrap_or(""))
    }

    fn string(&mut self) -> Result<String, SpecError> {
        let p = self.pos();
        let raw = self.string_slice()?;
        serde_json::from_str::<String>(raw)
            .map_err(|e| self.err(p, ErrorKind::Syntax, format!("invalid JSON string: {e}")))
    }

    fn value(&mut self, depth: usize) -> Result<Node, SpecError> {
        self.skip_ws();
        let p = self.pos();
        if depth > MAX_DEPTH {
            return Err(self.err(
                p,
                ErrorKind::InvalidValue,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        let value = match self.peek() {
            Some('{') => {
                self.bump();
                let mut entries: Vec<(Key, Node)> = Vec::new();
                self.skip_ws();
                if self.peek() == Some('}') {
                    self.bump();
                } else {
                    loop {
                        self.skip_ws();
                        let kp = self.pos();
                        let name = self.string()?;
                        if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == name) {
                            let prev = first
                                .pos
                                .map(|q| format!(" (first at line {})", q.line))
                                .unwrap_or_default();
                            return Err(self.err(kp, ErrorKind::InvalidValue, format!("duplicate key `{name}`{prev}")));
                        }
                        self.expect(':')?;
                        let v = self.value(depth + 1)?;
                        entries.push((Key { name, pos: Some(kp) }, v));
                        self.skip_ws();
                        let sp = self.pos();
                        match self.bump() {
                            Some(',') => continue,
                            Some('}') => break,
                            _ => return Err(self.err(sp, ErrorKind::Syntax, "invalid JSON: expected `,` or `}`")),
                        }
                    }
                }
                Value::Map(entries)
            }
            Some('[') => {
                self.bump();
                let mut items = Vec::new();
                self.skip_ws();
                if self.peek() == Some(']') {
                    self.bump();
                } else {
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.skip_ws();
                        let sp = self.pos();
                        match self.bump() {
                            Some(',') => continue,
                            Some(']') => break,
                            _ => return Err(self.err(sp, ErrorKind::Syntax, "invalid JSON: expected `,` or `]`")),
                        }
                    }
                }
                Value::Seq(items)
            }
            Some('"') => Value::Str(self.string()?),
            Some(_) => {
                let start = self.at;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')) {
                    self.bump();
                }
                let tok = self.src.get(start..self.at).unwrap_or("");
                match tok {
                    "null" => Value::Null,
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ if tok.contains(['.', 'e', 'E']) => match tok.parse::<f64>() {
                        Ok(x) => Value::Float(x),
                        Err(_) => return Err(self.err(p, ErrorKind::Syntax, format!("invalid JSON number `{tok}`"))),
                    },
                    _ => match tok.parse::<i128>() {
                        Ok(i) => Value::Int(i),
                        Err(_) => match tok.parse::<f64>() {
                            Ok(x) => Value::Float(x),
                            Err(_) => {
                                return Err(self.err(p, ErrorKind::Syntax, format!("invalid JSON value `{tok}`")))
                            }
                        },
                    },
                }
            }
            None => return Err(self.err(p, ErrorKind::Syntax, "invalid JSON: unexpected end of input")),
        };
        Ok(Node::new(value, Some(p)))
    }
}

/// Parse JSON text into a spanned tree; `Ok(None)` for an empty (whitespace-only) text.
pub fn parse(src: &str, file: &str) -> Result<Option<Node>, SpecError> {
    if src.trim().is_empty() {
        return Ok(None);
    }
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(src) {
        let msg = e.to_string();
        // serde_json appends " at line L column C"; the location prefix says it already.
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg.get(..i).unwrap_or(&msg).to_string(),
            None => msg,
        };
        let pos = Pos {
            line: e.line().max(1),
            column: e.column().max(1),
        };
        return Err(SpecError::new(
            At::text(file, pos),
            ErrorKind::Syntax,
            format!("invalid JSON: {msg}"),
        ));
    }
    let mut w = Walker {
        src,
        at: 0,
        line: 1,
        column: 1,
        file,
    };
    // A UTF-8 byte order mark is not JSON whitespace, but editors write it.
    if w.peek() == Some('\u{feff}') {
        w.at += '\u{feff}'.len_utf8();
    }
    w.value(0).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_positions() {
        let src = "{\n  \"a\": 1,\n  \"b\": [1.5, \"x\\n\", null, true],\n  \"c\": {\"d\": -7e2}\n}";
        let n = parse(src, "c.json").unwrap().unwrap();
        let Value::Map(e) = &n.value else { panic!("{n:?}") };
        assert_eq!(e[0].0.pos, Some(Pos { line: 2, column: 3 }));
        assert_eq!(e[0].1.value, Value::Int(1));
        assert_eq!(e[0].1.pos, Some(Pos { line: 2, column: 8 }));
        let Value::Seq(items) = &e[1].1.value else { panic!() };
        assert_eq!(items[1].value, Value::Str("x\n".into()));
        assert_eq!(items[1].pos, Some(Pos { line: 3, column: 14 }));
        let Value::Map(c) = &e[2].1.value else { panic!() };
        assert_eq!(c[0].1.value, Value::Float(-700.0));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("{\n  \"a\": 1,\n}", "c.json").unwrap_err();
        assert_eq!(e.kind(), Some(ErrorKind::Syntax));
        assert_eq!(e.position(), Some((3, 1)));
        let e = parse("{\"a\": 1, \"a\": 2}", "c.json").unwrap_err();
        assert!(e.to_string().contains("duplicate key `a`"), "{e}");
        assert_eq!(e.position(), Some((1, 10)));
        assert!(parse("  \n", "c.json").unwrap().is_none());
    }
}
