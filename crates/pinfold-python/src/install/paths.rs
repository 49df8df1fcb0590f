//! Paths inside a wheel and inside the image: checked, normalized, related.
//!
//! Why: a wheel is hostile input. A member named `../../etc/passwd` or `/usr/bin/x` must
//! never become a path outside the scheme's directories, so every member name is split
//! into plain components here before anything is joined.

/// The plain components of a wheel member name, or why it is unsafe.
pub(crate) fn member_components(name: &str) -> Result<Vec<&str>, &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.contains('\0') {
        return Err("NUL in name");
    }
    if name.contains('\\') {
        return Err("backslash in name");
    }
    if name.starts_with('/') {
        return Err("absolute path");
    }
    if name.len() >= 2 && name.as_bytes()[1] == b':' {
        return Err("drive letter");
    }
    let mut out = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => continue,
            ".." => return Err("`..` component"),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return Err("empty name");
    }
    Ok(out)
}

/// Checks that an image path is absolute and normalized (no `.`, `..`, `//`, trailing `/`).
pub(crate) fn check_image_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path == "/" {
        return Err(format!("{path:?} is not an absolute directory below /"));
    }
    if path.ends_with('/') || path[1..].split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(format!("{path:?} is not normalized"));
    }
    if path.chars().any(|c| c.is_whitespace() || c == '\0') {
        return Err(format!("{path:?} contains whitespace"));
    }
    Ok(())
}

/// `base` joined with `components`.
pub(crate) fn join(base: &str, components: &[&str]) -> String {
    let mut out = base.to_string();
    for c in components {
        out.push('/');
        out.push_str(c);
    }
    out
}

/// The path of `to` relative to directory `from` (both absolute, normalized).
pub(crate) fn relative(from: &str, to: &str) -> String {
    let f: Vec<&str> = from.split('/').filter(|c| !c.is_empty()).collect();
    let t: Vec<&str> = to.split('/').filter(|c| !c.is_empty()).collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; f.len() - common];
    parts.extend(&t[common..]);
    parts.join("/")
}

/// Every ancestor directory of `path`, below `/`.
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').filter(|(i, _)| *i > 0).map(move |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_member_names_are_refused() {
        for bad in ["../x", "a/../../x", "/etc/passwd", "C:/x", "a\\b", "", "./", "a\0b"] {
            assert!(member_components(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(member_components("a//b/./c").unwrap(), ["a", "b", "c"]);
    }

    #[test]
    fn relative_paths_and_ancestors() {
        assert_eq!(relative("/opt/venv/lib/python3.11/site-packages", "/opt/venv/bin/tqdm"), "../../../bin/tqdm");
        assert_eq!(relative("/a/b", "/a/b/c/d"), "c/d");
        assert_eq!(ancestors("/opt/venv/bin/x").collect::<Vec<_>>(), ["/opt", "/opt/venv", "/opt/venv/bin"]);
        assert!(check_image_path("/opt/venv").is_ok());
        for bad in ["opt", "/", "/opt/", "/opt//v", "/opt/../x", "/opt/a b"] {
            assert!(check_image_path(bad).is_err(), "{bad}");
        }
    }
}
