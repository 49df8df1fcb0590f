//! Getting a URL's bytes: `http(s)://` through ureq, `file://` from the disk.
//!
//! Why its own client: HTTPS must trust the machine's CA certificates (and
//! `SSL_CERT_FILE`, which rustls-native-certs honours), not only a compiled-in list, so a
//! company proxy's CA works; `file://` lets a local mirror or a vendored tree stand in
//! for a network one. A missing file (404/410, or no such path) is `None`, so callers
//! can try the next mirror; any other failure is an error.

use crate::error::{Error, Result};
use std::io::Read;
use std::time::Duration;

pub type Body = Box<dyn Read + Send>;

/// A reusable client (one connection pool).
pub struct Http {
    agent: ureq::Agent,
}

impl Http {
    /// A client whose HTTPS trusts the system's roots (Mozilla's bundled roots when the
    /// system has none).
    pub fn new() -> Http {
        let tls = ureq::tls::TlsConfig::builder().root_certs(system_roots()).build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .user_agent(concat!("pinfold-debian/", env!("CARGO_PKG_VERSION")))
            .build();
        Http { agent: ureq::Agent::new_with_config(config) }
    }

    /// The body of `url`, or None when the server (or the disk) has no such file.
    pub fn get(&self, url: &str) -> Result<Option<Body>> {
        if let Some(path) = url.strip_prefix("file://") {
            return match std::fs::File::open(path) {
                Ok(file) => Ok(Some(Box::new(file))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(transfer(url, e)),
            };
        }
        if let (true, Err(why)) = (url.starts_with("https://"), pinfold_tls::root_certs()) {
            return Err(transfer(url, why));
        }
        let response = self.agent.get(url).call().map_err(|e| transfer(url, e))?;
        match response.status().as_u16() {
            200 => Ok(Some(Box::new(response.into_body().into_reader()))),
            404 | 410 => Ok(None),
            code => Err(Error::Transfer { url: url.to_string(), message: format!("HTTP status {code}") }),
        }
    }
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

fn transfer(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Transfer { url: url.to_string(), message: pinfold_tls::explain(e.to_string()) }
}

/// The roots of every HTTPS client of pinfold ([`pinfold_tls`]). A bad `SSL_CERT_FILE`
/// leaves none: [`Http::get`] then refuses every HTTPS URL naming it.
fn system_roots() -> ureq::tls::RootCerts {
    pinfold_tls::root_certs().unwrap_or_else(|_| ureq::tls::RootCerts::new_with_certs(&[]))
}

/// `base/path`, with exactly one slash between them.
pub fn join(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}
