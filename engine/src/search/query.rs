//! The RediSearch query language (DIALECT 2): text to a [`Node`] tree.
//!
//! Pure: no index, no keyspace. Terms come out lower-cased and unescaped,
//! stop-words removed (unless [`ParseOptions::no_stopwords`]), `$params`
//! substituted. Field names are kept as written (the executor resolves them
//! against the schema, so an unknown field is its error, not ours).
//!
//! [`parse`] is the entry point; `Display` on [`Node`] prints the tree the
//! way FT.EXPLAIN does.
//!
//! # Grammar
//!
//! ```text
//! query        := union EOF
//! union        := intersection ('|' intersection)*      lowest precedence
//! intersection := item+                                  juxtaposition: AND
//! item         := '-' item                               NOT (at a word start)
//!               | '~' item                               optional
//!               | '(' union ')'
//!               | '"' words '"'                          phrase
//!               | '@' field ('|' field)* ':' ( '{' tags '}' | '[' bound ','? bound ']' | item )
//!               | '%'{1,3} term '%'{1,3}                 fuzzy, same count both sides
//!               | '$' name '*'?                          parameter, as a term (or prefix)
//!               | '*'                                    every document
//!               | word                                   terms and `abc*` prefixes
//! ```
//!
//! A word runs to whitespace or one of `( ) | "`; inside it RediSearch's
//! text separators (`` ,./(){}[]:;~!@#$%^&*-=+|'`"<>? `` and whitespace) split
//! it into several terms, all ANDed into the enclosing intersection
//! (`foo.bar` is `foo` AND `bar`), and a `*` right after a term makes it a
//! prefix. A backslash makes the next character part of the term
//! (`hello\-world` is the one term `hello-world`). A prefix of any
//! non-empty length is accepted (RediSearch's MINPREFIX is the executor's
//! business).
//!
//! `-` means NOT only at a word start (the start of the query, or after
//! whitespace, `(`, `|`, `:`, `-` or `~`); elsewhere it is a separator
//! (`foo-bar`, `(a)-b`). An empty query is a syntax error.
//!
//! Stop-words leave no node: an intersection or union drops them, a
//! modifier (`-`, `~`, `@f:`) over only stop-words drops itself, and a
//! query with nothing left is [`Node::Nothing`]. Phrases drop them too.
//!
//! Not supported, and a syntax error: attributes (`=> { $weight: ... }`),
//! suffix / contains queries (`*foo`), and nesting deeper than
//! [`MAX_DEPTH`]. Errors read `Syntax error at offset N near X`, N the
//! byte offset of the offending token, except a missing parameter:
//! ``No such parameter `name` ``.

/// One node of a parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Matches every document (`*`).
    All,
    /// Matches nothing (a query made only of stop-words).
    Nothing,
    /// A word, lower-cased and unescaped; the executor expands it with its stem
    /// unless `verbatim`.
    Term { text: String, verbatim: bool },
    /// `abc*`: every term starting with the text.
    Prefix(String),
    /// `%abc%` (distance 1), `%%abc%%` (2), `%%%abc%%%` (3).
    Fuzzy { text: String, distance: u8 },
    /// `"a b c"`: the words in order, next to each other (slop 0, in order),
    /// or within `slop` positions when the query sets SLOP.
    Phrase(Vec<String>),
    /// Every child matches (juxtaposition).
    And(Vec<Node>),
    /// Any child matches (`|`).
    Or(Vec<Node>),
    /// `-x`: documents that do not match the child.
    Not(Box<Node>),
    /// `~x`: the child raises the score when it matches but is not required.
    Optional(Box<Node>),
    /// `@a|b:x`: the child, matched only in these text fields.
    Fields { fields: Vec<String>, node: Box<Node> },
    /// `@f:{a | b | c*}`: a tag field holding any of the values.
    Tag { field: String, values: Vec<TagValue> },
    /// `@f:[min max]`: a numeric field in the range.
    Numeric { field: String, min: Bound, max: Bound },
}

/// One alternative of a tag query.
#[derive(Debug, Clone, PartialEq)]
pub enum TagValue {
    /// The exact tag (unescaped; case folding is the index's business).
    Exact(String),
    /// `abc*`.
    Prefix(String),
}

/// One end of a numeric range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// The value (`-inf` / `+inf` as infinities).
    pub value: f64,
    /// `(` in front: the end itself is excluded.
    pub exclusive: bool,
}

/// What parsing needs besides the text.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions<'a> {
    /// `PARAMS n name value ...`: `$name` in the query stands for the value.
    pub params: &'a [(String, String)],
    /// Keep stop-words (NOSTOPWORDS).
    pub no_stopwords: bool,
    /// The index's stop-word list; None: RediSearch's default list.
    pub stopwords: Option<&'a [String]>,
    /// VERBATIM: no stemming for any term.
    pub verbatim: bool,
}

