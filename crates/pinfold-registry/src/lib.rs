//! The `docker://HOST/REPO[:TAG][@sha256:…]` transport of the contract: images read
//! from and written to registries over the OCI distribution API.
//!
//! Published images live in registries, so pinfold must push what it builds, pull
//! bases by digest, verify images where they are published, and share its layer cache
//! through a registry a team already runs. The same rules hold here as for files:
//! nothing read is trusted (every manifest and blob is hashed while it streams and
//! enters the store only when it matches), and nothing half-written is made visible
//! (blobs first, then manifests by digest, the tag last).
//!
//! - [`reference`] parses `HOST/REPO[:TAG][@DIGEST]` (Docker Hub's short names too);
//! - [`auth`] finds credentials (`--creds`, `~/.docker/config.json`, credential
//!   helpers) and reads the `WWW-Authenticate` challenges of basic and bearer auth;
//! - [`client`] is one HTTP client per registry: scheme choice, auth, bounded retries;
//! - [`pull`] reads manifests and blobs by digest, verified, resumable, into the store;
//! - [`push`] writes blobs (skipped, mounted, or uploaded whole or in chunks), then
//!   manifests as the exact bytes that were hashed, and tags last;
//!
//! It imports only `pinfold-image`: it reads and writes OCI objects and the blob
//! store, and knows nothing of build files, plans or the layer cache (the shared
//! cache in a registry is the application's `cache::remote`, over [`Registries`]).
//! It reads no environment but `DOCKER_CONFIG`/`HOME` in [`default_docker_config`],
//! which the application calls when it makes the [`Options`].
//! Entry points: [`Registries::new`], [`open_image`], [`open_base`], [`push`].

pub mod auth;
pub mod client;
pub mod pull;
pub mod push;
pub mod reference;

pub use pull::{open_base, open_image};
pub use push::{push, PushReport};
pub use reference::Reference;

use pinfold_image::digest::Digest;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How registries are reached, from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--creds USER:PASS`: used for every registry, before any config file.
    pub creds: Option<auth::Credentials>,
    /// `--insecure-registry HOST`: plain HTTP, or HTTPS without certificate checks.
    pub insecure: Vec<String>,
    /// Where `config.json` is: `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config: Option<PathBuf>,
}

/// The registries a command talks to: its options and one client per host (which
/// keeps the host's scheme, tokens and known blob locations). A value, made once by
/// the application from its flags and passed to every pull and push.
#[derive(Debug, Default)]
pub struct Registries {
    options: Options,
    clients: Mutex<BTreeMap<String, Arc<client::Client>>>,
}

impl Registries {
    pub fn new(options: Options) -> Self {
        Registries { options, clients: Mutex::new(BTreeMap::new()) }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The client of the registry of `reference`, made on first use.
    pub fn client_for(&self, reference: &Reference) -> Result<Arc<client::Client>, RegistryError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&reference.host) {
            return Ok(c.clone());
        }
        let client = Arc::new(client::Client::new(reference, &self.options)?);
        clients.insert(reference.host.clone(), client.clone());
        Ok(client)
    }
}

/// `$DOCKER_CONFIG`, else `$HOME/.docker`: where docker and skopeo keep logins.
pub fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|h| PathBuf::from(h).join(".docker"))
}

/// Everything that can go wrong with a registry. Each message names the registry, and
/// the HTTP status when there is one, so that a CI log says where to look.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("`{reference}` is not a registry reference: {message}")]
    BadReference { reference: String, message: String },
    #[error("registry {registry}: {message}")]
    Transfer { registry: String, message: String },
    #[error("registry {registry} answered {status} to {what}{detail}")]
    Status { registry: String, what: String, status: String, detail: String },
    #[error("registry {registry} answered 401 Unauthorized to {what}: {hint}")]
    Unauthorized { registry: String, what: String, hint: String },
    #[error("{what} from registry {registry} does not match its digest: expected {expected}, got {actual}; nothing was stored")]
    DigestMismatch { registry: String, what: String, expected: Digest, actual: Digest },
    #[error("{what} from registry {registry} is not valid: {message}")]
    Invalid { registry: String, what: String, message: String },
    #[error("credentials for {registry}: {message}")]
    Credentials { registry: String, message: String },
    #[error("the store at {path}: {source}")]
    Store { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Unsupported(String),
}

impl RegistryError {
    /// Whether the registry said that the thing asked for is not there (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::Status { status, .. } if status.starts_with("404"))
    }
}

impl From<RegistryError> for pinfold_image::oci::read::ReadError {
    /// A mismatch stays a mismatch, so that `pinfold verify` reports a tampered image
    /// as such; everything else is a registry error with its own message.
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::DigestMismatch { registry, what, expected, actual } => {
                pinfold_image::oci::read::ReadError::DigestMismatch {
                    what: format!("{what} from registry {registry}"),
                    expected: expected.to_string(),
                    actual,
                }
            }
            other => pinfold_image::oci::read::ReadError::Remote(Box::new(other)),
        }
    }
}
