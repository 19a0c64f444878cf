//! Tokenizer and recursive-descent parser for [`Selector`](super::Selector).

use std::collections::BTreeSet;

use super::Selector;

/// Longest label libcalico-go accepts.
const MAX_LABEL_LENGTH: usize = 512;
/// Nesting limit for parentheses and `!`, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// A selector that does not parse: where (byte offset) and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {input:?} at position {position}: {message}")]
pub struct SelectorError {
    /// The selector text.
    pub input: String,
    /// Byte offset of the problem.
    pub position: usize,
    /// What was expected, or what is wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Label(String),
    Str(String),
    LBrace,
    RBrace,
    Comma,
    Eq,
    Ne,
    In,
    NotIn,
    Not,
    Contains,
    StartsWith,
    EndsWith,
    All,
    Has(String),
    LParen,
    RParen,
    And,
    Or,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Label(l) => format!("label {l:?}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::Comma => "','".into(),
            Tok::Eq => "'=='".into(),
            Tok::Ne => "'!='".into(),
            Tok::In => "'in'".into(),
            Tok::NotIn => "'not in'".into(),
            Tok::Not => "'!'".into(),
            Tok::Contains => "'contains'".into(),
            Tok::StartsWith => "'starts with'".into(),
            Tok::EndsWith => "'ends with'".into(),
            Tok::All => "'all()'".into(),
            Tok::Has(_) => "'has(..)'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::And => "'&&'".into(),
            Tok::Or => "'||'".into(),
            Tok::Eof => "end of selector".into(),
        }
    }
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-')
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn err(&self, position: usize, message: impl Into<String>) -> SelectorError {
        SelectorError {
            input: self.input.to_string(),
            position,
            message: message.into(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn skip_ws(&mut self) {
        while let Some(&c) = self.input.as_bytes().get(self.pos) {
            if c == b' ' || c == b'\t' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn ident(&mut self) -> Result<String, SelectorError> {
        let start = self.pos;
        let bytes = self.input.as_bytes();
        while self.pos < bytes.len() && is_ident_char(bytes[self.pos]) {
            self.pos += 1;
        }
        let ident = &self.input[start..self.pos];
        if ident.is_empty() {
            return Err(self.err(start, "expected a label name"));
        }
        if ident.len() > MAX_LABEL_LENGTH {
            return Err(self.err(start, format!("label longer than {MAX_LABEL_LENGTH} bytes")));
        }
        Ok(ident.to_string())
    }

    /// Consumes `words` (separated by blanks) if they are next and followed by a word boundary.
    fn keyword(&mut self, words: &[&str]) -> bool {
        let save = self.pos;
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                self.skip_ws();
            }
            if self.rest().starts_with(word) {
                self.pos += word.len();
            } else {
                self.pos = save;
                return false;
            }
        }
        if self
            .input
            .as_bytes()
            .get(self.pos)
            .is_some_and(|&c| is_ident_char(c))
        {
            self.pos = save;
            return false;
        }
        true
    }

    fn tokens(mut self) -> Result<Vec<(usize, Tok)>, SelectorError> {
        let mut out: Vec<(usize, Tok)> = Vec::new();
        loop {
            self.skip_ws();
            let start = self.pos;
            let Some(&c) = self.input.as_bytes().get(self.pos) else {
                out.push((start, Tok::Eof));
                return Ok(out);
            };
            let after_label = matches!(out.last(), Some((_, Tok::Label(_))));
            let tok = match c {
                b'(' => {
                    self.pos += 1;
                    Tok::LParen
                }
                b')' => {
                    self.pos += 1;
                    Tok::RParen
                }
                b'{' => {
                    self.pos += 1;
                    Tok::LBrace
                }
                b'}' => {
                    self.pos += 1;
                    Tok::RBrace
                }
                b',' => {
                    self.pos += 1;
                    Tok::Comma
                }
                b'"' | b'\'' => {
                    let body = &self.input[self.pos + 1..];
                    let Some(end) = body.find(c as char) else {
                        return Err(self.err(start, "unterminated string"));
                    };
                    self.pos += end + 2;
                    Tok::Str(body[..end].to_string())
                }
                b'=' => {
                    if self.rest().starts_with("==") {
                        self.pos += 2;
                        Tok::Eq
                    } else {
                        return Err(self.err(start, "expected '=='"));
                    }
                }
                b'!' => {
                    if self.rest().starts_with("!=") {
                        self.pos += 2;
                        Tok::Ne
                    } else {
                        self.pos += 1;
                        Tok::Not
                    }
                }
                b'&' => {
                    if self.rest().starts_with("&&") {
                        self.pos += 2;
                        Tok::And
                    } else {
                        return Err(self.err(start, "expected '&&'"));
                    }
                }
                b'|' => {
                    if self.rest().starts_with("||") {
                        self.pos += 2;
                        Tok::Or
                    } else {
                        return Err(self.err(start, "expected '||'"));
                    }
                }
                _ if after_label => {
                    if self.keyword(&["contains"]) {
                        Tok::Contains
                    } else if self.keyword(&["starts", "with"]) {
                        Tok::StartsWith
                    } else if self.keyword(&["ends", "with"]) {
                        Tok::EndsWith
                    } else if self.keyword(&["not", "in"]) {
                        Tok::NotIn
                    } else if self.keyword(&["in"]) {
                        Tok::In
                    } else {
                        return Err(self.err(
                            start,
                            "expected an operator ('==', '!=', 'in', 'not in', 'contains', \
                             'starts with', 'ends with') after the label",
                        ));
                    }
                }
                _ => {
                    if self.rest().starts_with("has(") {
                        self.pos += 4;
                        self.skip_ws();
                        let label = self.ident()?;
                        self.skip_ws();
                        if !self.rest().starts_with(')') {
                            return Err(self.err(self.pos, "expected ')' to close has("));
                        }
                        self.pos += 1;
                        Tok::Has(label)
                    } else if self.rest().starts_with("all(") || self.rest().starts_with("global(")
                    {
                        self.pos += if self.rest().starts_with("all(") {
                            4
                        } else {
                            7
                        };
                        self.skip_ws();
                        if !self.rest().starts_with(')') {
                            return Err(self.err(self.pos, "expected ')' after all( or global("));
                        }
                        self.pos += 1;
                        Tok::All
                    } else if is_ident_char(c) {
                        Tok::Label(self.ident()?)
                    } else {
                        let ch = self.rest().chars().next().unwrap_or('?');
                        return Err(self.err(start, format!("unexpected character {ch:?}")));
                    }
                }
            };
            out.push((start, tok));
        }
    }
}

struct Parser {
    input: String,
    tokens: Vec<(usize, Tok)>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        // The token list always ends with Eof and `at` never passes it.
        &self.tokens[self.at].1
    }

    fn pos(&self) -> usize {
        self.tokens[self.at].0
    }

    fn bump(&mut self) -> Tok {
        let tok = self.tokens[self.at].1.clone();
        if tok != Tok::Eof {
            self.at += 1;
        }
        tok
    }

    fn expected(&self, what: &str) -> SelectorError {
        SelectorError {
            input: self.input.clone(),
            position: self.pos(),
            message: format!("expected {what}, found {}", self.peek().describe()),
        }
    }

    fn or(&mut self) -> Result<Selector, SelectorError> {
        let mut items = vec![self.and()?];
        while *self.peek() == Tok::Or {
            self.bump();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Selector::Or(items)
        })
    }

    fn and(&mut self) -> Result<Selector, SelectorError> {
        let mut items = vec![self.unary()?];
        while *self.peek() == Tok::And {
            self.bump();
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Selector::And(items)
        })
    }

    fn unary(&mut self) -> Result<Selector, SelectorError> {
        let mut negations = 0usize;
        while *self.peek() == Tok::Not {
            self.bump();
            negations += 1;
            if negations > MAX_DEPTH {
                return Err(self.expected("fewer '!'"));
            }
        }
        let mut sel = self.primary()?;
        for _ in 0..negations {
            sel = Selector::Not(Box::new(sel));
        }
        Ok(sel)
    }

    fn string(&mut self) -> Result<String, SelectorError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(s)
            }
            _ => Err(self.expected("a quoted string")),
        }
    }

    fn set(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        if *self.peek() != Tok::LBrace {
            return Err(self.expected("'{' starting a set of strings"));
        }
        self.bump();
        let mut set = BTreeSet::new();
        if *self.peek() == Tok::RBrace {
            self.bump();
            return Ok(set);
        }
        loop {
            set.insert(self.string()?);
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RBrace => {
                    self.bump();
                    return Ok(set);
                }
                _ => return Err(self.expected("',' or '}'")),
            }
        }
    }

    fn primary(&mut self) -> Result<Selector, SelectorError> {
        match self.peek().clone() {
            Tok::Has(label) => {
                self.bump();
                Ok(Selector::Has(label))
            }
            Tok::All => {
                self.bump();
                Ok(Selector::All)
            }
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.expected("less deeply nested parentheses"));
                }
                self.bump();
                let inner = self.or()?;
                if *self.peek() != Tok::RParen {
                    return Err(self.expected("')'"));
                }
                self.bump();
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Label(label) => {
                self.bump();
                let op = self.bump();
                Ok(match op {
                    Tok::Eq => Selector::Eq(label, self.string()?),
                    Tok::Ne => Selector::Ne(label, self.string()?),
                    Tok::Contains => Selector::Contains(label, self.string()?),
                    Tok::StartsWith => Selector::StartsWith(label, self.string()?),
                    Tok::EndsWith => Selector::EndsWith(label, self.string()?),
                    Tok::In => Selector::In(label, self.set()?),
                    Tok::NotIn => Selector::NotIn(label, self.set()?),
                    _ => {
                        self.at -= usize::from(op != Tok::Eof);
                        return Err(self.expected("an operator after the label"));
                    }
                })
            }
            _ => Err(self.expected("a label, has(..), all(), '!' or '('")),
        }
    }
}

/// Parses a selector string.
pub(super) fn parse(input: &str) -> Result<Selector, SelectorError> {
    let tokens = Lexer { input, pos: 0 }.tokens()?;
    let mut parser = Parser {
        input: input.to_string(),
        tokens,
        at: 0,
        depth: 0,
    };
    if *parser.peek() == Tok::Eof {
        return Ok(Selector::All);
    }
    let sel = parser.or()?;
    if *parser.peek() != Tok::Eof {
        return Err(parser.expected("'&&', '||' or the end of the selector"));
    }
    Ok(sel)
}