/// Why a query did not parse: RediSearch's message (the command layer
/// prefixes it as RediSearch does: `Syntax error at offset N near X`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// How deep `(`, `-`, `~` and `@f:` may nest before the query is refused:
/// the parser recurses once per level, and so do dropping and printing the
/// tree, so this bounds their stack use.
pub const MAX_DEPTH: usize = 256;

/// RediSearch's default stop-words.
const DEFAULT_STOPWORDS: &[&str] = &[
    "a", "is", "the", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "it", "no", "not", "of", "on", "or",
    "such", "that", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
];

/// Parses a DIALECT 2 query into its tree.
///
/// A query of only stop-words is [`Node::Nothing`]; an empty query, a
/// syntax error or a missing `$param` is a [`QueryError`]. Never panics.
pub fn parse(text: &str, opts: &ParseOptions) -> Result<Node, QueryError> {
    let mut parser = Parser { src: text, pos: 0, depth: 0, opts };
    let node = parser.union()?;
    match parser.peek() {
        None => Ok(node.unwrap_or(Node::Nothing)),
        // The union stops only at the end or at a `)` it did not open.
        Some(_) => Err(parser.syntax(parser.pos)),
    }
}

/// Whether RediSearch's tokenizer splits text at `c`.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || ",./(){}[]:;~!@#$%^&*-=+|'`\"<>?".contains(c)
}

/// Whether `c` ends a word (and may start the next piece of syntax).
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '|' | '"')
}

/// Whether `c` may appear unescaped in a field or parameter name.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `Some(And)` of the children, the child itself when alone, None when none.
fn and_of(mut children: Vec<Node>) -> Option<Node> {
    match children.len() {
        0 => None,
        1 => children.pop(),
        _ => Some(Node::And(children)),
    }
}

/// `Some(Or)` of the alternatives, the one itself when alone, None when none.
fn or_of(mut alternatives: Vec<Node>) -> Option<Node> {
    match alternatives.len() {
        0 => None,
        1 => alternatives.pop(),
        _ => Some(Node::Or(alternatives)),
    }
}

/// The lexer and the recursive-descent parser in one: a cursor over the
/// text (`peek` / `bump`, always on a char boundary) and one method per
/// grammar rule. Items come back as `Vec<Node>`: a word may be several
/// terms, and a stop-word is none.
struct Parser<'s, 'o> {
    src: &'s str,
    /// Byte offset of the next char.
    pos: usize,
    /// Open `(`, `-`, `~` and `@f:` levels.
    depth: usize,
    opts: &'o ParseOptions<'o>,
}

