//! Glob-style pattern matching, as Redis's `stringmatchlen` (`util.c`).
//!
//! Used by [KEYS](https://redis.io/commands/keys/) and
//! [SCAN](https://redis.io/commands/scan/) `MATCH`. The rules, quirks
//! included, are Redis's: `*` matches any run of bytes, `?` one byte,
//! `[abc]` a set, `[^a]` its complement, `[a-z]` a range (reversed ranges
//! are swapped; bytes compare as C's signed `char`), `\` escapes the next
//! byte, an unterminated `[` set ends the pattern. Matching is on bytes;
//! `nocase` folds ASCII letters only. A pattern of `*` does not match the
//! empty string here either; callers treat a lone `*` as "match all", as
//! Redis does.

/// Deepest `*` recursion before giving up, as Redis (protects against abusive patterns).
const MAX_NESTING: u32 = 1000;

/// Whether `string` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    Matcher { pat: pattern, s: string, nocase }.run(0, 0, &mut skip_longer, 0)
}

/// Whether a pattern matches every key (a lone `*`), so matching can be skipped.
pub fn matches_all(pattern: &[u8]) -> bool {
    pattern == b"*"
}

struct Matcher<'a> {
    pat: &'a [u8],
    s: &'a [u8],
    nocase: bool,
}

