//! Text analysis: how a text field becomes terms, as RediSearch does it.
//!
//! - Separators are every whitespace character (newlines included: RediSearch
//!   misses them, a known bug of theirs) and `,./(){}[]:;~!@#$%^&*-=+|'"`<>?`.
//!   A backslash makes the next character part of the word. `_` is a word
//!   character.
//! - Words are lower-cased.
//! - Stop-words are dropped and do not take a position.
//! - A word of 4 bytes or more whose English (Snowball/Porter2) stem
//!   differs from it also yields the stem, marked with [`STEM_PREFIX`], at the same position.
//!
//! Pure functions over strings; no index state.

use std::cell::RefCell;
use std::collections::HashMap;

use rust_stemmers::{Algorithm, Stemmer};

/// Marks a stem in the term dictionary (`+run` for `running`), so stems and
/// words that happen to be spelled the same stay apart, as in RediSearch.
pub const STEM_PREFIX: char = '+';

/// Words shorter than this (in bytes) are not stemmed when indexed (queries stem every word).
pub const MIN_STEM_LEN: usize = 4;

/// RediSearch's default stop-words.
pub const DEFAULT_STOPWORDS: &[&str] = &[
    "a", "is", "the", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "it", "no", "not", "of", "on", "or",
    "such", "that", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
];

/// Whether `c` separates words.
pub fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(c, ',' | '.' | '/' | '(' | ')' | '{' | '}' | '[' | ']' | ':' | ';' | '~' | '!' | '@' | '#' | '$')
        || matches!(c, '%' | '^' | '&' | '*' | '-' | '=' | '+' | '|' | '\'' | '`' | '"' | '<' | '>' | '?')
}

/// A stop-word list.
#[derive(Debug, Clone)]
pub struct StopWords(Vec<String>);

impl Default for StopWords {
    fn default() -> StopWords {
        StopWords(DEFAULT_STOPWORDS.iter().map(|s| s.to_string()).collect())
    }
}

impl StopWords {
    /// A custom list (FT.CREATE ... STOPWORDS n w ...), lower-cased.
    pub fn new(words: impl IntoIterator<Item = String>) -> StopWords {
        StopWords(words.into_iter().map(|w| w.to_lowercase()).collect())
    }

    /// Whether `w` (lower-case) is a stop-word.
    pub fn contains(&self, w: &str) -> bool {
        self.0.iter().any(|s| s == w)
    }

    /// The words.
    pub fn words(&self) -> &[String] {
        &self.0
    }
}

/// Splits `text` into lower-cased words, unescaping `\x`; calls `f` with each.
pub fn words(text: &str, mut f: impl FnMut(&str)) {
    let mut word = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                word.extend(n.to_lowercase());
            }
        } else if is_separator(c) {
            if !word.is_empty() {
                f(&word);
                word.clear();
            }
        } else {
            word.extend(c.to_lowercase());
        }
    }
    if !word.is_empty() {
        f(&word);
    }
}

/// The English stemmer, with a cache of the words it has seen (a corpus
/// repeats its words, and the stemmer is the slow part of indexing).
pub struct Stems {
    stemmer: Stemmer,
    cache: RefCell<HashMap<Box<str>, Option<Box<str>>>>,
}

/// Words whose stems are remembered at most (the cache starts over past it).
const STEM_CACHE: usize = 1 << 18;

impl Default for Stems {
    fn default() -> Stems {
        Stems { stemmer: Stemmer::create(Algorithm::English), cache: RefCell::default() }
    }
}

impl std::fmt::Debug for Stems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stems(english)")
    }
}

impl Stems {
    /// The stem of `word`, if it differs from the word.
    pub fn stem(&self, word: &str) -> Option<String> {
        let mut cache = self.cache.borrow_mut();
        if let Some(s) = cache.get(word) {
            return s.as_deref().map(str::to_string);
        }
        let s = self.stemmer.stem(word);
        let s = (s != word).then(|| s.into_owned());
        if cache.len() >= STEM_CACHE {
            cache.clear();
        }
        cache.insert(word.into(), s.as_deref().map(Box::from));
        s
    }

    /// The stem of `word`, equal to it or not.
    pub fn stem_raw(&self, word: &str) -> String {
        self.stem(word).unwrap_or_else(|| word.to_string())
    }
}

/// One token of a field: the word, its stem if it has one, its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The word, lower-cased.
    pub word: String,
    /// `+stem`, when the stem differs from the word and the field stems.
    pub stem: Option<String>,
    /// 1-based position among the field's non-stop-words (continuing across fields).
    pub pos: u32,
}

/// Tokenizes one field's text, positions continuing from `*pos`.
pub fn tokens(text: &str, stop: &StopWords, stems: Option<&Stems>, pos: &mut u32, mut f: impl FnMut(Token)) {
    words(text, |w| {
        if stop.contains(w) {
            return;
        }
        *pos += 1;
        // RediSearch stems words of at least MIN_STEM_LEN bytes when indexing.
        let stem = stems.filter(|_| w.len() >= MIN_STEM_LEN).and_then(|s| s.stem(w)).map(|s| format!("{STEM_PREFIX}{s}"));
        f(Token { word: w.to_string(), stem, pos: *pos });
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        let mut v = Vec::new();
        words(text, |w| v.push(w.to_string()));
        v
    }

    #[test]
    fn separators_split_and_backslash_escapes() {
        assert_eq!(all("foo-bar.baz...bag"), ["foo", "bar", "baz", "bag"]);
        assert_eq!(all("hello\\-world hello-world"), ["hello-world", "hello", "world"]);
        assert_eq!(all("hello_world"), ["hello_world"]);
        assert_eq!(all("Line one\nline\ttwo\r\nÉTÉ"), ["line", "one", "line", "two", "été"]);
    }

    #[test]
    fn stop_words_take_no_position_and_stems_share_the_words() {
        let mut out = Vec::new();
        let mut pos = 0;
        tokens("The running of dogs", &StopWords::default(), Some(&Stems::default()), &mut pos, |t| out.push(t));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], Token { word: "running".into(), stem: Some("+run".into()), pos: 1 });
        assert_eq!(out[1], Token { word: "dogs".into(), stem: Some("+dog".into()), pos: 2 });
        let mut n = 0;
        tokens("run", &StopWords::default(), Some(&Stems::default()), &mut pos, |t| {
            assert_eq!(t.stem, None);
            assert_eq!(t.pos, 3);
            n += 1;
        });
        assert_eq!(n, 1);
    }
}
