//! Image references in the forms of the command-line contract (skopeo's transports):
//! `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REPO:TAG]`,
//! `docker://HOST/REPO[:TAG][@DIGEST]`, or the bare NAME of an image in the build file.

use std::fmt;
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
}
