//! Which certificate authorities pinfold's HTTPS trusts, decided in one place for every
//! client: downloads, the `docker://` transport, Debian mirrors and Python indexes.
//!
//! The system's CAs, not only a compiled-in list, so that a company proxy or a private
//! registry whose CA the machine trusts works; `SSL_CERT_FILE` first when set (read
//! directly: one bundle, much faster than a scan of `SSL_CERT_DIR`, and a bad one is an
//! error rather than silently ignored), else what rustls-native-certs finds
//! (`SSL_CERT_DIR`, the distribution's bundle), else the built-in web roots.
//!
//! Why a crate of its own: the clients live in four crates, the lowest they share
//! (pinfold-image) must not know HTTP (a golden digest depends on it alone), and the
//! three copies this replaces had drifted apart (one failed on a bad `SSL_CERT_FILE`,
//! two ignored it).

use std::sync::OnceLock;
use ureq::tls::{Certificate, RootCerts};

/// What to tell the user when a server's certificate is not trusted.
pub const HINT: &str = "if a proxy or a private CA signs this server's certificate, set SSL_CERT_FILE to a PEM file \
                        of that CA (or SSL_CERT_DIR to a directory of them)";

/// The roots every HTTPS client of pinfold trusts; read once per process.
pub fn root_certs() -> Result<RootCerts, String> {
    static ROOTS: OnceLock<Result<RootCerts, String>> = OnceLock::new();
    ROOTS.get_or_init(load).clone()
}

/// A TLS configuration with [`root_certs`].
pub fn tls_config() -> Result<ureq::tls::TlsConfig, String> {
    Ok(ureq::tls::TlsConfig::builder().root_certs(root_certs()?).build())
}

fn load() -> Result<RootCerts, String> {
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        let shown = file.to_string_lossy().into_owned();
        let pem = std::fs::read(&file).map_err(|e| format!("SSL_CERT_FILE {shown}: {e}"))?;
        let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(format!("SSL_CERT_FILE {shown}: no PEM certificate in it"));
        }
        return Ok(RootCerts::new_with_certs(&certs));
    }
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        return Ok(RootCerts::WebPki);
    }
    let certs: Vec<_> = found.certs.iter().map(|c| Certificate::from_der(c.as_ref()).to_owned()).collect();
    Ok(RootCerts::new_with_certs(&certs))
}

/// Whether an error message of an HTTPS client says the server's certificate was not
/// trusted (rustls' words, as ureq passes them on).
pub fn is_untrusted_certificate(message: &str) -> bool {
    ["invalid peer certificate", "UnknownIssuer", "certificate verify failed", "BadSignature"]
        .iter()
        .any(|m| message.contains(m))
}

/// `message` with [`HINT`] after it when it is about an untrusted certificate and does
/// not carry the hint already (an error wrapped twice says it once).
pub fn explain(message: String) -> String {
    if is_untrusted_certificate(&message) && !message.contains("SSL_CERT_FILE") {
        format!("{message}; {HINT}")
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_is_added_once_and_only_to_certificate_errors() {
        let once = explain("https://x/: rustls: invalid peer certificate: UnknownIssuer".into());
        assert_eq!(once.matches("SSL_CERT_FILE").count(), 1, "{once}");
        assert_eq!(explain(once.clone()), once);
        assert_eq!(explain("connection refused".into()), "connection refused");
    }
}
