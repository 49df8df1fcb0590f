//! One HTTP client per registry host, shared by every pull, push and cache lookup of
//! the process, so that the scheme is chosen once and tokens are reused.
//!
//! - **Scheme.** HTTPS with the web's root certificates. A registry on the loopback
//!   interface or named by `--insecure-registry` is tried over HTTPS without
//!   certificate checks, then over plain HTTP (as docker and skopeo do for them).
//! - **Auth.** A request goes out anonymously until the registry's 401 challenge says
//!   how to authenticate; from then on basic credentials, or a bearer token for the
//!   request's scopes (`repository:NAME:pull[,push]`), are sent up front. A token is
//!   fetched again once when the registry refuses it (it may have expired).
//! - **Retries.** Connection errors, timeouts, 429 and 5xx are retried with
//!   exponential backoff, at most [`ATTEMPTS`] times and [`RETRY_BUDGET`] in all, so a
//!   registry that is down fails the command in seconds, not hours. Requests whose
//!   repetition could do harm (PATCH of an upload) are retried by their callers,
//!   who ask the registry where it stands first.
//! - **Proxies** come from the environment (`HTTPS_PROXY`, `NO_PROXY`, …); a registry
//!   on the loopback interface is always reached directly.

use super::auth::{credentials_for, parse_challenges, Challenge, Credentials};
use super::reference::Reference;
use super::RegistryError;
use pinfold_image::digest::Digest;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tries of one request, the first included.
pub const ATTEMPTS: u32 = 5;
/// The most time spent waiting between the tries of one request.
pub const RETRY_BUDGET: Duration = Duration::from_secs(20);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// JSON answers (manifests, token responses, errors) larger than this are refused.
pub const MAX_JSON: u64 = pinfold_image::oci::archive::MAX_JSON_SIZE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn as_http(self) -> ureq::http::Method {
        use ureq::http::Method as M;
        match self {
            Method::Get => M::GET,
            Method::Head => M::HEAD,
            Method::Post => M::POST,
            Method::Put => M::PUT,
            Method::Patch => M::PATCH,
            Method::Delete => M::DELETE,
        }
    }
}

/// A request to the registry API.
pub struct Request<'a> {
    pub method: Method,
    /// `/v2/…` (the registry's base is prefixed) or an absolute URL (a `Location`).
    pub url: String,
    /// What is asked for, for messages: "manifest v1 of pinfold/static".
    pub what: String,
    pub headers: Vec<(&'static str, String)>,
    /// `None`: no body at all (GET, HEAD); `Some(&[])`: an empty body.
    pub body: Option<&'a [u8]>,
    /// Token scopes the request needs, e.g. `repository:a/b:pull,push`.
    pub scopes: Vec<String>,
    /// Whether connection errors and 5xx may be retried here.
    pub retry: bool,
}

impl<'a> Request<'a> {
    pub fn new(method: Method, url: impl Into<String>, what: impl Into<String>, scopes: Vec<String>) -> Self {
        Request { method, url: url.into(), what: what.into(), headers: Vec::new(), body: None, scopes, retry: true }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = Some(body);
        self
    }

    pub fn no_retry(mut self) -> Self {
        self.retry = false;
        self
    }
}

pub type Response = ureq::http::Response<ureq::Body>;

/// The scope of pulling from `repository`.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The scope of pushing to `repository` (a push reads too: HEAD, mounts).
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

#[derive(Debug, Default)]
struct AuthState {
    /// The registry asked for basic auth: send it with every request.
    basic: bool,
    /// The token service of the registry's bearer challenge: realm and service.
    bearer: Option<(String, Option<String>)>,
    /// Tokens by the scopes they were granted for.
    tokens: HashMap<String, String>,
}

#[derive(Debug)]
pub struct Client {
    /// The registry as named in references (and messages).
    pub registry: String,
    api_host: String,
    insecure: bool,
    /// `https://HOST` or `http://HOST`, chosen at the first request that got an answer.
    base: Mutex<Option<String>>,
    agent: ureq::Agent,
    /// For token services on other hosts: always with certificate checks, since the
    /// credentials go there, whatever `--insecure-registry` says of the registry.
    verified: ureq::Agent,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
    /// Where each blob was last seen on this registry: the repository a cross-repo
    /// mount can take it from.
    known: Mutex<HashMap<Digest, String>>,
}