impl Parser<'_, '_> {
    // ---- lexing ----

    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|rest| rest.chars().next())
    }

    /// The char after the next one.
    fn peek2(&self) -> Option<char> {
        let mut chars = self.src.get(self.pos..)?.chars();
        chars.next();
        chars.next()
    }

    /// The char before the cursor.
    fn prev(&self) -> Option<char> {
        self.src.get(..self.pos).and_then(|done| done.chars().next_back())
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn starts_with(&self, s: &str) -> bool {
        self.src.get(self.pos..).is_some_and(|rest| rest.starts_with(s))
    }

    /// `Syntax error at offset N near X`, X the text at `at` up to the next
    /// whitespace (at most 20 chars).
    fn syntax(&self, at: usize) -> QueryError {
        let near: String = self.src.get(at..).unwrap_or("").chars().take_while(|c| !c.is_whitespace()).take(20).collect();
        if near.is_empty() {
            QueryError(format!("Syntax error at offset {at} near end of query"))
        } else {
            QueryError(format!("Syntax error at offset {at} near {near}"))
        }
    }

    /// `$name` at the cursor (the `$` included): the parameter's value.
    fn param(&mut self) -> Result<String, QueryError> {
        let at = self.pos;
        self.bump();
        let name = self.name();
        if name.is_empty() {
            return Err(self.syntax(at));
        }
        self.lookup(&name)
    }

    fn lookup(&self, name: &str) -> Result<String, QueryError> {
        self.opts
            .params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| QueryError(format!("No such parameter `{name}`")))
    }

    /// A field or parameter name: name chars and escaped chars, as written.
    fn name(&mut self) -> String {
        let mut name = String::new();
        loop {
            match self.peek() {
                Some('\\') => match self.peek2() {
                    Some(c) => {
                        self.bump();
                        self.bump();
                        name.push(c);
                    }
                    None => break,
                },
                Some(c) if is_name_char(c) => {
                    self.bump();
                    name.push(c);
                }
                _ => break,
            }
        }
        name
    }

    fn is_stopword(&self, term: &str) -> bool {
        if self.opts.no_stopwords {
            return false;
        }
        match self.opts.stopwords {
            Some(list) => list.iter().any(|w| w.chars().flat_map(char::to_lowercase).eq(term.chars())),
            None => DEFAULT_STOPWORDS.contains(&term),
        }
    }

    /// A term node for `text` (already lower-cased), or none for a stop-word.
    fn term(&self, text: String, out: &mut Vec<Node>) {
        if !text.is_empty() && !self.is_stopword(&text) {
            out.push(Node::Term { text, verbatim: self.opts.verbatim });
        }
    }

    // ---- parsing ----

    /// Runs `f` one nesting level down, refusing past [`MAX_DEPTH`].
    fn nested<T>(&mut self, at: usize, f: impl FnOnce(&mut Self) -> Result<T, QueryError>) -> Result<T, QueryError> {
        if self.depth >= MAX_DEPTH {
            return Err(QueryError(format!("Syntax error at offset {at}: nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// `intersection ('|' intersection)*`; stops at the end or a `)`.
    fn union(&mut self) -> Result<Option<Node>, QueryError> {
        let mut alternatives = Vec::new();
        loop {
            alternatives.extend(self.intersection()?);
            if self.peek() == Some('|') {
                self.bump();
            } else {
                return Ok(or_of(alternatives));
            }
        }
    }

    /// One or more items up to `|`, `)` or the end.
    fn intersection(&mut self) -> Result<Option<Node>, QueryError> {
        let mut children = Vec::new();
        let mut items = 0;
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some(')') | Some('|') => break,
                Some(_) => {
                    children.extend(self.item()?);
                    items += 1;
                }
            }
        }
        if items == 0 {
            return Err(self.syntax(self.pos));
        }
        Ok(and_of(children))
    }

    /// Whether a `-` at the cursor starts a word (so means NOT).
    fn at_word_start(&self) -> bool {
        self.prev().is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '|' | ':' | '-' | '~'))
    }

    /// One item: see the grammar in the module doc.
    fn item(&mut self) -> Result<Vec<Node>, QueryError> {
        let at = self.pos;
        match self.peek() {
            Some('-') if self.at_word_start() => self.modifier(at, |node| Node::Not(Box::new(node))),
            Some('~') => self.modifier(at, |node| Node::Optional(Box::new(node))),
            Some('(') => {
                self.bump();
                let node = self.nested(at, Self::union)?;
                if self.peek() != Some(')') {
                    return Err(self.syntax(at));
                }
                self.bump();
                Ok(node.into_iter().collect())
            }
            Some('"') => self.phrase(),
            Some('@') => self.field(),
            Some('%') => self.fuzzy(),
            Some('$') => {
                let value = self.param()?.to_lowercase();
                if self.peek() == Some('*') && !value.is_empty() {
                    // `$p*`: a prefix of the value.
                    self.bump();
                    return Ok(vec![Node::Prefix(value)]);
                }
                let mut out = Vec::new();
                self.term(value, &mut out);
                Ok(out)
            }
            Some('*') => {
                self.bump();
                match self.peek() {
                    None => Ok(vec![Node::All]),
                    Some(c) if ends_word(c) => Ok(vec![Node::All]),
                    // `*foo`: suffix queries are not supported.
                    Some(_) => Err(self.syntax(at)),
                }
            }
            Some('{' | '}' | '[' | ']') | None => Err(self.syntax(at)),
            // Attributes: `=> { $weight: ... }`.
            Some('=') if self.starts_with("=>") => Err(self.syntax(at)),
            Some(_) => self.word(),
        }
    }

    /// `-x` / `~x`: `wrap` around the item that follows, directly.
    fn modifier(&mut self, at: usize, wrap: fn(Node) -> Node) -> Result<Vec<Node>, QueryError> {
        self.bump();
        match self.peek() {
            Some(c) if !ends_word(c) || c == '(' || c == '"' => {}
            _ => return Err(self.syntax(at)),
        }
        let inner = self.nested(at, Self::item)?;
        Ok(and_of(inner).map(wrap).into_iter().collect())
    }

    /// A word: its terms and prefixes, split at separators.
    fn word(&mut self) -> Result<Vec<Node>, QueryError> {
        let mut out = Vec::new();
        let mut term = String::new();
        while let Some(c) = self.peek() {
            if ends_word(c) {
                break;
            }
            let at = self.pos;
            self.bump();
            if c == '\\' {
                match self.bump() {
                    Some(escaped) => term.extend(escaped.to_lowercase()),
                    None => return Err(self.syntax(at)),
                }
            } else if c == '*' && !term.is_empty() {
                out.push(Node::Prefix(std::mem::take(&mut term)));
            } else if is_separator(c) {
                self.term(std::mem::take(&mut term), &mut out);
            } else {
                term.extend(c.to_lowercase());
            }
        }
        self.term(term, &mut out);
        Ok(out)
    }

    /// `"a b c"`: one verbatim term, a phrase, or none (all stop-words).
    fn phrase(&mut self) -> Result<Vec<Node>, QueryError> {
        let open = self.pos;
        self.bump();
        let mut words = Vec::new();
        let mut word = String::new();
        loop {
            match self.bump() {
                None => return Err(self.syntax(open)),
                Some('"') => break,
                Some('\\') => match self.bump() {
                    Some(escaped) => word.extend(escaped.to_lowercase()),
                    None => return Err(self.syntax(open)),
                },
                Some(c) if is_separator(c) => words.push(std::mem::take(&mut word)),
                Some(c) => word.extend(c.to_lowercase()),
            }
        }
        words.push(word);
        words.retain(|w| !w.is_empty() && !self.is_stopword(w));
        Ok(match words.len() {
            0 => vec![],
            1 => words.pop().map(|text| Node::Term { text, verbatim: true }).into_iter().collect(),
            _ => vec![Node::Phrase(words)],
        })
    }

    /// `%abc%`, `%%abc%%`, `%%%abc%%%`.
    fn fuzzy(&mut self) -> Result<Vec<Node>, QueryError> {
        let open = self.pos;
        let mut distance: u8 = 0;
        while self.peek() == Some('%') {
            self.bump();
            distance += 1;
            if distance > 3 {
                return Err(self.syntax(open));
            }
        }
        let mut text = String::new();
        loop {
            match self.peek() {
                Some('%') => break,
                Some('\\') => {
                    self.bump();
                    match self.bump() {
                        Some(escaped) => text.extend(escaped.to_lowercase()),
                        None => return Err(self.syntax(open)),
                    }
                }
                Some(c) if !is_separator(c) => {
                    self.bump();
                    text.extend(c.to_lowercase());
                }
                _ => return Err(self.syntax(open)),
            }
        }
        for _ in 0..distance {
            if self.bump() != Some('%') {
                return Err(self.syntax(open));
            }
        }
        if text.is_empty() || self.peek() == Some('%') {
            return Err(self.syntax(open));
        }
        Ok(vec![Node::Fuzzy { text, distance }])
    }

    /// `@f1|f2:` and what it applies to.
    fn field(&mut self) -> Result<Vec<Node>, QueryError> {
        let at = self.pos;
        self.bump();
        let mut fields = Vec::new();
        loop {
            let name = self.name();
            if name.is_empty() {
                return Err(self.syntax(at));
            }
            fields.push(name);
            match self.bump() {
                Some('|') => {}
                Some(':') => break,
                _ => return Err(self.syntax(at)),
            }
        }
        self.skip_ws();
        match self.peek() {
            Some('{' | '[') if fields.len() > 1 => Err(self.syntax(at)),
            // One field here (checked above): its name.
            Some('{') => self.tag(fields.concat()),
            Some('[') => self.numeric(fields.concat()),
            None | Some(')' | '|') => Err(self.syntax(at)),
            Some(_) => {
                let inner = self.nested(at, Self::item)?;
                Ok(and_of(inner).map(|node| Node::Fields { fields, node: Box::new(node) }).into_iter().collect())
            }
        }
    }

    /// `{a | b | c*}` for `field`.
    fn tag(&mut self, field: String) -> Result<Vec<Node>, QueryError> {
        let open = self.pos;
        self.bump();
        let mut values = Vec::new();
        // The chars of the value being read, each with whether it was escaped.
        let mut chars: Vec<(char, bool)> = Vec::new();
        let mut start = self.pos;
        loop {
            match self.bump() {
                None => return Err(self.syntax(open)),
                Some('\\') => match self.bump() {
                    Some(escaped) => chars.push((escaped, true)),
                    None => return Err(self.syntax(open)),
                },
                Some(c @ ('|' | '}')) => {
                    values.push(self.tag_value(std::mem::take(&mut chars), start)?);
                    if c == '}' {
                        break;
                    }
                    start = self.pos;
                }
                Some(c) => chars.push((c, false)),
            }
        }
        Ok(vec![Node::Tag { field, values }])
    }

    /// One tag alternative, read from `chars` (which started at `at`).
    fn tag_value(&self, mut chars: Vec<(char, bool)>, at: usize) -> Result<TagValue, QueryError> {
        let blank = |&(c, escaped): &(char, bool)| !escaped && c.is_whitespace();
        while chars.last().is_some_and(blank) {
            chars.pop();
        }
        let lead = chars.iter().take_while(|c| blank(c)).count();
        chars.drain(..lead);
        let prefix = chars.last() == Some(&('*', false));
        if prefix {
            chars.pop();
        }
        let param =
            chars.first() == Some(&('$', false)) && chars.len() > 1 && chars[1..].iter().all(|&(c, escaped)| !escaped && is_name_char(c));
        let text: String = if param {
            let name: String = chars[1..].iter().map(|&(c, _)| c).collect();
            self.lookup(&name)?
        } else {
            chars.iter().map(|&(c, _)| c).collect()
        };
        if text.is_empty() {
            return Err(self.syntax(at));
        }
        Ok(if prefix { TagValue::Prefix(text) } else { TagValue::Exact(text) })
    }

    /// `[min max]` (or `[min, max]`) for `field`.
    fn numeric(&mut self, field: String) -> Result<Vec<Node>, QueryError> {
        self.bump();
        self.skip_ws();
        let min = self.bound()?;
        self.skip_ws();
        if self.peek() == Some(',') {
            self.bump();
            self.skip_ws();
        }
        let max = self.bound()?;
        self.skip_ws();
        if self.peek() != Some(']') {
            return Err(self.syntax(self.pos));
        }
        self.bump();
        Ok(vec![Node::Numeric { field, min, max }])
    }

    /// `(`? then a number, `inf`, `+inf`, `-inf` or `$param` (whose value
    /// may itself start with `(`).
    fn bound(&mut self) -> Result<Bound, QueryError> {
        let at = self.pos;
        let mut exclusive = false;
        if self.peek() == Some('(') {
            self.bump();
            exclusive = true;
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| !c.is_whitespace() && c != ',' && c != ']') {
            self.bump();
        }
        let token = self.src.get(start..self.pos).unwrap_or("");
        let mut text = token.to_string();
        if let Some(name) = token.strip_prefix('$') {
            text = self.lookup(name)?;
            if let Some(rest) = text.strip_prefix('(') {
                if exclusive {
                    return Err(self.syntax(at));
                }
                exclusive = true;
                text = rest.to_string();
            }
        }
        let value = match text.trim().to_ascii_lowercase().as_str() {
            "inf" | "+inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            number => match number.parse::<f64>() {
                Ok(v) if !v.is_nan() && !number.is_empty() => v,
                _ => return Err(self.syntax(at)),
            },
        };
        Ok(Bound { value, exclusive })
    }
}

