//! A client of the Simple Repository API: project pages, core metadata, wheel downloads.
//!
//! Why: this is the one place that talks to an index. It asks for the JSON form (PEP 691)
//! and reads HTML (PEP 503) when that is what comes back; it takes file hashes from the
//! listing, core metadata from the PEP 658/714 `.metadata` file when the index has one
//! and from the wheel itself (ranged reads, else a whole download) when not, and caches
//! metadata by the wheel's sha256 so a second lock reads no metadata over the network.
//!
//! Several indexes: the first index (primary, then extras in order) that knows a project
//! serves all of it. Merging pages across indexes, as pip does, lets a public name shadow
//! a private package (dependency confusion); uv made the same choice.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::discovery::IndexSettings;
use crate::error::{FetchError, IndexError};
use crate::html;
use crate::http::{HashingWriter, Http, MAX_WHEEL_BYTES};
use crate::metadata::CoreMetadata;
use crate::remote_zip::{metadata_by_download, wheel_metadata, RangeReader};

/// Largest project page read (numpy's JSON page is a few MB).
const MAX_PAGE_BYTES: u64 = 128 << 20;
/// Largest METADATA read.
const MAX_METADATA_BYTES: u64 = 16 << 20;

const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// One file of a project page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFile {
    pub filename: String,
    /// Where this index serves it now; used to download, never recorded.
    pub url: String,
    /// Lowercase hex, when the index gives one.
    pub sha256: Option<String>,
    pub requires_python: Option<String>,
    pub size: Option<u64>,
    pub yanked: bool,
    /// PEP 658/714: `None` no metadata file; `Some(None)` one without a hash;
    /// `Some(Some(h))` one with sha256 `h`.
    pub metadata: Option<Option<String>>,
}

/// A project as one index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectPage {
    /// The normalized project name.
    pub name: String,
    pub files: Vec<DistFile>,
}

/// PEP 503 normalization: lowercase, runs of `-_.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The index client of one lock or build.
pub struct IndexClient {
    http: Http,
    settings: IndexSettings,
    cache_dir: Option<PathBuf>,
    pages: Mutex<BTreeMap<String, Option<Arc<ProjectPage>>>>,
}

impl IndexClient {
    /// A client of `settings`' indexes, caching metadata under `cache_dir` when given.
    pub fn new(settings: IndexSettings, cache_dir: Option<PathBuf>) -> Result<IndexClient, IndexError> {
        Ok(IndexClient { http: Http::new()?, settings, cache_dir, pages: Mutex::new(BTreeMap::new()) })
    }

    /// The indexes read, primary first.
    pub fn settings(&self) -> &IndexSettings {
        &self.settings
    }

    /// The project's page from the first index that has it; `None` when none has.
    pub fn project(&self, name: &str) -> Result<Option<Arc<ProjectPage>>, IndexError> {
        let name = normalize_name(name);
        if let Some(page) = self.pages.lock().unwrap_or_else(|e| e.into_inner()).get(&name) {
            return Ok(page.clone());
        }
        let mut found = None;
        for index in self.settings.all() {
            if let Some(page) = self.fetch_page(index, &name)? {
                found = Some(Arc::new(page));
                break;
            }
        }
        self.pages.lock().unwrap_or_else(|e| e.into_inner()).insert(name, found.clone());
        Ok(found)
    }

    fn fetch_page(&self, index: &str, name: &str) -> Result<Option<ProjectPage>, IndexError> {
        let url = format!("{}/{name}/", index.trim_end_matches('/'));
        let Some(fetched) = self.http.get(&url, ACCEPT, MAX_PAGE_BYTES)? else { return Ok(None) };
        let files = if fetched.content_type.contains("json") {
            parse_json_page(&fetched.body, &fetched.url)?
        } else {
            parse_html_page(&fetched.body, &fetched.url)?
        };
        Ok(Some(ProjectPage { name: name.to_string(), files }))
    }

    /// The core metadata of a wheel: from the cache, the index's `.metadata` file, or the
    /// wheel itself.
    pub fn metadata(&self, file: &DistFile) -> Result<CoreMetadata, IndexError> {
        let bytes = match self.cached_metadata(file) {
            Some(b) => b,
            None => {
                let b = self.fetch_metadata(file)?;
                self.store_metadata(file, &b);
                b
            }
        };
        CoreMetadata::parse(&bytes).map_err(|m| IndexError::Metadata { file: file.filename.clone(), message: m })
    }