/// Whether `host` (with or without port) is this machine.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.ends_with(':') => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost" || name == "::1" || name.starts_with("127.")
}

impl Client {
    /// A client of the registry of `reference`, with `options` ([`crate::Registries`]
    /// shares one client per host).
    pub fn new(reference: &Reference, options: &super::Options) -> Result<Client, RegistryError> {
        let creds = credentials_for(&reference.host, options)?;
        let loopback = is_loopback(reference.api_host());
        let insecure = loopback || options.insecure.iter().any(|h| h == &reference.host || h == reference.api_host());
        // The system's CAs and SSL_CERT_FILE, as for every HTTPS client of pinfold.
        let tls = pinfold_tls::tls_config()
            .map_err(|message| RegistryError::Transfer { registry: reference.host.clone(), message })?;
        let verified = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .tls_config(tls.clone())
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(15)))
                .timeout_global(Some(Duration::from_secs(120)))
                .user_agent(concat!("pinfold/", env!("CARGO_PKG_VERSION")))
                .build(),
        );
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .max_idle_connections_per_host(8)
            .user_agent(concat!("pinfold/", env!("CARGO_PKG_VERSION")));
        config = if insecure {
            config.tls_config(ureq::tls::TlsConfig::builder().disable_verification(true).build())
        } else {
            config.tls_config(tls)
        };
        if loopback {
            config = config.proxy(None);
        }
        Ok(Client {
            registry: reference.host.clone(),
            api_host: reference.api_host().to_string(),
            insecure,
            base: Mutex::new(None),
            agent: ureq::Agent::new_with_config(config.build()),
            verified,
            creds,
            auth: Mutex::new(AuthState::default()),
            known: Mutex::new(HashMap::new()),
        })
    }
}

impl Client {
    /// Notes that `repository` on this registry holds `digest`.
    pub fn remember(&self, repository: &str, digest: &Digest) {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).insert(*digest, repository.to_string());
    }

    /// Another repository of this registry known to hold `digest`.
    pub fn known_elsewhere(&self, repository: &str, digest: &Digest) -> Option<String> {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).get(digest).filter(|r| *r != repository).cloned()
    }
}

/// Whether a transport error may go away by trying again.
fn transient(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_))
}

fn transient_status(status: u16) -> bool {
    status == 429 || status == 408 || (500..=599).contains(&status) && status != 501 && status != 505
}

