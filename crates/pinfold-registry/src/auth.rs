//! Who pinfold is to a registry. Credentials come from `--creds USER:PASS`, else from
//! the docker config file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`)
//! that `docker login`, `podman login` and CI login actions write: a credential
//! helper (`credHelpers` for the host, else `credsStore`) run as
//! `docker-credential-NAME get`, else the host's entry of `auths`. A registry says how
//! it wants them in its `WWW-Authenticate` challenge: `Basic`, or `Bearer` with a token
//! service (realm, service, scope) that exchanges them for a short-lived token.

use super::reference::DOCKER_HUB;
use super::RegistryError;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A login. Its `Debug` never shows the secret, so an error or a log cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in the config, or a helper's answer
    /// with the user `<token>`), exchanged at the token service.
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credentials {
    /// `USER:PASS`, as `--creds` takes it (the password may hold `:`).
    pub fn parse_user_pass(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some((user, pass)) if !user.is_empty() => {
                Ok(Credentials::Basic { username: user.to_string(), password: pass.to_string() })
            }
            _ => Err("credentials are written USER:PASS".to_string()),
        }
    }

    /// The `Authorization` header of basic auth, when these are a user and password.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => {
                Some(format!("Basic {}", base64_encode(format!("{username}:{password}").as_bytes())))
            }
            Credentials::IdentityToken(_) => None,
        }
    }
}

/// The names under which a host may be stored in a docker config. Docker Hub is
/// stored by docker under its old v1 URL.
fn host_aliases(host: &str) -> Vec<&str> {
    if host == DOCKER_HUB {
        vec!["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"]
    } else {
        vec![host]
    }
}

/// `https://host/v1/` → `host`: keys of `auths` are written with or without scheme
/// and path.
fn normalize_key(key: &str) -> &str {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The credentials for `host`: `--creds` first, then the docker config. `None` means
/// anonymous access.
pub fn credentials_for(host: &str, options: &super::Options) -> Result<Option<Credentials>, RegistryError> {
    if let Some(c) = &options.creds {
        return Ok(Some(c.clone()));
    }
    let Some(dir) = &options.docker_config else { return Ok(None) };
    from_docker_config(host, &dir.join("config.json"))
}

fn from_docker_config(host: &str, path: &Path) -> Result<Option<Credentials>, RegistryError> {
    let err = |message: String| RegistryError::Credentials { registry: host.to_string(), message };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(format!("cannot read {}: {e}", path.display()))),
    };
    let config: DockerConfig =
        serde_json::from_slice(&bytes).map_err(|e| err(format!("{} is not a docker config: {e}", path.display())))?;
    let aliases = host_aliases(host);
    let helper = aliases
        .iter()
        .find_map(|a| config.cred_helpers.get(*a))
        .or(config.creds_store.as_ref())
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper {
        if let Some(c) = run_helper(helper, aliases[0], host)? {
            return Ok(Some(c));
        }
    }
    let entry = config.auths.iter().find(|(k, _)| aliases.contains(&normalize_key(k)) || aliases.contains(&k.as_str()));
    let Some((key, entry)) = entry else { return Ok(None) };
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::IdentityToken(token.clone())));
    }
    if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        let decoded = base64_decode(auth)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| err(format!("the `auth` of `{key}` in {} is not base64 of USER:PASS", path.display())))?;
        return Credentials::parse_user_pass(&decoded)
            .map(Some)
            .map_err(|_| err(format!("the `auth` of `{key}` in {} is not USER:PASS", path.display())));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => {
            Ok(Some(Credentials::Basic { username: u.clone(), password: p.clone() }))
        }
        _ => Ok(None),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// Runs `docker-credential-NAME get` with the server's name on stdin. A helper that
/// knows nothing of the server (it exits non-zero saying so) means no credentials.
fn run_helper(helper: &str, server: &str, host: &str) -> Result<Option<Credentials>, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let err = |message: String| RegistryError::Credentials {
        registry: host.to_string(),
        message: format!("{program}: {message}"),
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run it ({e}); the docker config names it as the credential helper")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its exit status below.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        if text.to_ascii_lowercase().contains("not found") {
            return Ok(None);
        }
        return Err(err(format!("failed ({}): {}", out.status, text.trim())));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|e| err(format!("its answer is not the JSON of the helper protocol: {e}")))?;
    if answer.username == "<token>" {
        return Ok(Some(Credentials::IdentityToken(answer.secret)));
    }
    Ok(Some(Credentials::Basic { username: answer.username, password: answer.secret }))
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercase: `basic` or `bearer`.
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="…",service="…",scope="…"` (RFC 7235: a scheme, then
/// `key=value` pairs whose values are tokens or quoted strings with `\` escapes; a
/// new scheme may follow after a comma).
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let chars: Vec<char> = header.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == ',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && !chars[*i].is_whitespace() && !"=,\"".contains(chars[*i]) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let word = token(&mut i);
        if word.is_empty() {
            i += 1; // a stray `=` or quote: skip it rather than loop
            continue;
        }
        let mut j = i;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        if j < chars.len() && chars[j] == '=' && !out.is_empty() {
            i = j + 1;
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            let value = if i < chars.len() && chars[i] == '"' {
                i += 1;
                let mut v = String::new();
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    v.push(chars[i]);
                    i += 1;
                }
                i += 1;
                v
            } else {
                token(&mut i)
            };
            if let Some(last) = out.last_mut() {
                last.params.insert(word.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge { scheme: word.to_ascii_lowercase(), params: BTreeMap::new() });
        }
    }
    out
}

/// Standard base64, as basic auth and the `auth` field of docker configs write it.
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes the `auth` of a docker config (padding optional, white space ignored);
/// `None` when it is not base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(compact.trim_end_matches('=')))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar", "user:pa:ss"] {
            assert_eq!(base64_decode(&base64_encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert!(base64_decode("!!").is_none());
    }

    #[test]
    fn challenges_parse() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["scope"], "repository:library/debian:pull,push");
        let c = parse_challenges(r#"Basic realm="a \"q\" realm", Bearer realm=x"#);
        assert_eq!(c.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(), ["basic", "bearer"]);
        assert_eq!(c[0].params["realm"], "a \"q\" realm");
        assert_eq!(c[1].params["realm"], "x");
        assert!(parse_challenges("").is_empty());
        let _ = parse_challenges("=\"unterminated");
    }

    #[test]
    fn docker_config_auths_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},"127.0.0.1:5000":{"auth":"dXNlcjpwYTpzcw=="}}}"#,
        )
        .unwrap();
        let hub = from_docker_config("docker.io", &path).unwrap().unwrap();
        assert_eq!(hub, Credentials::Basic { username: "hub".into(), password: "secret".into() });
        let local = from_docker_config("127.0.0.1:5000", &path).unwrap().unwrap();
        assert_eq!(local, Credentials::Basic { username: "user".into(), password: "pa:ss".into() });
        assert!(from_docker_config("ghcr.io", &path).unwrap().is_none());
        assert!(!format!("{local:?}").contains("pa:ss"));
    }
}