impl std::fmt::Display for Node {
    /// The FT.EXPLAIN tree: one node a line, children indented two spaces.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        explain(self, f, 0, "")
    }
}

/// Writes `node` at `depth`, `head` (a field prefix) before its first line.
fn explain(node: &Node, f: &mut std::fmt::Formatter<'_>, depth: usize, head: &str) -> std::fmt::Result {
    let pad = depth * 2;
    let lines = |f: &mut std::fmt::Formatter<'_>, title: &str, items: &[String]| {
        writeln!(f, "{:pad$}{head}{title}", "")?;
        for item in items {
            writeln!(f, "{:w$}{item}", "", w = pad + 2)?;
        }
        writeln!(f, "{:pad$}}}", "")
    };
    let block = |f: &mut std::fmt::Formatter<'_>, title: &str, children: &[&Node]| {
        writeln!(f, "{:pad$}{head}{title}", "")?;
        for child in children {
            explain(child, f, depth + 1, "")?;
        }
        writeln!(f, "{:pad$}}}", "")
    };
    match node {
        Node::All => writeln!(f, "{:pad$}{head}<WILDCARD>", ""),
        Node::Nothing => writeln!(f, "{:pad$}{head}<EMPTY>", ""),
        Node::Term { text, .. } => writeln!(f, "{:pad$}{head}{text}", ""),
        Node::Prefix(text) => writeln!(f, "{:pad$}{head}PREFIX{{{text}*}}", ""),
        Node::Fuzzy { text, distance } => {
            let marks = "%".repeat(usize::from(*distance));
            writeln!(f, "{:pad$}{head}FUZZY{{{marks}{text}{marks}}}", "")
        }
        Node::Phrase(words) => lines(f, "EXACT {", words),
        Node::And(children) => block(f, "INTERSECT {", &children.iter().collect::<Vec<_>>()),
        Node::Or(children) => block(f, "UNION {", &children.iter().collect::<Vec<_>>()),
        Node::Not(child) => block(f, "NOT{", &[child]),
        Node::Optional(child) => block(f, "OPTIONAL{", &[child]),
        Node::Fields { fields, node } => explain(node, f, depth, &format!("{head}@{}:", fields.join("|"))),
        Node::Tag { field, values } => {
            let items: Vec<String> = values
                .iter()
                .map(|v| match v {
                    TagValue::Exact(text) => text.clone(),
                    TagValue::Prefix(text) => format!("PREFIX{{{text}*}}"),
                })
                .collect();
            lines(f, &format!("TAG:@{field} {{"), &items)
        }
        Node::Numeric { field, min, max } => {
            let op = |b: &Bound| if b.exclusive { "<" } else { "<=" };
            writeln!(f, "{:pad$}{head}NUMERIC {{{:.6} {} @{field} {} {:.6}}}", "", min.value, op(min), op(max), max.value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> Node {
        match parse(q, &ParseOptions::default()) {
            Ok(node) => node,
            Err(e) => panic!("{q:?}: {e}"),
        }
    }

    fn err(q: &str) -> String {
        match parse(q, &ParseOptions::default()) {
            Ok(node) => panic!("{q:?} parsed: {node:?}"),
            Err(e) => e.0,
        }
    }

    fn t(s: &str) -> Node {
        Node::Term { text: s.into(), verbatim: false }
    }

    fn and(children: Vec<Node>) -> Node {
        Node::And(children)
    }

    fn or(children: Vec<Node>) -> Node {
        Node::Or(children)
    }

    fn not(node: Node) -> Node {
        Node::Not(Box::new(node))
    }

    fn fields(names: &[&str], node: Node) -> Node {
        Node::Fields { fields: names.iter().map(|s| s.to_string()).collect(), node: Box::new(node) }
    }

    fn tag(field: &str, values: Vec<TagValue>) -> Node {
        Node::Tag { field: field.into(), values }
    }

    fn exact(s: &str) -> TagValue {
        TagValue::Exact(s.into())
    }

    fn incl(value: f64) -> Bound {
        Bound { value, exclusive: false }
    }

    fn num(field: &str, min: Bound, max: Bound) -> Node {
        Node::Numeric { field: field.into(), min, max }
    }

    #[test]
    fn real_queries() {
        assert_eq!(p("pascal compiler"), and(vec![t("pascal"), t("compiler")]));
        assert_eq!(p("\"media player\""), Node::Phrase(vec!["media".into(), "player".into()]));
        assert_eq!(p("\"disk usage\" analyzer"), and(vec![Node::Phrase(vec!["disk".into(), "usage".into()]), t("analyzer")]));
        assert_eq!(p("crypt* library"), and(vec![Node::Prefix("crypt".into()), t("library")]));
        assert_eq!(p("mail -perl -python"), and(vec![t("mail"), not(t("perl")), not(t("python"))]));
        assert_eq!(p("(ogg|opus) encoder"), and(vec![or(vec![t("ogg"), t("opus")]), t("encoder")]));
        assert_eq!(p("@section:{perl} json"), and(vec![tag("section", vec![exact("perl")]), t("json")]));
        assert_eq!(p("@section:{devel} debugger"), and(vec![tag("section", vec![exact("devel")]), t("debugger")]));
        assert_eq!(
            p("shell @installed_size:[-inf 100]"),
            and(vec![t("shell"), num("installed_size", incl(f64::NEG_INFINITY), incl(100.0))])
        );
        assert_eq!(p("@name:pdf"), fields(&["name"], t("pdf")));
        assert_eq!(p("photo* editor"), and(vec![Node::Prefix("photo".into()), t("editor")]));
        assert_eq!(p(r"@tags:{implemented\-in\:\:c}"), tag("tags", vec![exact("implemented-in::c")]));
        assert_eq!(p("@n:[(1 +inf]"), num("n", Bound { value: 1.0, exclusive: true }, incl(f64::INFINITY)));
        let params = [("p".to_string(), "World".to_string())];
        let opts = ParseOptions { params: &params, ..Default::default() };
        assert_eq!(parse("hello $p", &opts), Ok(and(vec![t("hello"), t("world")])));
    }

    #[test]
    fn precedence_and_grouping() {
        assert_eq!(p("a1 b | c d"), or(vec![and(vec![t("a1"), t("b")]), and(vec![t("c"), t("d")])]));
        assert_eq!(p("x | y | z"), or(vec![t("x"), t("y"), t("z")]));
        assert_eq!(p("x (y | z)"), and(vec![t("x"), or(vec![t("y"), t("z")])]));
        assert_eq!(p("((x))"), t("x"));
        assert_eq!(p("  x  "), t("x"));
        assert_eq!(p("x\ny\tz"), and(vec![t("x"), t("y"), t("z")]));
    }

    #[test]
    fn terms_split_escape_and_fold() {
        assert_eq!(p("foo.bar"), and(vec![t("foo"), t("bar")]));
        assert_eq!(p("foo-bar"), and(vec![t("foo"), t("bar")]));
        assert_eq!(p(r"hello\-world"), t("hello-world"));
        assert_eq!(p(r"Hello\ World"), t("hello world"));
        assert_eq!(p("ÄRGER Σ"), and(vec![t("ärger"), t("σ")]));
        assert_eq!(p("snake_case 42"), and(vec![t("snake_case"), t("42")]));
        assert_eq!(p("a,b;c:d!e"), and(vec![t("b"), t("c"), t("d"), t("e")]));
        let opts = ParseOptions { verbatim: true, ..Default::default() };
        assert_eq!(parse("Foo", &opts), Ok(Node::Term { text: "foo".into(), verbatim: true }));
    }

    #[test]
    fn not_optional_all() {
        assert_eq!(p("-x"), not(t("x")));
        assert_eq!(p("--x"), not(not(t("x"))));
        assert_eq!(p("-(x y)"), not(and(vec![t("x"), t("y")])));
        assert_eq!(p("~x y"), and(vec![Node::Optional(Box::new(t("x"))), t("y")]));
        assert_eq!(p("*"), Node::All);
        assert_eq!(p("(*)"), Node::All);
        assert_eq!(p("x -\"y z\""), and(vec![t("x"), not(Node::Phrase(vec!["y".into(), "z".into()]))]));
    }

    #[test]
    fn stopwords() {
        assert_eq!(p("the"), Node::Nothing);
        assert_eq!(p("the a of"), Node::Nothing);
        assert_eq!(p("the wall"), t("wall"));
        assert_eq!(p("to | be"), Node::Nothing);
        assert_eq!(p("x | (the)"), t("x"));
        assert_eq!(p("-the x"), t("x"));
        assert_eq!(p("\"the wall\""), Node::Term { text: "wall".into(), verbatim: true });
        assert_eq!(p("\"out of the blue\""), Node::Phrase(vec!["out".into(), "blue".into()]));
        assert_eq!(p("th* the*"), and(vec![Node::Prefix("th".into()), Node::Prefix("the".into())]));
        let keep = ParseOptions { no_stopwords: true, ..Default::default() };
        assert_eq!(parse("the", &keep), Ok(t("the")));
        let list = ["Wall".to_string()];
        let own = ParseOptions { stopwords: Some(&list), ..Default::default() };
        assert_eq!(parse("the wall", &own), Ok(t("the")));
    }

    #[test]
    fn phrases() {
        assert_eq!(p("\"Hello, World.\""), Node::Phrase(vec!["hello".into(), "world".into()]));
        assert_eq!(p("\"single\""), Node::Term { text: "single".into(), verbatim: true });
        assert_eq!(p(r#""say \"hi\"""#), Node::Phrase(vec!["say".into(), "\"hi\"".into()]));
        assert_eq!(p("\"\" x"), t("x"));
    }

    #[test]
    fn prefix_and_fuzzy() {
        assert_eq!(p("AbC*"), Node::Prefix("abc".into()));
        assert_eq!(p("a*"), Node::Prefix("a".into()));
        assert_eq!(p("%abc%"), Node::Fuzzy { text: "abc".into(), distance: 1 });
        assert_eq!(p("%%Abc%%"), Node::Fuzzy { text: "abc".into(), distance: 2 });
        assert_eq!(p("%%%abc%%% x"), and(vec![Node::Fuzzy { text: "abc".into(), distance: 3 }, t("x")]));
        assert!(err("%%%%abc%%%%").starts_with("Syntax error at offset 0"));
        assert!(err("%abc%%").starts_with("Syntax error at offset 0"));
        assert!(err("%%abc%").starts_with("Syntax error at offset 0"));
        assert!(err("%abc").starts_with("Syntax error at offset 0"));
        assert!(err("%%").starts_with("Syntax error at offset 0"));
        assert!(err("%a b%").starts_with("Syntax error at offset 0"));
    }

    #[test]
    fn field_modifiers() {
        assert_eq!(p("@title:(x | y)"), fields(&["title"], or(vec![t("x"), t("y")])));
        assert_eq!(p("@title:\"x y\""), fields(&["title"], Node::Phrase(vec!["x".into(), "y".into()])));
        assert_eq!(p("@f1|f2:(x y)"), fields(&["f1", "f2"], and(vec![t("x"), t("y")])));
        assert_eq!(p("@Title:-x"), fields(&["Title"], not(t("x"))));
        assert_eq!(p("@f:x y"), and(vec![fields(&["f"], t("x")), t("y")]));
        assert_eq!(p("@f:the y"), t("y"));
        assert_eq!(p(r"@my\-f:x"), fields(&["my-f"], t("x")));
        assert_eq!(p("@f:abc*"), fields(&["f"], Node::Prefix("abc".into())));
    }

    #[test]
    fn tags() {
        assert_eq!(p("@t:{ a | Hello World | c* }"), tag("t", vec![exact("a"), exact("Hello World"), TagValue::Prefix("c".into())]));
        assert_eq!(p(r"@t:{a\|b\*}"), tag("t", vec![exact("a|b*")]));
        assert_eq!(p(r"@t:{\ x}"), tag("t", vec![exact(" x")]));
        let params = [("v".to_string(), "Blue Sky".to_string())];
        let opts = ParseOptions { params: &params, ..Default::default() };
        assert_eq!(parse("@t:{$v | x}", &opts), Ok(tag("t", vec![exact("Blue Sky"), exact("x")])));
        assert!(err("@t:{a").starts_with("Syntax error at offset 3"));
        assert!(err("@t:{}").starts_with("Syntax error at offset 4"));
        assert!(err("@t:{a||b}").starts_with("Syntax error at offset 6"));
        assert!(err("@a|b:{x}").starts_with("Syntax error at offset 0"));
        assert_eq!(err("@t:{$nope}"), "No such parameter `nope`");
    }

    #[test]
    fn numeric_ranges() {
        let ex = |value| Bound { value, exclusive: true };
        assert_eq!(p("@n:[1 2]"), num("n", incl(1.0), incl(2.0)));
        assert_eq!(p("@n:[1, 2.5]"), num("n", incl(1.0), incl(2.5)));
        assert_eq!(p("@n:[ (1 (2 ]"), num("n", ex(1.0), ex(2.0)));
        assert_eq!(p("@n:[-inf inf]"), num("n", incl(f64::NEG_INFINITY), incl(f64::INFINITY)));
        assert_eq!(p("@n:[-1e3 +INF]"), num("n", incl(-1000.0), incl(f64::INFINITY)));
        let params = [("lo".to_string(), "5".to_string()), ("hi".to_string(), "(9".to_string())];
        let opts = ParseOptions { params: &params, ..Default::default() };
        assert_eq!(parse("@n:[$lo $hi]", &opts), Ok(num("n", incl(5.0), ex(9.0))));
        assert_eq!(err("@n:[1 x]"), "Syntax error at offset 6 near x]");
        assert_eq!(err("@n:[nan 1]"), "Syntax error at offset 4 near nan");
        assert!(err("@n:[1 2").starts_with("Syntax error at offset 7"));
        assert!(err("@n:[1]").starts_with("Syntax error at offset 5"));
        assert!(err("@n:[1 2 3]").starts_with("Syntax error at offset 8"));
        assert_eq!(err("@n:[$x 1]"), "No such parameter `x`");
    }

    #[test]
    fn params() {
        let params = [("p".to_string(), "The".to_string()), ("q".to_string(), "Rust".to_string())];
        let opts = ParseOptions { params: &params, ..Default::default() };
        assert_eq!(parse("$p $q", &opts), Ok(t("rust")));
        assert_eq!(parse("@f:$q", &opts), Ok(fields(&["f"], t("rust"))));
        assert_eq!(parse("$q*", &opts), Ok(Node::Prefix("rust".into())));
        assert_eq!(err("hello $missing"), "No such parameter `missing`");
        assert!(err("$").starts_with("Syntax error at offset 0"));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(err("foo)"), "Syntax error at offset 3 near )");
        assert_eq!(err("(foo"), "Syntax error at offset 0 near (foo");
        assert_eq!(err("x \"foo"), "Syntax error at offset 2 near \"foo");
        assert_eq!(err("hello world foo {"), "Syntax error at offset 16 near {");
        assert_eq!(err("a | | b"), "Syntax error at offset 4 near |");
        assert_eq!(err("()"), "Syntax error at offset 1 near )");
        assert_eq!(err(""), "Syntax error at offset 0 near end of query");
        assert_eq!(err("x |"), "Syntax error at offset 3 near end of query");
        assert!(err("@f:").starts_with("Syntax error at offset 0"));
        assert!(err("@f: ").starts_with("Syntax error at offset 0"));
        assert!(err("@:x").starts_with("Syntax error at offset 0"));
        assert!(err("@f x").starts_with("Syntax error at offset 0"));
        assert!(err("@").starts_with("Syntax error at offset 0"));
        assert!(err("(@f:)").starts_with("Syntax error at offset 1"));
        assert!(err("\\").starts_with("Syntax error at offset 0"));
        assert!(err("x -").starts_with("Syntax error at offset 2"));
        assert!(err("~ x").starts_with("Syntax error at offset 0"));
        assert!(err("*foo").starts_with("Syntax error at offset 0"));
        assert!(err("x ]").starts_with("Syntax error at offset 2"));
        assert!(err("foo => { $weight: 2.0; }").starts_with("Syntax error at offset 4 near =>"));
        assert!(err("(foo) => { $weight: 2.0; }").starts_with("Syntax error at offset 6"));
    }

    #[test]
    fn depth_is_bounded() {
        let ok = format!("{}x{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(p(&ok), t("x"));
        let deep = format!("{}x{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(err(&deep).contains("nested deeper"));
        assert!(err(&format!("{}x", "-".repeat(100_000))).contains("nested deeper"));
        assert!(err(&format!("{}x", "@f:".repeat(100_000))).contains("nested deeper"));
        assert!(err(&format!("{}x", "~".repeat(100_000))).contains("nested deeper"));
    }

    /// Every string of up to four chars from an alphabet of syntax, text and
    /// multi-byte chars: no panic.
    #[test]
    fn never_panics() {
        let alphabet: Vec<char> = "()|\"@{}[]:-~*%$\\ a1,=>é字".chars().collect();
        let params = [("a".to_string(), "(".to_string())];
        let opts = ParseOptions { params: &params, ..Default::default() };
        let mut count = 0;
        let mut stack = vec![String::new()];
        while let Some(q) = stack.pop() {
            let _ = parse(&q, &opts).map(|node| node.to_string());
            count += 1;
            if q.chars().count() < 4 {
                for &c in &alphabet {
                    let mut next = q.clone();
                    next.push(c);
                    stack.push(next);
                }
            }
        }
        assert!(count > 100_000);
    }

    #[test]
    fn explain() {
        let params = [];
        let opts = ParseOptions { params: &params, ..Default::default() };
        let node = parse("hello -world (a1|b*) \"x y\" @t:{red | gre*} @n:[(1 +inf] @f1|f2:%foo% ~opt", &opts);
        let expected = "\
INTERSECT {
  hello
  NOT{
    world
  }
  UNION {
    a1
    PREFIX{b*}
  }
  EXACT {
    x
    y
  }
  TAG:@t {
    red
    PREFIX{gre*}
  }
  NUMERIC {1.000000 < @n <= inf}
  @f1|f2:FUZZY{%foo%}
  OPTIONAL{
    opt
  }
}
";
        assert_eq!(node.map(|n| n.to_string()), Ok(expected.to_string()));
        assert_eq!(p("@f:(x y)").to_string(), "@f:INTERSECT {\n  x\n  y\n}\n");
        assert_eq!(p("*").to_string(), "<WILDCARD>\n");
    }
}
