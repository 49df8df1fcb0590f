//! The words of `ENV`, `LABEL`, `ARG`, `EXPOSE` and `VOLUME` (quotes and backslashes
//! as BuildKit reads them in those instructions), and paths in the image. Written here
//! because these few rules are all that is needed and the lint crate keeps such
//! arguments as text.

/// Whitespace-separated words with `"…"`, `'…'` and `\` as BuildKit's word splitter
/// reads them; quotes are removed.
pub fn docker_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// `K=V K2="v 2"`, or the old form `K the value`.
pub fn pairs(text: &str) -> Vec<(String, String)> {
    let words = docker_words(text);
    let first = text.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let mut it = text.trim().splitn(2, char::is_whitespace);
        let k = it.next().unwrap_or("").to_string();
        let v = it.next().unwrap_or("").trim().to_string();
        return vec![(k, v)];
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (w, String::new()),
        })
        .collect()
}

pub fn unquote(w: &str) -> String {
    docker_words(w).into_iter().next().unwrap_or_default()
}

/// `path` taken from `cwd`, normalized: `//`, `.` and `..` resolved, never above `/`.
pub fn join(cwd: &str, path: &str) -> String {
    let full = if path.starts_with('/') { path.to_string() } else { format!("{cwd}/{path}") };
    let mut parts: Vec<&str> = Vec::new();
    for p in full.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

pub fn basename(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or(path)
}

/// A name of the build language (letters, digits, `-`, `_`, `.`), starting with a
/// letter.
pub fn simple_name(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c.to_ascii_lowercase() } else { '-' })
        .collect();
    s = s.trim_matches(['-', '.']).to_string();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s = format!("x-{s}");
    }
    s.trim_end_matches('-').to_string()
}

/// A context path as the build file names it: relative, no `..`, `.` for the whole
/// context; `None` when it leaves the context.
pub fn clean_relative(src: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in src.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(if parts.is_empty() { ".".into() } else { parts.join("/") })
}

/// The context path of a path in the image, through the copies that put it there
/// (the last copy wins, as in the image).
pub fn lookup(copied: &[(String, String, bool)], path: &str) -> Option<String> {
    for (dest, src, is_dir) in copied.iter().rev() {
        if !is_dir && dest == path {
            return Some(src.clone());
        }
        if *is_dir {
            let below = if dest == "/" { path.strip_prefix('/') } else { path.strip_prefix(&format!("{dest}/")) };
            if let Some(rest) = below {
                return Some(if src == "." { rest.to_string() } else { format!("{src}/{rest}") });
            }
        }
    }
    None
}

/// A shell line as BuildKit runs it: line continuations joined, comment lines inside
/// the instruction dropped.
pub fn join_continuations(text: &str) -> String {
    let mut out = String::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim_start().starts_with('#') && !out.is_empty() {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                out.push_str(head);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let trimmed = out.trim().to_string();
    // Continued lines leave runs of spaces where the indentation was.
    let mut squeezed = String::new();
    let mut last_space = false;
    let mut quote: Option<char> = None;
    for c in trimmed.chars() {
        if quote.is_none() && c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if q == c => quote = None,
            _ => {}
        }
        squeezed.push(c);
    }
    squeezed
}

/// A script whose apt and pip commands were replaced by `true`, without the `true`s
/// that `&&` chains no longer need.
pub fn drop_trues(script: &str) -> String {
    let mut s = script.to_string();
    while let Some(rest) = s.strip_prefix("true && ") {
        s = rest.to_string();
    }
    while s.contains(" && true && ") {
        s = s.replace(" && true && ", " && ");
    }
    while let Some(rest) = s.strip_suffix(" && true") {
        s = rest.to_string();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_pairs() {
        assert_eq!(docker_words(r#"A=1 B="two words" C='x y'"#), ["A=1", "B=two words", "C=x y"]);
        assert_eq!(pairs("PATH /opt/bin:$PATH"), [("PATH".to_string(), "/opt/bin:$PATH".to_string())]);
        assert_eq!(pairs(r#"A=1 B="2 3""#), [("A".into(), "1".into()), ("B".into(), "2 3".into())]);
    }

    #[test]
    fn paths() {
        assert_eq!(join("/app", "."), "/app");
        assert_eq!(join("/app", "../x/./y/"), "/x/y");
        assert_eq!(join("/", "/a//b"), "/a/b");
        assert_eq!(clean_relative("./src/"), Some("src".into()));
        assert_eq!(clean_relative("../x"), None);
        assert_eq!(simple_name("My Stage"), "my-stage");
        assert_eq!(simple_name("3rd"), "x-3rd");
        let copied =
            vec![("/app".to_string(), ".".to_string(), true), ("/app/req.txt".into(), "r/req.txt".into(), false)];
        assert_eq!(lookup(&copied, "/app/req.txt"), Some("r/req.txt".into()));
        assert_eq!(lookup(&copied, "/app/a/b.txt"), Some("a/b.txt".into()));
        assert_eq!(lookup(&copied, "/etc/x"), None);
    }

    #[test]
    fn trues() {
        assert_eq!(drop_trues("true && true && make && true && ls && true"), "make && ls");
        assert_eq!(drop_trues("true"), "true");
    }

    #[test]
    fn continuations() {
        assert_eq!(
            join_continuations("apt-get update && \\\n    apt-get install -y x && \\\n    rm -rf /y"),
            "apt-get update && apt-get install -y x && rm -rf /y"
        );
    }
}
