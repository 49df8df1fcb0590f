//! Registry references, `HOST/REPO[:TAG][@sha256:…]`, split into what the
//! distribution API needs: the host to connect to, the repository, and the tag or
//! digest of the manifests endpoint. Short Docker Hub names (`debian:12`,
//! `user/app`) mean what docker and skopeo make of them (`docker.io/library/debian`).

use super::RegistryError;
use pinfold_image::digest::Digest;
use std::fmt;

/// The registry that names without a host refer to.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's API is served (its name is not its API's host).
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// The registry as named (`docker.io` for Docker Hub), with its port if any.
    pub host: String,
    /// The repository within the registry, e.g. `library/debian`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

fn bad(reference: &str, message: impl Into<String>) -> RegistryError {
    RegistryError::BadReference { reference: reference.to_string(), message: message.into() }
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

impl Reference {
    /// Parses a reference, with or without `docker://`.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let body = text.strip_prefix("docker://").unwrap_or(text);
        let (named, digest) = match body.split_once('@') {
            Some((named, digest)) => {
                let d = digest.parse::<Digest>().map_err(|e| bad(text, format!("`{digest}`: {e}")))?;
                (named, Some(d))
            }
            None => (body, None),
        };
        // A colon after the last slash starts the tag; one before it is a port.
        let last_slash = named.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match named[last_slash..].find(':') {
            Some(c) => (&named[..last_slash + c], Some(&named[last_slash + c + 1..])),
            None => (named, None),
        };
        let (host, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let host = if host == "index.docker.io" || host == DOCKER_HUB_API { DOCKER_HUB.to_string() } else { host };
        let repository =
            if host == DOCKER_HUB && !repository.contains('/') { format!("library/{repository}") } else { repository };
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)) {
            return Err(bad(text, format!("`{host}` is not a registry host")));
        }
        if repository.is_empty() {
            return Err(bad(text, "it names no repository (HOST/REPO)"));
        }
        for component in repository.split('/') {
            let ok = component.starts_with(is_alnum)
                && component.ends_with(is_alnum)
                && component.chars().all(|c| is_alnum(c) || "._-".contains(c));
            if !ok {
                return Err(bad(
                    text,
                    format!("repository `{repository}`: each part is lowercase letters and digits, with `.`, `_` or `-` between them"),
                ));
            }
        }
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(bad(text, format!("`{tag}` is not a tag (up to 128 letters, digits, `_`, `.`, `-`)")));
            }
        }
        Ok(Reference { host, repository, tag: tag.map(str::to_string), digest })
    }

    /// The host the API is served on.
    pub fn api_host(&self) -> &str {
        if self.host == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.host
        }
    }

    /// What the manifests endpoint is asked for: the digest when there is one, else
    /// the tag, else `latest` (as docker does).
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// `HOST/REPO`, without tag or digest.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }

    /// The same repository, pinned to `digest` (the tag is kept for people to read).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { digest: Some(digest), ..self.clone() }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2cd103c529d293c66e513219a69fa3d0cfc9995ad957ead43ac3c4401455f3c9";

    #[test]
    fn host_port_tag_and_digest() {
        let r = Reference::parse(&format!("docker://127.0.0.1:5000/a/b:v1@{D}")).unwrap();
        assert_eq!((r.host.as_str(), r.repository.as_str(), r.tag.as_deref()), ("127.0.0.1:5000", "a/b", Some("v1")));
        assert_eq!(r.digest.unwrap().to_string(), D);
        assert_eq!(r.manifest_ref(), D);
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/a/b:v1@{D}"));
        let r = Reference::parse("localhost:5000/x").unwrap();
        assert_eq!((r.host.as_str(), r.tag.as_deref(), r.manifest_ref().as_str()), ("localhost:5000", None, "latest"));
    }

    #[test]
    fn docker_hub_short_names() {
        let r = Reference::parse("debian:12").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.api_host()),
            ("docker.io", "library/debian", "registry-1.docker.io")
        );
        let r = Reference::parse("user/app").unwrap();
        assert_eq!(r.repository, "user/app");
        let r = Reference::parse("index.docker.io/library/alpine:3").unwrap();
        assert_eq!(r.host, "docker.io");
        assert_eq!(Reference::parse("ghcr.io/o/r:1").unwrap().api_host(), "ghcr.io");
    }

    #[test]
    fn bad_references_say_why() {
        for text in
            ["ghcr.io/Upper/x", "ghcr.io/", "ghcr.io/x:", "ghcr.io/x@sha256:abc", "ghcr.io/a//b", "ghcr.io/x:-t"]
        {
            assert!(Reference::parse(text).is_err(), "{text} parsed");
        }
        let e = Reference::parse("ghcr.io/x@md5:00").unwrap_err().to_string();
        assert!(e.contains("sha256"), "{e}");
    }
}