    fn cache_path(&self, file: &DistFile) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let sha = file.sha256.as_ref()?;
        Some(dir.join("metadata").join(&sha[..2]).join(format!("{sha}.METADATA")))
    }

    fn cached_metadata(&self, file: &DistFile) -> Option<Vec<u8>> {
        std::fs::read(self.cache_path(file)?).ok()
    }

    /// Writes atomically (a temporary file renamed), so a concurrent reader never sees
    /// half a file; a failure to cache is not a failure to lock.
    fn store_metadata(&self, file: &DistFile, bytes: &[u8]) {
        let Some(path) = self.cache_path(file) else { return };
        let Some(dir) = path.parent() else { return };
        let _ = std::fs::create_dir_all(dir).and_then(|_| {
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(bytes)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        });
    }

    fn fetch_metadata(&self, file: &DistFile) -> Result<Vec<u8>, IndexError> {
        if let Some(hash) = &file.metadata {
            let url = format!("{}.metadata", strip_fragment(&file.url));
            if let Some(f) = self.http.get(&url, "*/*", MAX_METADATA_BYTES)? {
                if let Some(expected) = hash {
                    check_digest(&format!("{}.metadata", file.filename), expected, &f.body)?;
                }
                return Ok(f.body);
            }
        }
        self.metadata_from_wheel(file)
    }

    fn metadata_from_wheel(&self, file: &DistFile) -> Result<Vec<u8>, IndexError> {
        let url = strip_fragment(&file.url);
        let len = match file.size {
            Some(s) => Some(s),
            None => self.http.content_length(url)?,
        };
        if let Some(len) = len {
            let mut reader = RangeReader::new(&self.http, url, len);
            match wheel_metadata(&mut reader, &file.filename, MAX_METADATA_BYTES) {
                Ok(b) => return Ok(b),
                Err(e) if !reader.unsupported => return Err(e),
                Err(_) => {}
            }
        }
        metadata_by_download(&self.http, url, &file.filename, file.sha256.as_deref(), MAX_METADATA_BYTES)
    }

    /// Finds a locked wheel again: the file named `filename` on `project`'s page, checked
    /// against the locked sha256.
    pub fn find_locked(&self, project: &str, filename: &str, sha256: &str) -> Result<DistFile, FetchError> {
        let page = self.project(project)?;
        let file = page.as_ref().and_then(|p| p.files.iter().find(|f| f.filename == filename));
        let Some(file) = file else {
            return Err(FetchError::NotServed { file: filename.to_string(), indexes: self.settings.source.clone() });
        };
        match &file.sha256 {
            Some(served) if served != sha256 => Err(FetchError::Changed {
                file: filename.to_string(),
                locked: sha256.to_string(),
                served: served.clone(),
            }),
            _ => Ok(file.clone()),
        }
    }

    /// Streams `file` to `dest`, verifying its sha256 against `sha256` as it arrives; the
    /// destination appears only once the digest matched. Returns the size.
    pub fn fetch(&self, file: &DistFile, sha256: &str, dest: &Path) -> Result<u64, IndexError> {
        let dir = dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let io = |source| IndexError::Io { path: dest.to_path_buf(), source };
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        let mut writer = HashingWriter::new(tmp);
        let size = self.http.stream(strip_fragment(&file.url), &mut writer, MAX_WHEEL_BYTES)?;
        let (tmp, actual) = writer.finish();
        if actual != sha256 {
            return Err(IndexError::Digest { file: file.filename.clone(), expected: sha256.to_string(), actual });
        }
        tmp.persist(dest).map_err(|e| io(e.error))?;
        Ok(size)
    }

    /// The size of a file whose listing gave none (HTML pages), by a HEAD request.
    pub fn size_of(&self, file: &DistFile) -> Result<Option<u64>, IndexError> {
        match file.size {
            Some(s) => Ok(Some(s)),
            None => self.http.content_length(strip_fragment(&file.url)),
        }
    }
}

fn strip_fragment(url: &str) -> &str {
    url.split('#').next().unwrap_or(url)
}

fn check_digest(file: &str, expected: &str, bytes: &[u8]) -> Result<(), IndexError> {
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != expected {
        return Err(IndexError::Digest { file: file.to_string(), expected: expected.to_string(), actual });
    }
    Ok(())
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(rename = "requires-python", default)]
    requires_python: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    yanked: serde_json::Value,
    #[serde(rename = "core-metadata", default)]
    core_metadata: serde_json::Value,
    #[serde(rename = "dist-info-metadata", default)]
    dist_info_metadata: serde_json::Value,
}

fn page_err(url: &str, message: String) -> IndexError {
    IndexError::Page { url: url.to_string(), message }
}

fn join(base: &url::Url, href: &str, page: &str) -> Result<String, IndexError> {
    base.join(href).map(|u| u.to_string()).map_err(|e| page_err(page, format!("link {href:?}: {e}")))
}

