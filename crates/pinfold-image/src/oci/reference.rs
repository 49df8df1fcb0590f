//! Image references, parsed here and nowhere else: the forms of the command-line
//! contract (skopeo's transports) — `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`,
//! `docker-archive:FILE[:REPO:TAG]`, `docker://HOST/REPO[:TAG][@DIGEST]`, or the bare
//! NAME of an image in the build file ([`ImageRef`]) — and the registry form
//! `[docker://]HOST/REPO[:TAG][@DIGEST]` inside them, split into its parts as written
//! ([`RegistryParts`], lenient: what `pinfold lint` reads in `FROM` lines that hold
//! variables) and checked and named the way docker and skopeo read it ([`RegistryRef`],
//! strict: what `pinfold-registry` connects to and a build file's base pins). Short
//! Docker Hub names (`debian:12`, `user/app`) mean `docker.io/library/debian`.

use crate::digest::Digest;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Layout {
        dir: PathBuf,
        reference: Option<String>,
    },
    OciArchive {
        file: PathBuf,
        reference: Option<String>,
    },
    DockerArchive {
        file: PathBuf,
        reference: Option<String>,
    },
    Registry(String),
    /// An image defined in the build file.
    Name(String),
}

/// Splits `PATH[:REF]`: the reference is what follows the last `:` when it holds no `/`.
fn path_and_ref(rest: &str) -> (PathBuf, Option<String>) {
    match rest.rsplit_once(':') {
        Some((path, reference)) if !reference.contains('/') && !path.is_empty() && !reference.is_empty() => {
            (PathBuf::from(path), Some(reference.to_string()))
        }
        _ => (PathBuf::from(rest), None),
    }
}

impl std::str::FromStr for ImageRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, reference) = path_and_ref(rest);
            return nonempty(dir, s).map(|dir| ImageRef::Layout { dir, reference });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (file, reference) = path_and_ref(rest);
            return nonempty(file, s).map(|file| ImageRef::OciArchive { file, reference });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            // docker-archive:FILE[:REPO[:TAG]]: the reference may itself hold one `:`.
            let (file, reference) = match rest.split_once(':') {
                Some((file, reference)) if !reference.is_empty() => (PathBuf::from(file), Some(reference.to_string())),
                _ => (PathBuf::from(rest), None),
            };
            return nonempty(file, s).map(|file| ImageRef::DockerArchive { file, reference });
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            if rest.is_empty() {
                return Err(format!("`{s}` names no repository"));
            }
            return Ok(ImageRef::Registry(rest.to_string()));
        }
        if s.is_empty() {
            return Err("an empty image reference".into());
        }
        if s.contains(':') || s.contains('/') {
            return Err(format!(
                "`{s}` is not an image reference: use oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE, docker://HOST/REPO[:TAG][@DIGEST], or the name of an image in the build file"
            ));
        }
        Ok(ImageRef::Name(s.to_string()))
    }
}

fn nonempty(path: PathBuf, whole: &str) -> Result<PathBuf, String> {
    if path.as_os_str().is_empty() {
        Err(format!("`{whole}` names no path"))
    } else {
        Ok(path)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_ref = |f: &mut fmt::Formatter<'_>, prefix: &str, path: &PathBuf, r: &Option<String>| {
            write!(f, "{prefix}:{}", path.display())?;
            if let Some(r) = r {
                write!(f, ":{r}")?;
            }
            Ok(())
        };
        match self {
            ImageRef::Layout { dir, reference } => with_ref(f, "oci", dir, reference),
            ImageRef::OciArchive { file, reference } => with_ref(f, "oci-archive", file, reference),
            ImageRef::DockerArchive { file, reference } => with_ref(f, "docker-archive", file, reference),
            ImageRef::Registry(r) => write!(f, "docker://{r}"),
            ImageRef::Name(n) => f.write_str(n),
        }
    }
}

