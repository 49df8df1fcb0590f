//! Core metadata (the `METADATA` file of a wheel): what a distribution depends on.
//!
//! Why hand-written: the resolver needs four header fields (`Name`, `Version`,
//! `Requires-Dist`, `Requires-Python`) from an RFC 822 style header block. The format is
//! `Key: value` lines with indented continuations, ended by a blank line; the body (the
//! long description) is never read. Input is bounded by the caller.

use std::str::FromStr;

use pep508_rs::Requirement;

/// The fields of a distribution's core metadata the resolver reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMetadata {
    pub name: String,
    pub version: String,
    /// `Requires-Dist` lines, as written (parsed by [`CoreMetadata::requirements`]).
    pub requires_dist: Vec<String>,
    pub requires_python: Option<String>,
}

impl CoreMetadata {
    /// Parses the header block of a METADATA file.
    pub fn parse(bytes: &[u8]) -> Result<CoreMetadata, String> {
        let text = String::from_utf8_lossy(bytes);
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = fields.last_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let one = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let all = |key: &str| fields.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect::<Vec<_>>();
        Ok(CoreMetadata {
            name: one("name").ok_or("no Name field")?,
            version: one("version").ok_or("no Version field")?,
            requires_dist: all("requires-dist"),
            requires_python: one("requires-python").filter(|v| !v.is_empty()),
        })
    }

    /// The `Requires-Dist` entries as PEP 508 requirements.
    pub fn requirements(&self) -> Result<Vec<Requirement>, String> {
        self.requires_dist
            .iter()
            .map(|r| crate::pep508_guard(|| Requirement::from_str(r)).map_err(|e| format!("Requires-Dist {r:?}: {e}")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers_not_the_body() {
        let m = CoreMetadata::parse(
            b"Metadata-Version: 2.1\r\nName: scikit-learn\nVersion: 1.5.2\nRequires-Python: >=3.9\n\
              Requires-Dist: numpy>=1.19.5\nRequires-Dist: pytest>=7; extra == 'tests'\nSummary: a\n  long summary\n\n\
              Requires-Dist: not-a-header\n",
        )
        .unwrap();
        assert_eq!(m.name, "scikit-learn");
        assert_eq!(m.requires_python.as_deref(), Some(">=3.9"));
        assert_eq!(m.requires_dist.len(), 2);
        assert_eq!(m.requirements().unwrap()[1].name.as_ref(), "pytest");
        assert!(CoreMetadata::parse(b"Name: x\n").is_err());
    }
}
