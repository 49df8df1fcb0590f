//! Differences between two JSON documents (configs, manifests, indexes) as jq-style
//! paths (`.config.Env[1]`, `.config.Labels."org.opencontainers.image.title"`), so a
//! person can find the field and a script can select it. Paths can be left out by
//! pattern (`[]` matches any index), which is how `--semantic` ignores timestamps.

use super::align::{align, Step};
use serde_json::Value;

/// One field that differs; `None` is a field that is absent on that side.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JsonChange {
    pub path: String,
    pub a: Option<Value>,
    pub b: Option<Value>,
}

/// Every difference between `a` and `b`, leaving out paths that match `ignore`.
pub fn diff(a: &Value, b: &Value, ignore: &[&str]) -> Vec<JsonChange> {
    let mut out = Vec::new();
    walk(Some(a), Some(b), &mut String::new(), &mut String::new(), ignore, &mut out);
    out
}

/// Removes the fields at `pattern` (same syntax as `ignore`) from `value`.
pub fn remove(value: &mut Value, pattern: &str) {
    fn go(v: &mut Value, parts: &[Part]) {
        match parts {
            [] => {}
            [Part::Key(k)] => {
                if let Value::Object(map) = v {
                    map.remove(k);
                }
            }
            [Part::Key(k), rest @ ..] => {
                if let Some(child) = v.as_object_mut().and_then(|m| m.get_mut(k)) {
                    go(child, rest);
                }
            }
            [Part::Any, rest @ ..] => {
                if let Value::Array(items) = v {
                    for item in items {
                        go(item, rest);
                    }
                }
            }
        }
    }
    go(value, &parse_pattern(pattern));
}

enum Part {
    Key(String),
    Any,
}

/// `.a.b[].c` → [a, b, any, c]. Only the forms this module itself writes.
fn parse_pattern(pattern: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    for piece in pattern.split('.').filter(|p| !p.is_empty()) {
        let (name, arrays) = match piece.find("[]") {
            Some(at) => (&piece[..at], piece[at..].matches("[]").count()),
            None => (piece, 0),
        };
        if !name.is_empty() {
            parts.push(Part::Key(name.to_string()));
        }
        parts.extend((0..arrays).map(|_| Part::Any));
    }
    parts
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn push_key(path: &mut String, key: &str) {
    path.push('.');
    if is_identifier(key) {
        path.push_str(key);
    } else {
        path.push_str(&Value::String(key.to_string()).to_string());
    }
}

fn walk(
    a: Option<&Value>,
    b: Option<&Value>,
    path: &mut String,
    pattern: &mut String,
    ignore: &[&str],
    out: &mut Vec<JsonChange>,
) {
    if ignore.contains(&pattern.as_str()) || a == b {
        return;
    }
    let shown = || if path.is_empty() { ".".to_string() } else { path.clone() };
    match (a, b) {
        (Some(Value::Object(ma)), Some(Value::Object(mb))) => {
            let mut keys: Vec<&String> = ma.keys().chain(mb.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (len, plen) = (path.len(), pattern.len());
                push_key(path, key);
                push_key(pattern, key);
                walk(ma.get(key), mb.get(key), path, pattern, ignore, out);
                path.truncate(len);
                pattern.truncate(plen);
            }
        }
        (Some(Value::Array(va)), Some(Value::Array(vb))) => {
            let (len, plen) = (path.len(), pattern.len());
            pattern.push_str("[]");
            for step in align(va, vb, |v| v.clone()) {
                let (ia, ib) = match step {
                    Step::Same(..) => continue,
                    Step::Changed(i, j) => (Some(i), Some(j)),
                    Step::OnlyA(i) => (Some(i), None),
                    Step::OnlyB(j) => (None, Some(j)),
                };
                path.push_str(&format!("[{}]", ia.or(ib).unwrap_or_default()));
                walk(ia.map(|i| &va[i]), ib.map(|j| &vb[j]), path, pattern, ignore, out);
                path.truncate(len);
            }
            pattern.truncate(plen);
        }
        _ => out.push(JsonChange { path: shown(), a: a.cloned(), b: b.cloned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_jq_style() {
        let a = json!({"config": {"Env": ["A=1", "B=2"], "Labels": {"org.x": "1"}}, "created": "t0"});
        let b = json!({"config": {"Env": ["A=1", "B=3"], "Labels": {"org.x": "2"}}, "created": "t1"});
        let paths: Vec<String> = diff(&a, &b, &[]).into_iter().map(|c| c.path).collect();
        assert_eq!(paths, [".config.Env[1]", ".config.Labels.\"org.x\"", ".created"]);
    }

    #[test]
    fn ignored_patterns_match_any_index() {
        let a = json!({"history": [{"created": "t0", "created_by": "x"}], "created": "t0"});
        let b = json!({"history": [{"created": "t1", "created_by": "y"}], "created": "t1"});
        let changes = diff(&a, &b, &[".created", ".history[].created"]);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, ".history[0].created_by");
    }

    #[test]
    fn absent_fields_and_appended_items() {
        let changes = diff(&json!({"a": [1]}), &json!({"a": [1, 2], "b": true}), &[]);
        assert_eq!(changes[0], JsonChange { path: ".a[1]".into(), a: None, b: Some(json!(2)) });
        assert_eq!(changes[1], JsonChange { path: ".b".into(), a: None, b: Some(json!(true)) });
    }

    #[test]
    fn remove_strips_fields_below_arrays() {
        let mut v = json!({"layers": [{"digest": "x", "mediaType": "m"}], "config": {"digest": "y", "size": 1}});
        remove(&mut v, ".layers[].digest");
        remove(&mut v, ".config.digest");
        assert_eq!(v, json!({"layers": [{"mediaType": "m"}], "config": {"size": 1}}));
    }
}