impl Matcher<'_> {
    /// The pattern byte at `i`, or 0 past the end (C's terminating NUL).
    fn at(&self, i: usize) -> u8 {
        self.pat.get(i).copied().unwrap_or(0)
    }

    fn eq(&self, a: u8, b: u8) -> bool {
        if self.nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    }

    fn run(&self, mut pi: usize, mut si: usize, skip_longer: &mut bool, nesting: u32) -> bool {
        if nesting > MAX_NESTING {
            return false;
        }
        let plen = self.pat.len();
        while pi < plen && si < self.s.len() {
            match self.pat[pi] {
                b'*' => return self.star(pi, si, skip_longer, nesting),
                b'?' => si += 1,
                b'[' => {
                    let (matched, end) = self.class(pi + 1, self.s[si]);
                    if !matched {
                        return false;
                    }
                    pi = end;
                    si += 1;
                }
                b'\\' => {
                    if plen - pi >= 2 {
                        pi += 1;
                    }
                    if !self.eq(self.pat[pi], self.s[si]) {
                        return false;
                    }
                    si += 1;
                }
                c => {
                    if !self.eq(c, self.s[si]) {
                        return false;
                    }
                    si += 1;
                }
            }
            pi += 1;
            if si == self.s.len() {
                while self.at(pi) == b'*' {
                    pi += 1;
                }
                break;
            }
        }
        pi >= plen && si == self.s.len()
    }

    /// `*` at `pi`: try the rest of the pattern at every position of the rest of the string.
    fn star(&self, mut pi: usize, mut si: usize, skip_longer: &mut bool, nesting: u32) -> bool {
        while pi < self.pat.len() && self.at(pi + 1) == b'*' {
            pi += 1;
        }
        if self.pat.len() - pi == 1 {
            return true;
        }
        while si < self.s.len() {
            if self.run(pi + 1, si, skip_longer, nesting + 1) {
                return true;
            }
            if *skip_longer {
                return false;
            }
            si += 1;
        }
        // No match for the rest of the pattern anywhere in the rest of the
        // string: earlier stars matching longer runs cannot help either.
        *skip_longer = true;
        false
    }

    /// A `[...]` set starting after the `[` at `pi`, against byte `c`.
    /// Returns whether it matched and the index of the set's last byte.
    fn class(&self, mut pi: usize, c: u8) -> (bool, usize) {
        let plen = self.pat.len();
        let not = self.at(pi) == b'^';
        if not {
            pi += 1;
        }
        let mut matched = false;
        loop {
            let rem = plen.saturating_sub(pi);
            if self.at(pi) == b'\\' && rem >= 2 {
                pi += 1;
                if self.pat[pi] == c {
                    matched = true;
                }
            } else if self.at(pi) == b']' && rem > 0 {
                break;
            } else if rem == 0 {
                pi -= 1;
                break;
            } else if rem >= 3 && self.pat[pi + 1] == b'-' {
                matched |= self.in_range(self.pat[pi], self.pat[pi + 2], c);
                pi += 2;
            } else if self.eq(self.pat[pi], c) {
                matched = true;
            }
            pi += 1;
        }
        (matched != not, pi)
    }

    /// Whether `c` lies in the range `a-b`, comparing as C's signed `char` does.
    fn in_range(&self, a: u8, b: u8, c: u8) -> bool {
        let fold = |x: u8| if self.nocase { x.to_ascii_lowercase() } else { x };
        let (mut start, mut end) = (fold(a) as i8, fold(b) as i8);
        if start > end {
            std::mem::swap(&mut start, &mut end);
        }
        (start..=end).contains(&(fold(c) as i8))
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn literals_and_wildcards() {
        assert!(m("foo", "foo"));
        assert!(!m("foo", "fo"));
        assert!(!m("foo", "fooo"));
        assert!(m("f?o", "fxo"));
        assert!(!m("f?o", "fo"));
        assert!(m("*", "anything"));
        assert!(m("foo*", "foo"));
        assert!(m("foo*", "foobar"));
        assert!(m("*bar", "foobar"));
        assert!(m("f*b*r", "foobar"));
        assert!(!m("f*b*z", "foobar"));
        assert!(m("a**b", "axxb"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("*?", "a"));
        assert!(!m("?*", ""));
    }

    #[test]
    fn lone_star_and_empty_string() {
        // stringmatchlen("*", "") is 0 in Redis; KEYS/SCAN special-case "*".
        assert!(!m("*", ""));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("a*", "a"));
        assert!(m("a**", "a"));
    }

    #[test]
    fn classes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        // Reversed ranges are swapped.
        assert!(m("[z-a]", "m"));
        // A leading '-' is literal; "[a-]" is Redis's range ']'..='a' with the set left open.
        assert!(m("[-ab]", "-"));
        assert!(m("[a-]", "^"));
        assert!(!m("[a-]", "b"));
        assert!(!m("[ab-]", "-"));
        assert!(m("[\\]]", "]"));
        assert!(m("[\\-]", "-"));
        assert!(!m("[\\-]", "a"));
        // An unterminated set ends the pattern.
        assert!(m("[abc", "b"));
        assert!(!m("[abc", "bc"));
        assert!(!m("[", "a"));
        assert!(m("[^", "a"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("\\?x", "?x"));
        assert!(m("a\\", "a\\"));
        assert!(m("\\[a]", "[a]"));
    }

    #[test]
    fn nocase() {
        assert!(glob_match(b"HeLLo", b"hello", true));
        assert!(!glob_match(b"HeLLo", b"hello", false));
        assert!(glob_match(b"[A-Z]x", b"qX", true));
        assert!(glob_match(b"[Q]", b"q", true));
    }

    #[test]
    fn binary_bytes_compare_as_signed_char() {
        // [a-\xff]: 'a' is 97, 0xff is -1 as a signed char, so the range is -1..=97.
        assert!(glob_match(b"[a-\xff]", b"\xff", false));
        assert!(glob_match(b"[a-\xff]", b"0", false));
        assert!(!glob_match(b"[a-\xff]", b"z", false));
        assert!(glob_match(b"\x00*", b"\x00abc", false));
    }

    #[test]
    fn long_nested_patterns_finish_quickly() {
        let p = format!("{}b", "a*".repeat(40));
        let s = "a".repeat(60);
        assert!(!m(&p, &s));
        let p = "*".repeat(2000) + "x";
        assert!(!m(&p, &"y".repeat(3000)));
    }
}
