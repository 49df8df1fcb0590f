//! Image references as a registry, Docker and the build file write them
//! (`[docker://]HOST/REPO[:TAG][@sha256:…]`), split into the parts the pinning rules
//! look at, each with its span so a finding points at the tag or the digest itself.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// The repository, registry host included when given.
    pub name: &'a str,
    /// The tag and its byte range within the reference text.
    pub tag: Option<(&'a str, Range<usize>)>,
    /// The digest (`algorithm:hex`) and its byte range within the reference text.
    pub digest: Option<(&'a str, Range<usize>)>,
}

impl<'a> ImageRef<'a> {
    pub fn parse(text: &'a str) -> ImageRef<'a> {
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
        ImageRef { name, tag, digest }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_port_tag_and_digest() {
        let r = ImageRef::parse("localhost:5000/a/b:1.2@sha256:abc");
        assert_eq!(r.name, "localhost:5000/a/b");
        assert_eq!(r.tag.map(|t| t.0), Some("1.2"));
        assert_eq!(r.digest.as_ref().map(|d| d.0), Some("sha256:abc"));
        let text = "docker://alpine:latest";
        let r = ImageRef::parse(text);
        assert_eq!(r.name, "alpine");
        let (tag, range) = r.tag.unwrap_or_default();
        assert_eq!((tag, &text[range]), ("latest", "latest"));
        assert_eq!(ImageRef::parse("localhost:5000/x").tag, None);
    }
}