/// `Retry-After` in seconds, when the registry sent one.
fn retry_after(response: &Response) -> Option<Duration> {
    let v = response.headers().get("retry-after")?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The first header value of `name`, as text.
pub fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

impl Client {
    /// `https://HOST`, or for an insecure registry whichever of HTTPS and HTTP answers
    /// (any HTTP answer, 401 included). When neither answers, the choice is made again
    /// at the next request, so a registry that was down is not stuck with a guess.
    pub fn base(&self) -> String {
        let https = format!("https://{}", self.api_host);
        if !self.insecure {
            return https;
        }
        let mut base = self.base.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = base.as_ref() {
            return b.clone();
        }
        let http = format!("http://{}", self.api_host);
        let answers = |url: &str| {
            let probe =
                self.agent.get(format!("{url}/v2/")).config().timeout_global(Some(Duration::from_secs(10))).build();
            probe.call().is_ok()
        };
        if answers(&https) {
            *base = Some(https.clone());
            https
        } else if answers(&http) {
            *base = Some(http.clone());
            http
        } else {
            http
        }
    }

    /// Resolves `/v2/…` against the base, and a relative `Location` too.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base(), path)
        }
    }

    fn status_error(&self, what: &str, response: &mut Response) -> RegistryError {
        let status = response.status();
        let detail = read_error_detail(response);
        RegistryError::Status {
            registry: self.registry.clone(),
            what: what.to_string(),
            status: format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")).trim_end().to_string(),
            detail,
        }
    }

    /// An error for an answer the caller did not expect.
    pub fn unexpected(&self, what: &str, mut response: Response) -> RegistryError {
        self.status_error(what, &mut response)
    }

    fn transfer(&self, what: &str, e: impl std::fmt::Display) -> RegistryError {
        RegistryError::Transfer {
            registry: self.registry.clone(),
            message: pinfold_tls::explain(format!("{what}: {e}")),
        }
    }

    /// The `Authorization` header for `scopes`, as far as it is already known.
    fn authorization(&self, scopes: &[String]) -> Result<Option<String>, RegistryError> {
        let (basic, bearer) = {
            let state = self.auth.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = state.tokens.get(&scopes.join(" ")) {
                return Ok(Some(format!("Bearer {t}")));
            }
            (state.basic, state.bearer.clone())
        };
        if basic {
            return Ok(self.creds.as_ref().and_then(Credentials::basic_header));
        }
        match bearer {
            Some((realm, service)) => {
                self.fetch_token(&realm, service.as_deref(), scopes).map(|t| Some(format!("Bearer {t}")))
            }
            None => Ok(None),
        }
    }

    /// Learns from a 401 challenge how to authenticate, and forgets the token that
    /// was refused (unless another request already replaced it). Requests run in
    /// parallel, so the caller then compares what it would send now with what it sent.
    fn learn(&self, challenges: &[Challenge], scopes: &[String], sent: Option<&str>) {
        let mut state = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        let key = scopes.join(" ");
        if state.tokens.get(&key).is_some_and(|t| sent == Some(format!("Bearer {t}").as_str())) {
            state.tokens.remove(&key);
        }
        if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer") {
            if let Some(realm) = b.params.get("realm") {
                state.bearer = Some((realm.clone(), b.params.get("service").cloned()));
                state.basic = false;
                return;
            }
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            state.basic = true;
        }
    }

    /// Asks the token service for a token of `scopes`.
    fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<String, RegistryError> {
        let what = format!("the token service {realm}");
        let mut query: Vec<String> = Vec::new();
        if let Some(s) = service {
            query.push(format!("service={}", encode(s)));
        }
        for s in scopes {
            query.push(format!("scope={}", encode(s)));
        }
        let same_host = realm
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .is_some_and(|host| host == self.api_host || is_loopback(host));
        let agent = if same_host { &self.agent } else { &self.verified };
        let mut last = None;
        let started = Instant::now();
        for attempt in 0..ATTEMPTS {
            let result = match &self.creds {
                Some(Credentials::IdentityToken(refresh)) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token".to_string()),
                        ("refresh_token", refresh.clone()),
                        ("client_id", "pinfold".to_string()),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s.to_string()));
                    }
                    let scope = scopes.join(" ");
                    form.push(("scope", scope));
                    let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
                    agent
                        .post(realm)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .send(body.join("&").as_bytes())
                }
                creds => {
                    let sep = if realm.contains('?') { '&' } else { '?' };
                    let url =
                        if query.is_empty() { realm.to_string() } else { format!("{realm}{sep}{}", query.join("&")) };
                    let mut req = agent.get(&url);
                    if let Some(h) = creds.as_ref().and_then(Credentials::basic_header) {
                        req = req.header("authorization", h);
                    }
                    req.call()
                }
            };
            match result {
                Ok(mut response) if response.status().is_success() => {
                    #[derive(serde::Deserialize)]
                    struct TokenAnswer {
                        #[serde(default)]
                        token: Option<String>,
                        #[serde(default)]
                        access_token: Option<String>,
                    }
                    let bytes = response
                        .body_mut()
                        .with_config()
                        .limit(MAX_JSON)
                        .read_to_vec()
                        .map_err(|e| self.transfer(&what, e))?;
                    let answer: TokenAnswer = serde_json::from_slice(&bytes)
                        .map_err(|e| self.transfer(&what, format!("its answer is not a token: {e}")))?;
                    let token = answer
                        .token
                        .or(answer.access_token)
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| self.transfer(&what, "its answer holds no token"))?;
                    let mut state = self.auth.lock().unwrap_or_else(|e| e.into_inner());
                    state.tokens.insert(scopes.join(" "), token.clone());
                    return Ok(token);
                }
                Ok(mut response) if response.status().as_u16() == 401 || response.status().as_u16() == 403 => {
                    return Err(RegistryError::Unauthorized {
                        registry: self.registry.clone(),
                        what: format!("a token request to {realm}{}", read_error_detail(&mut response)),
                        hint: self.hint(),
                    });
                }
                Ok(mut response) if transient_status(response.status().as_u16()) => {
                    last = Some(self.status_error(&what, &mut response))
                }
                Ok(mut response) => return Err(self.status_error(&what, &mut response)),
                Err(e) if transient(&e) => last = Some(self.transfer(&what, e)),
                Err(e) => return Err(self.transfer(&what, e)),
            }
            if !backoff(attempt, started, None) {
                break;
            }
        }
        Err(last.unwrap_or_else(|| self.transfer(&what, "no answer")))
    }

    fn hint(&self) -> String {
        match &self.creds {
            Some(_) => "the credentials were refused".to_string(),
            None => format!(
                "no credentials for it (log in with `docker login {}`, point DOCKER_CONFIG at a config.json that holds them, or pass --creds USER:PASS)",
                self.registry
            ),
        }
    }

    fn send_once(&self, request: &Request, authorization: Option<&str>) -> Result<Response, ureq::Error> {
        let mut builder = ureq::http::Request::builder().method(request.method.as_http()).uri(self.url(&request.url));
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.as_str());
        }
        if let Some(a) = authorization {
            builder = builder.header("authorization", a);
        }
        match request.body {
            None => self.agent.run(builder.body(())?),
            Some(bytes) => self.agent.run(builder.body(bytes)?),
        }
    }

    /// Sends `request` with auth and retries. Any answer but 401 is returned for the
    /// caller to judge; a 401 that credentials cannot cure is an error saying so.
    pub fn send(&self, request: &Request) -> Result<Response, RegistryError> {
        let started = Instant::now();
        let mut attempt = 0;
        let mut reauthenticated = false;
        loop {
            let authorization = self.authorization(&request.scopes)?;
            let wait = match self.send_once(request, authorization.as_deref()) {
                Ok(response) if response.status().as_u16() == 401 => {
                    let challenges: Vec<Challenge> = response
                        .headers()
                        .get_all("www-authenticate")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .flat_map(parse_challenges)
                        .collect();
                    if !reauthenticated {
                        self.learn(&challenges, &request.scopes, authorization.as_deref());
                        let now = self.authorization(&request.scopes)?;
                        if now.is_some() && now != authorization {
                            reauthenticated = true;
                            continue;
                        }
                    }
                    return Err(RegistryError::Unauthorized {
                        registry: self.registry.clone(),
                        what: request.what.clone(),
                        hint: self.hint(),
                    });
                }
                Ok(mut response)
                    if request.retry && transient_status(response.status().as_u16()) && attempt + 1 < ATTEMPTS =>
                {
                    let wait = retry_after(&response);
                    // Drain the error body so the connection can be reused.
                    let _ = read_error_detail(&mut response);
                    wait
                }
                Ok(response) => return Ok(response),
                Err(e) if request.retry && transient(&e) && attempt + 1 < ATTEMPTS => None,
                Err(e) => return Err(self.transfer(&request.what, e)),
            };
            if !backoff(attempt, started, wait) {
                // Out of time: one last try decides.
                attempt = ATTEMPTS - 1;
                continue;
            }
            attempt += 1;
        }
    }
}

