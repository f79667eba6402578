//! The RediSearch query language (DIALECT 2): text to a [`Node`] tree.
//!
//! Pure: no index, no keyspace. Terms come out lower-cased and unescaped,
//! stop-words removed (unless [`ParseOptions::no_stopwords`]), `$params`
//! substituted. Field names are kept as written (the executor resolves them
//! against the schema, so an unknown field is its error, not ours).

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
