//! A suite's signed InRelease: fetched, its signature checked, its text read.
//!
//! Why: the InRelease is the one file whose trust comes from a key rather than from a
//! digest; every index, and so every package digest in the lock, hangs from the SHA256
//! list it signs. Its own sha256 and Date go into the lock so a later lock can say what
//! changed, and an offline lock can find it again in the cache by that sha256. It is
//! fetched anew on every online lock (a suite moves); the Suite/Codename it signs must
//! be the one asked for, so a mirror cannot serve another suite's signed file.

use crate::cache::{Cache, Expected};
use crate::deb822;
use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::http::{join, Http};
use crate::keyring::Keyring;
use std::collections::BTreeMap;
use std::io::Read;

/// Bound on an InRelease file (bookworm's is about 150 KiB).
const MAX_INRELEASE: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The suite as asked for (`bookworm`, `bookworm-updates`).
    pub suite: String,
    /// The sha256 of the InRelease file's bytes (for the lock).
    pub sha256: String,
    /// The `Date` field, as written (for the lock).
    pub date: String,
    pub valid_until: Option<String>,
    pub suite_field: Option<String>,
    pub codename: Option<String>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// `Acquire-By-Hash: yes`: indexes may be fetched by their digest, which cannot
    /// race with the mirror's next update.
    pub acquire_by_hash: bool,
    /// The SHA256 list: path relative to `dists/SUITE/` → size and digest.
    pub files: BTreeMap<String, Expected>,
}

/// The URL of a suite's InRelease under a mirror base.
pub fn inrelease_url(base: &str, suite: &str) -> String {
    join(base, &format!("dists/{suite}/InRelease"))
}

/// Fetches `dists/SUITE/InRelease` from the first of `mirrors` that has it, checks its
/// signature against `keyring`, and keeps it in `cache` (for offline locks).
pub fn fetch_release(
    http: &Http,
    mirrors: &[String],
    suite: &str,
    keyring: &Keyring,
    cache: &Cache,
) -> Result<Release> {
    let mut tried = Vec::new();
    for base in mirrors {
        let url = inrelease_url(base, suite);
        let Some(body) = http.get(&url)? else {
            tried.push(url);
            continue;
        };
        let bytes = read_bounded(body, &url)?;
        let release = verify_release(&bytes, keyring, suite, &url)?;
        cache.put_bytes(&bytes)?;
        return Ok(release);
    }
    Err(Error::NotFound { what: format!("the InRelease of suite {suite}"), tried: tried.join(", ") })
}

/// The InRelease a lock recorded, from the cache only (offline).
pub fn cached_release(cache: &Cache, sha256: &str, suite: &str, keyring: &Keyring) -> Result<Release> {
    let what = format!("the InRelease of suite {suite} (sha256 {sha256})");
    let bytes = cache.read(sha256)?.ok_or_else(|| Error::Offline { what: what.clone() })?;
    verify_release(&bytes, keyring, suite, &what)
}

fn read_bounded(body: impl Read, url: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    body.take(MAX_INRELEASE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Transfer { url: url.to_string(), message: e.to_string() })?;
    if bytes.len() as u64 > MAX_INRELEASE {
        return Err(Error::TooLarge { what: url.to_string(), limit: MAX_INRELEASE });
    }
    Ok(bytes)
}

/// Checks the signature of InRelease `bytes` and reads the signed text; the text must
/// be for `suite` (its Suite or Codename). `what` names the file in errors.
pub fn verify_release(bytes: &[u8], keyring: &Keyring, suite: &str, what: &str) -> Result<Release> {
    let text = keyring.verify_cleartext(bytes, what)?;
    let mut release = parse_release(&text, what)?;
    let names = [release.suite_field.as_deref(), release.codename.as_deref()];
    if !names.contains(&Some(suite)) {
        return Err(Error::Release {
            what: what.to_string(),
            message: format!("signed for suite {:?} / codename {:?}, not {suite}", names[0], names[1]),
        });
    }
    release.suite = suite.to_string();
    release.sha256 = sha256_hex(bytes);
    Ok(release)
}

/// Reads the (already verified) text of a Release file.
pub fn parse_release(text: &str, what: &str) -> Result<Release> {
    let stanza = deb822::parse_all(text, what, false)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Release { what: what.to_string(), message: "empty".into() })?;
    let words =
        |name: &str| -> Vec<String> { stanza.get(name).unwrap_or("").split_whitespace().map(str::to_string).collect() };
    let owned = |name: &str| stanza.get(name).map(str::to_string);
    Ok(Release {
        suite: String::new(),
        sha256: String::new(),
        date: stanza.require("Date", what)?.to_string(),
        valid_until: owned("Valid-Until"),
        suite_field: owned("Suite"),
        codename: owned("Codename"),
        architectures: words("Architectures"),
        components: words("Components"),
        acquire_by_hash: stanza.get("Acquire-By-Hash").is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        files: parse_sha256_list(stanza.require("SHA256", what)?, what, stanza.line)?,
    })
}

/// The `SHA256` field: one ` HEX SIZE PATH` line per file.
fn parse_sha256_list(value: &str, what: &str, line: usize) -> Result<BTreeMap<String, Expected>> {
    let mut files = BTreeMap::new();
    for entry in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let bad = || Error::Syntax { what: what.to_string(), line, message: format!("bad SHA256 line {entry:?}") };
        let mut parts = entry.split_whitespace();
        let (Some(sha), Some(size), Some(path), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let size = size.parse().map_err(|_| bad())?;
        files.insert(path.to_string(), Expected { sha256: sha.to_ascii_lowercase(), size });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_text() {
        let text = format!(
            "Origin: Debian\nSuite: stable\nCodename: bookworm\nDate: Sat, 10 May 2025 08:00:00 UTC\n\
             Architectures: amd64 arm64\nComponents: main contrib\nAcquire-By-Hash: yes\nSHA256:\n {} 1234 main/binary-amd64/Packages.xz\n",
            "ab".repeat(32)
        );
        let r = parse_release(&text, "t").unwrap();
        assert_eq!(r.codename.as_deref(), Some("bookworm"));
        assert_eq!(r.architectures, ["amd64", "arm64"]);
        assert!(r.acquire_by_hash);
        assert_eq!(r.files["main/binary-amd64/Packages.xz"].size, 1234);
        let bad = text.replace(" 1234 ", " x ");
        assert!(parse_release(&bad, "t").is_err());
    }
}
