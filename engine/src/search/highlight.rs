//! HIGHLIGHT and SUMMARIZE: the words of a field that a query matched,
//! marked with tags, and fragments of text around them.
//!
//! A word of the field matches when its lower-cased form is one of the
//! query's words, shares its stem with one of them, or starts with one of
//! the query's prefixes. Words are found with the tokenizer's separators
//! ([`super::analysis::is_separator`]); the text between them is kept as it
//! was, so a highlighted field reads like the original.

use std::collections::HashSet;

use super::analysis::{is_separator, Stems};
use super::query::Node;

/// What a query looks for in text.
#[derive(Debug, Default)]
pub struct Terms {
    words: HashSet<String>,
    stems: HashSet<String>,
    prefixes: Vec<String>,
}

impl Terms {
    /// The words, stems and prefixes of a query (not those under a negation).
    pub fn of(node: &Node, stems: &Stems) -> Terms {
        let mut t = Terms::default();
        t.collect(node, stems);
        t
    }

    fn collect(&mut self, node: &Node, stems: &Stems) {
        match node {
            Node::Term { text, verbatim } => {
                self.words.insert(text.clone());
                if !verbatim {
                    self.stems.insert(stems.stem_raw(text));
                }
            }
            Node::Phrase(words) => self.words.extend(words.iter().cloned()),
            Node::Prefix(p) => self.prefixes.push(p.clone()),
            Node::Fuzzy { text, .. } => {
                self.words.insert(text.clone());
            }
            Node::And(c) | Node::Or(c) => c.iter().for_each(|n| self.collect(n, stems)),
            Node::Optional(n) | Node::Fields { node: n, .. } => self.collect(n, stems),
            Node::Not(_) | Node::All | Node::Nothing | Node::Tag { .. } | Node::Numeric { .. } => {}
        }
    }

    fn matches(&self, word: &str, stems: &Stems) -> bool {
        self.words.contains(word)
            || self.prefixes.iter().any(|p| word.starts_with(p.as_str()))
            || (!self.stems.is_empty() && self.stems.contains(&stems.stem_raw(word)))
    }
}

/// A word of a text: its byte range and whether the query matched it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Word {
    start: usize,
    end: usize,
    hit: bool,
}

fn words(text: &str, terms: &Terms, stems: &Stems) -> Vec<Word> {
    let mut out = Vec::new();
    let mut start = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        let sep = !escaped && c != '\\' && is_separator(c);
        escaped = !escaped && c == '\\';
        match (sep, start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push(Word { start: s, end: i, hit: false });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Word { start: s, end: text.len(), hit: false });
    }
    for w in &mut out {
        let lower = text[w.start..w.end].replace('\\', "").to_lowercase();
        w.hit = terms.matches(&lower, stems);
    }
    out
}

/// Tags around matched words.
#[derive(Debug, Clone)]
pub struct Tags {
    /// Put before a matched word.
    pub open: String,
    /// Put after it.
    pub close: String,
}

impl Default for Tags {
    fn default() -> Tags {
        Tags { open: "<b>".into(), close: "</b>".into() }
    }
}

fn mark(text: &str, words: &[Word], tags: &Tags) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut at = 0;
    for w in words.iter().filter(|w| w.hit) {
        out.push_str(&text[at..w.start]);
        out.push_str(&tags.open);
        out.push_str(&text[w.start..w.end]);
        out.push_str(&tags.close);
        at = w.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The text with every matched word between the tags.
pub fn highlight(text: &str, terms: &Terms, stems: &Stems, tags: &Tags) -> String {
    mark(text, &words(text, terms, stems), tags)
}

/// How SUMMARIZE cuts fragments.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Fragments at most.
    pub frags: usize,
    /// Words per fragment.
    pub len: usize,
    /// Put after each fragment.
    pub separator: String,
}

impl Default for Summary {
    fn default() -> Summary {
        Summary { frags: 3, len: 20, separator: "... ".into() }
    }
}

/// Up to `s.frags` fragments of about `s.len` words around matched words,
/// each followed by the separator (highlighted too when `tags` is given).
/// A text without a match gives its first fragment.
pub fn summarize(text: &str, terms: &Terms, stems: &Stems, s: &Summary, tags: Option<&Tags>) -> String {
    let all = words(text, terms, stems);
    if all.is_empty() {
        return text.to_string();
    }
    let len = s.len.max(1);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (i, _) in all.iter().enumerate().filter(|(_, w)| w.hit) {
        let lo = i.saturating_sub(len / 2);
        let hi = (lo + len).min(all.len());
        match spans.last_mut() {
            Some(last) if lo <= last.1 => last.1 = hi.max(last.1),
            _ => spans.push((lo, hi)),
        }
    }
    if spans.is_empty() {
        spans.push((0, len.min(all.len())));
    }
    let mut out = String::new();
    for &(lo, hi) in spans.iter().take(s.frags.max(1)) {
        let (a, b) = (all[lo].start, all[hi - 1].end);
        let frag = &text[a..b];
        match tags {
            Some(t) => {
                let shifted: Vec<Word> = all[lo..hi].iter().map(|w| Word { start: w.start - a, end: w.end - a, hit: w.hit }).collect();
                out.push_str(&mark(frag, &shifted, t));
            }
            None => out.push_str(frag),
        }
        out.push_str(&s.separator);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::search::query::{parse, ParseOptions};

    fn terms(q: &str) -> (Terms, Stems) {
        let stems = Stems::default();
        let node = parse(q, &ParseOptions::default()).unwrap();
        (Terms::of(&node, &stems), stems)
    }

    #[test]
    fn marks_words_stems_and_prefixes_but_not_negations() {
        let (t, s) = terms("dog run* -cat");
        let out = highlight("Dogs, running; a cat and a DOG.", &t, &s, &Tags::default());
        assert_eq!(out, "<b>Dogs</b>, <b>running</b>; a cat and a <b>DOG</b>.");
    }

    #[test]
    fn fragments_around_matches() {
        let (t, s) = terms("needle");
        let text = (0..100).map(|i| if i == 50 || i == 90 { "needle".to_string() } else { format!("w{i}") }).collect::<Vec<_>>().join(" ");
        let sum = Summary { frags: 2, len: 4, separator: "... ".into() };
        assert_eq!(summarize(&text, &t, &s, &sum, None), "w48 w49 needle w51... w88 w89 needle w91... ");
        let one = Summary { frags: 1, len: 3, separator: "|".into() };
        assert_eq!(summarize(&text, &t, &s, &one, Some(&Tags::default())), "w49 <b>needle</b> w51|");
        let (none, s) = terms("absent");
        assert_eq!(summarize("a b c d", &none, &s, &one, None), "a b c|");
    }
}
