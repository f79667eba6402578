//! Edit distances for spell checking (FT.SPELLCHECK,
//! <https://redis.io/docs/latest/commands/ft.spellcheck/>) and fuzzy
//! autocomplete (FT.SUGGET FUZZY, <https://redis.io/docs/latest/commands/ft.sugget/>).
//!
//! Levenshtein distance over characters (insert, delete, substitute, each
//! costing one), bounded: a pair further apart than the bound is `None`
//! without filling the whole table. Pure functions, no index.

/// The Levenshtein distance between `a` and `b` if it is at most `max`.
pub fn levenshtein(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let row = table(&a, &b, max)?;
    row.last().copied().filter(|&d| d <= max)
}

/// The smallest Levenshtein distance between `prefix` and any prefix of
/// `s`, if it is at most `max`: how far `s` is from starting with `prefix`.
pub fn prefix_distance(prefix: &[char], s: &str, max: usize) -> Option<usize> {
    // No prefix of s longer than prefix.len() + max can be within max.
    let b: Vec<char> = s.chars().take(prefix.len() + max).collect();
    let row = table(prefix, &b, max)?;
    row.into_iter().min().filter(|&d| d <= max)
}

/// The last row of the edit-distance table of `a` (rows) against `b`
/// (columns); None as soon as a whole row exceeds `max`.
fn table(a: &[char], b: &[char], max: usize) -> Option<Vec<usize>> {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        if cur.iter().all(|&d| d > max) {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev)
}

/// The words of a parsed query that FT.SPELLCHECK checks, each once, in
/// query order: plain terms and phrase words, also under `~` and `@text:`
/// field filters; not those under a negation (`-`), nor tags, numeric
/// ranges, prefixes or fuzzy terms. Stop-words never reach the tree.
pub fn query_terms(node: &super::query::Node) -> Vec<String> {
    use super::query::Node;
    fn walk(n: &Node, out: &mut Vec<String>) {
        let mut push = |w: &str| {
            if !out.iter().any(|o| o == w) {
                out.push(w.to_string());
            }
        };
        match n {
            Node::Term { text, .. } => push(text),
            Node::Phrase(words) => words.iter().for_each(|w| push(w)),
            Node::And(children) | Node::Or(children) => children.iter().for_each(|c| walk(c, out)),
            Node::Optional(child) | Node::Fields { node: child, .. } => walk(child, out),
            Node::All | Node::Nothing | Node::Not(_) | Node::Prefix(_) | Node::Fuzzy { .. } | Node::Tag { .. } | Node::Numeric { .. } => {}
        }
    }
    let mut out = Vec::new();
    walk(node, &mut out);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spellcheck_terms_skip_negations_tags_and_numbers() {
        let q = super::super::query::parse(
            "hello ~wrold -nope @t:{tagz} @n:[1 2] \"big fish\" pre* %fuz% the hello @title:(cats)",
            &Default::default(),
        )
        .unwrap();
        assert_eq!(query_terms(&q), ["hello", "wrold", "big", "fish", "cats"]);
    }

    #[test]
    fn bounded_levenshtein() {
        assert_eq!(levenshtein("kitten", "sitting", 3), Some(3));
        assert_eq!(levenshtein("kitten", "sitting", 2), None);
        assert_eq!(levenshtein("", "ab", 2), Some(2));
        assert_eq!(levenshtein("hello", "hello", 0), Some(0));
        assert_eq!(levenshtein("héllo", "hello", 1), Some(1));
        assert_eq!(levenshtein("abc", "abcdef", 2), None);
    }

    #[test]
    fn distance_to_a_prefix() {
        let p: Vec<char> = "helo".chars().collect();
        assert_eq!(prefix_distance(&p, "hello world", 1), Some(1));
        assert_eq!(prefix_distance(&p, "help", 1), Some(1));
        assert_eq!(prefix_distance(&p, "world", 1), None);
        assert_eq!(prefix_distance(&p, "hel", 1), Some(1));
        assert_eq!(prefix_distance(&p, "helots", 1), Some(0));
    }
}
