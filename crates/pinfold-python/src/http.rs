//! HTTPS for the index: one agent trusting the system's certificate authorities.
//!
//! Why: a company index or a TLS-inspecting proxy is trusted by the machine's CA bundle
//! (and `SSL_CERT_FILE` / `SSL_CERT_DIR`), not by a compiled-in list; rustls-native-certs
//! reads exactly those. Every body read is bounded, and transient transport errors are
//! tried again a few times so a flaky mirror does not fail a lock.

use std::io::{Read, Write};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use ureq::tls::TlsConfig;
use ureq::ResponseExt;

use crate::error::IndexError;

const ATTEMPTS: u32 = 3;

/// Largest wheel downloaded (by the index client, and by the remote-zip fallback that
/// downloads a whole wheel for its METADATA). Here, with the writer that hashes a
/// download while it streams, so that neither of those two modules imports the other.
pub const MAX_WHEEL_BYTES: u64 = 4 << 30;

/// A writer that hashes what passes through it.
pub(crate) struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new() }
    }

    /// The inner writer and the lowercase hex sha256 of everything written.
    pub(crate) fn finish(self) -> (W, String) {
        (self.inner, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A fetched body with the URL it finally came from (after redirects).
pub(crate) struct Fetched {
    pub body: Vec<u8>,
    pub url: String,
    pub content_type: String,
}

/// The HTTP client shared by all fetches of one lock or build.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
}

impl Http {
    /// An agent trusting the system's CAs (and `SSL_CERT_FILE`).
    pub fn new() -> Result<Http, IndexError> {
        let roots = pinfold_tls::root_certs().map_err(IndexError::Tls)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .max_idle_connections_per_host(16)
            .user_agent(concat!("pinfold-python/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Http { agent: ureq::Agent::new_with_config(config) })
    }

    /// GET a body of at most `limit` bytes; `Ok(None)` on 404/410.
    pub(crate) fn get(&self, url: &str, accept: &str, limit: u64) -> Result<Option<Fetched>, IndexError> {
        self.retry(url, || {
            let mut resp = self.agent.get(url).header("Accept", accept).call().map_err(|e| http_err(url, e))?;
            let status = resp.status().as_u16();
            if status == 404 || status == 410 {
                return Ok(None);
            }
            if status != 200 {
                return Err(IndexError::Status { url: url.to_string(), status });
            }
            let final_url = resp.get_uri().to_string();
            let content_type = header(&resp, "content-type");
            let body = read_limited(resp.body_mut().as_reader(), url, limit)?;
            Ok(Some(Fetched { body, url: final_url, content_type }))
        })
    }

    /// GET `url` into `out`, at most `limit` bytes; returns the byte count.
    pub(crate) fn stream(&self, url: &str, out: &mut dyn Write, limit: u64) -> Result<u64, IndexError> {
        let mut resp = self.agent.get(url).call().map_err(|e| http_err(url, e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(IndexError::Status { url: url.to_string(), status });
        }
        let mut reader = resp.body_mut().with_config().limit(limit.saturating_add(1)).reader();
        let n = std::io::copy(&mut reader, out)
            .map_err(|e| IndexError::Http { url: url.to_string(), message: e.to_string() })?;
        if n > limit {
            return Err(IndexError::TooLarge { url: url.to_string(), limit });
        }
        Ok(n)
    }

    /// GET bytes `start..end` of `url`; `Ok(None)` when the server does not serve ranges.
    pub(crate) fn range(&self, url: &str, start: u64, end: u64) -> Result<Option<Vec<u8>>, IndexError> {
        self.retry(url, || {
            let range = format!("bytes={start}-{}", end.saturating_sub(1));
            let mut resp = self.agent.get(url).header("Range", &range).call().map_err(|e| http_err(url, e))?;
            if resp.status().as_u16() != 206 {
                return Ok(None);
            }
            let body = read_limited(resp.body_mut().as_reader(), url, end - start)?;
            Ok((body.len() as u64 == end - start).then_some(body))
        })
    }

    /// The length a HEAD request reports, if any.
    pub(crate) fn content_length(&self, url: &str) -> Result<Option<u64>, IndexError> {
        self.retry(url, || {
            let resp = self.agent.head(url).call().map_err(|e| http_err(url, e))?;
            if resp.status().as_u16() != 200 {
                return Ok(None);
            }
            Ok(header(&resp, "content-length").parse().ok())
        })
    }

    fn retry<T>(&self, url: &str, mut f: impl FnMut() -> Result<T, IndexError>) -> Result<T, IndexError> {
        let mut attempt = 1;
        loop {
            match f() {
                Err(IndexError::Http { .. }) if attempt < ATTEMPTS => {
                    std::thread::sleep(Duration::from_millis(300 * u64::from(attempt)));
                    attempt += 1;
                }
                Err(IndexError::Status { status, .. }) if status >= 500 && attempt < ATTEMPTS => {
                    std::thread::sleep(Duration::from_millis(300 * u64::from(attempt)));
                    attempt += 1;
                }
                other => {
                    let _ = url;
                    return other;
                }
            }
        }
    }
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn read_limited(reader: impl Read, url: &str, limit: u64) -> Result<Vec<u8>, IndexError> {
    let mut body = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| IndexError::Http { url: url.to_string(), message: e.to_string() })?;
    if body.len() as u64 > limit {
        return Err(IndexError::TooLarge { url: url.to_string(), limit });
    }
    Ok(body)
}

fn http_err(url: &str, e: ureq::Error) -> IndexError {
    IndexError::Http { url: url.to_string(), message: pinfold_tls::explain(e.to_string()) }
}
