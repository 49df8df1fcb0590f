//! Registry references, `HOST/REPO[:TAG][@sha256:…]`, split into what the
//! distribution API needs: the host to connect to, the repository, and the tag or
//! digest of the manifests endpoint. Short Docker Hub names (`debian:12`,
//! `user/app`) mean what docker and skopeo make of them (`docker.io/library/debian`).
//!
//! The type and its parser are `pinfold-image`'s (`RegistryRef`), the one parser of
//! image references, which the lint rules and the application read too; this crate
//! names it `Reference` and reports a bad one as [`RegistryError::BadReference`] with
//! the same message.

use super::RegistryError;
pub use pinfold_image::oci::reference::{BadReference, RegistryRef as Reference, DOCKER_HUB};

impl From<BadReference> for RegistryError {
    fn from(e: BadReference) -> Self {
        RegistryError::BadReference { reference: e.reference, message: e.message }
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
