//! "did you mean ...?" suggestions for misspelled names, as BuildKit makes them: the
//! closest option at Levenshtein distance below 3.

/// The closest option to `value`, if one is close enough (and not equal).
pub(crate) fn closest(value: &str, options: &[String], case_sensitive: bool) -> Option<String> {
    let value_cmp = if case_sensitive {
        value.to_string()
    } else {
        value.to_lowercase()
    };
    let mut best: Option<String> = None;
    let mut min_dist = 3;
    for opt in options {
        let opt_cmp = if case_sensitive {
            opt.clone()
        } else {
            opt.to_lowercase()
        };
        if opt_cmp == value_cmp {
            // An exact match means the error was about something else.
            return None;
        }
        let dist = levenshtein(&value_cmp, &opt_cmp);
        if dist < min_dist {
            best = Some(if case_sensitive {
                opt_cmp
            } else {
                match_case(&opt_cmp, value)
            });
            min_dist = dist;
        }
    }
    best
}

/// `message` with " (did you mean X?)" appended when an option is close to `value`.
pub(crate) fn with_suggestion(
    message: String,
    value: &str,
    options: &[String],
    case_sensitive: bool,
) -> String {
    match closest(value, options, case_sensitive) {
        Some(m) => format!("{message} (did you mean {m}?)"),
        None => message,
    }
}

fn match_case(val: &str, orig: &str) -> String {
    if orig == orig.to_lowercase() {
        val.to_lowercase()
    } else if orig == orig.to_uppercase() {
        val.to_uppercase()
    } else {
        val.to_string()
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            closest("chwon", &opts(&["chown", "chmod"]), true).as_deref(),
            Some("chown")
        );
        assert_eq!(closest("xyzzy", &opts(&["chown"]), true), None);
        assert_eq!(closest("chown", &opts(&["chown", "chmod"]), true), None);
        assert_eq!(
            closest("CPY", &opts(&["COPY", "FROM"]), false).as_deref(),
            Some("COPY")
        );
        assert_eq!(
            closest("cpy", &opts(&["COPY", "FROM"]), false).as_deref(),
            Some("copy")
        );
    }
}