/// The parts of a registry reference `[docker://]HOST/REPO[:TAG][@DIGEST]` as they are
/// written, each with its byte range in the whole text, so that a finding can point at
/// the tag or the digest itself. Nothing is checked: [`RegistryRef::parse`] checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryParts<'a> {
    /// The repository, registry host (and port) included when given.
    pub name: &'a str,
    /// The tag and its byte range within the text.
    pub tag: Option<(&'a str, Range<usize>)>,
    /// The digest (`algorithm:hex`, unchecked) and its byte range within the text.
    pub digest: Option<(&'a str, Range<usize>)>,
}

impl<'a> RegistryParts<'a> {
    /// Splits `text`, with or without `docker://`; never fails.
    pub fn split(text: &'a str) -> RegistryParts<'a> {
        let offset = if text.starts_with("docker://") { "docker://".len() } else { 0 };
        let body = &text[offset..];
        let (named, digest) = match body.find('@') {
            Some(at) => (&body[..at], Some((&body[at + 1..], offset + at + 1..text.len()))),
            None => (body, None),
        };
        // A colon after the last slash starts the tag; one before it is a registry port.
        let last_slash = named.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match named[last_slash..].find(':') {
            Some(c) => {
                let c = last_slash + c;
                (&named[..c], Some((&named[c + 1..], offset + c + 1..offset + named.len())))
            }
            None => (named, None),
        };
        RegistryParts { name, tag, digest }
    }
}

/// The registry that names without a host refer to.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's API is served (its name is not its API's host); a reference may
/// name it too, and it means Docker Hub.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A registry reference, checked, with Docker Hub's short names spelled out: the host
/// to connect to, the repository, and the tag or digest of the manifests endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryRef {
    /// The registry as named (`docker.io` for Docker Hub), with its port if any.
    pub host: String,
    /// The repository within the registry, e.g. `library/debian`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// A text that is not a registry reference, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` is not a registry reference: {message}")]
pub struct BadReference {
    pub reference: String,
    pub message: String,
}

fn bad(reference: &str, message: impl Into<String>) -> BadReference {
    BadReference { reference: reference.to_string(), message: message.into() }
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

impl RegistryRef {
    /// Parses a reference, with or without `docker://`: [`RegistryParts::split`], then
    /// each part checked against the distribution spec's grammar.
    pub fn parse(text: &str) -> Result<Self, BadReference> {
        let parts = RegistryParts::split(text);
        let digest = match parts.digest {
            Some((digest, _)) => Some(digest.parse::<Digest>().map_err(|e| bad(text, format!("`{digest}`: {e}")))?),
            None => None,
        };
        let (name, tag) = (parts.name, parts.tag.map(|(tag, _)| tag));
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
        Ok(RegistryRef { host, repository, tag: tag.map(str::to_string), digest })
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
    pub fn with_digest(&self, digest: Digest) -> RegistryRef {
        RegistryRef { digest: Some(digest), ..self.clone() }
    }
}

impl fmt::Display for RegistryRef {
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

    #[test]
    fn forms_of_the_contract_parse() {
        assert_eq!(
            "oci:out/hello:v1".parse::<ImageRef>().unwrap(),
            ImageRef::Layout { dir: "out/hello".into(), reference: Some("v1".into()) }
        );
        assert_eq!(
            "oci:out/hello".parse::<ImageRef>().unwrap(),
            ImageRef::Layout { dir: "out/hello".into(), reference: None }
        );
        assert_eq!(
            "docker-archive:x.tar:hello:1".parse::<ImageRef>().unwrap(),
            ImageRef::DockerArchive { file: "x.tar".into(), reference: Some("hello:1".into()) }
        );
        assert_eq!("hello".parse::<ImageRef>().unwrap(), ImageRef::Name("hello".into()));
        assert!("ubuntu:latest".parse::<ImageRef>().is_err());
        assert!("oci:".parse::<ImageRef>().is_err());
    }

    const D: &str = "sha256:2cd103c529d293c66e513219a69fa3d0cfc9995ad957ead43ac3c4401455f3c9";

    #[test]
    fn registry_parts_split_host_port_tag_and_digest_with_their_spans() {
        let r = RegistryParts::split("localhost:5000/a/b:1.2@sha256:abc");
        assert_eq!(r.name, "localhost:5000/a/b");
        assert_eq!(r.tag.map(|t| t.0), Some("1.2"));
        assert_eq!(r.digest.as_ref().map(|d| d.0), Some("sha256:abc"));
        let text = "docker://alpine:latest";
        let r = RegistryParts::split(text);
        assert_eq!(r.name, "alpine");
        let (tag, range) = r.tag.unwrap_or_default();
        assert_eq!((tag, &text[range]), ("latest", "latest"));
        let text = format!("docker://x/y:${{V}}@{D}");
        let r = RegistryParts::split(&text);
        assert_eq!((r.name, r.tag.as_ref().map(|t| &text[t.1.clone()])), ("x/y", Some("${V}")));
        assert_eq!(&text[r.digest.unwrap().1], D);
        assert_eq!(RegistryParts::split("localhost:5000/x").tag, None);
    }

    #[test]
    fn registry_ref_host_port_tag_and_digest() {
        let r = RegistryRef::parse(&format!("docker://127.0.0.1:5000/a/b:v1@{D}")).unwrap();
        assert_eq!((r.host.as_str(), r.repository.as_str(), r.tag.as_deref()), ("127.0.0.1:5000", "a/b", Some("v1")));
        assert_eq!(r.digest.unwrap().to_string(), D);
        assert_eq!(r.manifest_ref(), D);
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/a/b:v1@{D}"));
        let r = RegistryRef::parse("localhost:5000/x").unwrap();
        assert_eq!((r.host.as_str(), r.tag.as_deref(), r.manifest_ref().as_str()), ("localhost:5000", None, "latest"));
    }

    #[test]
    fn registry_ref_docker_hub_short_names() {
        let r = RegistryRef::parse("debian:12").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.api_host()),
            ("docker.io", "library/debian", "registry-1.docker.io")
        );
        assert_eq!(RegistryRef::parse("user/app").unwrap().repository, "user/app");
        assert_eq!(RegistryRef::parse("index.docker.io/library/alpine:3").unwrap().host, "docker.io");
        assert_eq!(RegistryRef::parse("ghcr.io/o/r:1").unwrap().api_host(), "ghcr.io");
    }

    #[test]
    fn bad_registry_refs_say_why() {
        for text in
            ["ghcr.io/Upper/x", "ghcr.io/", "ghcr.io/x:", "ghcr.io/x@sha256:abc", "ghcr.io/a//b", "ghcr.io/x:-t"]
        {
            assert!(RegistryRef::parse(text).is_err(), "{text} parsed");
        }
        let e = RegistryRef::parse("ghcr.io/x@md5:00").unwrap_err().to_string();
        assert!(e.starts_with("`ghcr.io/x@md5:00` is not a registry reference: "), "{e}");
        assert!(e.contains("sha256"), "{e}");
    }
}
