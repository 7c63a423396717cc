//! "Did you mean …?" for misspelt keys and names.

/// The candidate closest to `word` by edit distance, if close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = word.chars().count();
    let limit = (len / 3).max(1) + 1;
    candidates
        .into_iter()
        // The distance is at least the difference in length: skip what cannot be close.
        .filter(|c| c.chars().count().abs_diff(len) <= limit)
        .map(|c| (distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance (`strsim`), with `_` and `-` and the letter case treated as the same.
fn distance(a: &str, b: &str) -> usize {
    let norm = |s: &str| s.replace('-', "_").to_ascii_lowercase();
    strsim::levenshtein(&norm(a), &norm(b))
}