/// PEP 691 JSON.
fn parse_json_page(body: &[u8], page: &str) -> Result<Vec<DistFile>, IndexError> {
    let parsed: JsonPage = serde_json::from_slice(body).map_err(|e| page_err(page, e.to_string()))?;
    let base = url::Url::parse(page).map_err(|e| page_err(page, e.to_string()))?;
    parsed
        .files
        .into_iter()
        .map(|f| {
            let metadata = json_metadata(&f.core_metadata).or_else(|| json_metadata(&f.dist_info_metadata));
            Ok(DistFile {
                url: join(&base, &f.url, page)?,
                sha256: f.hashes.get("sha256").map(|h| h.to_ascii_lowercase()),
                requires_python: f.requires_python.filter(|r| !r.trim().is_empty()),
                size: f.size,
                yanked: matches!(&f.yanked, serde_json::Value::Bool(true) | serde_json::Value::String(_)),
                metadata,
                filename: f.filename,
            })
        })
        .collect()
}

fn json_metadata(v: &serde_json::Value) -> Option<Option<String>> {
    match v {
        serde_json::Value::Bool(true) => Some(None),
        serde_json::Value::Object(m) => Some(m.get("sha256").and_then(|h| h.as_str()).map(|h| h.to_ascii_lowercase())),
        _ => None,
    }
}

/// PEP 503 HTML with PEP 592 (yanked) and PEP 658/714 (metadata) attributes.
fn parse_html_page(body: &[u8], page: &str) -> Result<Vec<DistFile>, IndexError> {
    let text = std::str::from_utf8(body).map_err(|e| page_err(page, e.to_string()))?;
    let base = url::Url::parse(page).map_err(|e| page_err(page, e.to_string()))?;
    let mut out = Vec::new();
    for a in html::anchors(text) {
        let Some(href) = a.attrs.get("href") else { continue };
        let url = join(&base, href, page)?;
        let sha256 = href.split_once("#sha256=").map(|(_, h)| h.to_ascii_lowercase());
        let path_name = strip_fragment(href).rsplit('/').next().unwrap_or("").to_string();
        let filename = if a.text.is_empty() { path_name } else { a.text.clone() };
        let meta_attr = a.attrs.get("data-core-metadata").or_else(|| a.attrs.get("data-dist-info-metadata"));
        out.push(DistFile {
            filename,
            url,
            sha256,
            requires_python: a.attrs.get("data-requires-python").filter(|r| !r.trim().is_empty()).cloned(),
            size: None,
            yanked: a.attrs.contains_key("data-yanked"),
            metadata: meta_attr.and_then(|v| html_metadata(v)),
        })
    }
    Ok(out)
}

fn html_metadata(v: &str) -> Option<Option<String>> {
    match v {
        "false" => None,
        "true" | "" => Some(None),
        other => Some(other.strip_prefix("sha256=").map(|h| h.to_ascii_lowercase())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_as_pep503_says() {
        assert_eq!(normalize_name("Scikit_Learn"), "scikit-learn");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("a--_b"), "a-b");
    }

    #[test]
    fn json_page_files() {
        let body = br#"{"meta":{"api-version":"1.1"},"name":"x","files":[
            {"filename":"x-1.0-py3-none-any.whl","url":"../../f/x-1.0-py3-none-any.whl","hashes":{"sha256":"AB"},
             "requires-python":">=3.8","size":10,"yanked":false,"core-metadata":{"sha256":"cd"}},
            {"filename":"x-0.9.tar.gz","url":"https://files.invalid/x-0.9.tar.gz","hashes":{},"yanked":"broken","dist-info-metadata":true}]}"#;
        let files = parse_json_page(body, "https://index.invalid/simple/x/").unwrap();
        assert_eq!(files[0].url, "https://index.invalid/f/x-1.0-py3-none-any.whl");
        assert_eq!(files[0].sha256.as_deref(), Some("ab"));
        assert_eq!(files[0].metadata, Some(Some("cd".to_string())));
        assert!(!files[0].yanked && files[1].yanked);
        assert_eq!(files[1].metadata, Some(None));
        assert!(files[1].sha256.is_none());
    }

    #[test]
    fn html_page_files() {
        let body = br#"<html><body><a href="/f/x-1.0-py3-none-any.whl#sha256=AB" data-requires-python="&gt;=3.8" data-core-metadata="sha256=cd">x-1.0-py3-none-any.whl</a>
<a href="x-0.9.tar.gz" data-yanked="">x-0.9.tar.gz</a></body></html>"#;
        let files = parse_html_page(body, "https://index.invalid/simple/x/").unwrap();
        assert_eq!(files[0].url, "https://index.invalid/f/x-1.0-py3-none-any.whl#sha256=AB");
        assert_eq!(files[0].sha256.as_deref(), Some("ab"));
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(files[0].metadata, Some(Some("cd".into())));
        assert_eq!(files[1].url, "https://index.invalid/simple/x/x-0.9.tar.gz");
        assert!(files[1].yanked);
    }
}