/// Sleeps before try `attempt + 1`; false when the retry budget is spent.
pub fn backoff(attempt: u32, started: Instant, asked: Option<Duration>) -> bool {
    let delay = asked.unwrap_or(FIRST_BACKOFF * 2u32.pow(attempt.min(6))).min(Duration::from_secs(8));
    if started.elapsed() + delay > RETRY_BUDGET {
        return false;
    }
    std::thread::sleep(delay);
    true
}

/// The errors of a distribution API error body (`{"errors":[{"code","message"}]}`),
/// as `: CODE message`, or nothing.
pub fn read_error_detail(response: &mut Response) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ApiError>,
    }
    #[derive(serde::Deserialize)]
    struct ApiError {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(bytes) = response.body_mut().with_config().limit(64 * 1024).read_to_vec() else { return String::new() };
    match serde_json::from_slice::<Errors>(&bytes) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> =
                e.errors.iter().map(|e| format!("{} {}", e.code, e.message).trim().to_string()).collect();
            format!(": {}", parts.join("; "))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn loopback_hosts() {
        for h in ["localhost", "localhost:5000", "127.0.0.1:80", "127.1.2.3", "[::1]:5000", "::1"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["ghcr.io", "10.0.0.1:5000", "registry.local:443", "localhost.example.org"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    /// A registry that wants a bearer token from its token service (on the same
    /// host), which wants basic credentials: the flow of Docker Hub, GHCR and Harbor.
    fn token_registry() -> (u16, Arc<Mutex<Vec<String>>>, Arc<std::sync::atomic::AtomicBool>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log, done) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            while !done.load(std::sync::atomic::Ordering::SeqCst) && started.elapsed() < Duration::from_secs(30) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut out = stream;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let mut auth = String::new();
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                                break;
                            }
                            if let Some(v) = h.strip_prefix("authorization: ") {
                                auth = v.trim().to_string();
                            }
                        }
                        log.lock().unwrap().push(format!("{target} [{auth}]"));
                        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
                        let (status, headers, body): (&str, String, Vec<u8>) = if target.starts_with("/token?") {
                            if auth == format!("Basic {}", crate::auth::base64_encode(b"u:p")) {
                                ("200 OK", String::new(), br#"{"token":"tok-1"}"#.to_vec())
                            } else {
                                ("401 Unauthorized", String::new(), Vec::new())
                            }
                        } else if auth == "Bearer tok-1" {
                            (
                                "200 OK",
                                "content-type: application/vnd.oci.image.manifest.v1+json\r\n".into(),
                                manifest.to_vec(),
                            )
                        } else {
                            let challenge = format!(
                                "www-authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\",scope=\"repository:r:pull\"\r\n"
                            );
                            ("401 Unauthorized", challenge, Vec::new())
                        };
                        let head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n{headers}\r\n", body.len());
                        if out.write_all(head.as_bytes()).and_then(|_| out.write_all(&body)).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, seen, stop)
    }

    #[test]
    fn bearer_tokens_are_fetched_with_credentials_and_reused() {
        let (port, seen, stop) = token_registry();
        let reference = Reference::parse(&format!("127.0.0.1:{port}/r:t")).unwrap();
        let options = crate::Options {
            creds: Some(Credentials::Basic { username: "u".into(), password: "p".into() }),
            ..Default::default()
        };
        let client = Client::new(&reference, &options).unwrap();
        for _ in 0..2 {
            let m = crate::pull::get_manifest(&client, "r", "t", None).unwrap();
            assert_eq!(m.media_type, pinfold_image::oci::media::MANIFEST);
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let seen = seen.lock().unwrap().clone();
        // Leaves out the probes of `/v2/` that chose between HTTPS and HTTP.
        let requests: Vec<&str> = seen.iter().map(|s| s.as_str()).filter(|s| !s.starts_with("/v2/ ")).collect();
        assert_eq!(requests.len(), 4, "{seen:?}");
        assert_eq!(requests[0], "/v2/r/manifests/t []", "first anonymously");
        assert!(requests[1].starts_with("/token?service=fake&scope=repository%3Ar%3Apull [Basic "), "{seen:?}");
        assert_eq!(requests[2], "/v2/r/manifests/t [Bearer tok-1]");
        assert_eq!(requests[3], "/v2/r/manifests/t [Bearer tok-1]", "the token is reused");

        // Without credentials the token service refuses, and the error says so.
        let (port2, _, stop2) = token_registry();
        let reference2 = Reference::parse(&format!("127.0.0.1:{port2}/r:t")).unwrap();
        let anonymous = Client::new(&reference2, &crate::Options::default()).unwrap();
        let e = crate::pull::get_manifest(&anonymous, "r", "t", None).unwrap_err().to_string();
        stop2.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(e.contains(&format!("registry 127.0.0.1:{port2} answered 401 Unauthorized")), "{e}");
        assert!(e.contains("no credentials"), "{e}");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
        assert_eq!(encode("sha256:ab"), "sha256%3Aab");
    }
}
