//! Reading images from a registry. The top object is asked for by digest (a tag only
//! where the caller allows it: `pinfold lock`, or with a warning), every manifest and
//! blob is hashed while it streams, and what matches enters the store (the cache's
//! `blobs/sha256/`) under its digest; what does not match is dropped and named.
//!
//! Only what is needed is fetched: manifests of the platforms asked for, their
//! configs, and layers when a build copies them ([`RegistryBlobs`] streams them,
//! from the store when they are there). A pinned image that was pulled once is read
//! from the store alone, so a rebuild needs no network.

use super::client::{header, pull_scope, Client, Method, Request, ATTEMPTS, MAX_JSON};
use super::reference::Reference;
use super::{Registries, RegistryError};
use pinfold_image::digest::{Digest, HashingWriter};
use pinfold_image::oci::archive::{Archive, RemoteBlobs};
use pinfold_image::oci::media;
use pinfold_image::oci::read::{load_manifest, platforms_match, OpenedImage, ReadError, TopObject};
use pinfold_image::store::BlobStore;
use pinfold_image::Platform;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// What the manifests endpoint is asked to answer with.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A manifest or index as the registry sent it.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// The media type of a manifest: its own `mediaType`, else the `Content-Type` the
/// registry sent, else what its fields say it is.
fn media_type_of(bytes: &[u8], content_type: Option<&str>) -> String {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    if let Some(m) = value.get("mediaType").and_then(|m| m.as_str()) {
        return m.to_string();
    }
    if let Some(c) = content_type.filter(|c| media::is_index(c) || media::is_manifest(c)) {
        return c.to_string();
    }
    if value.get("manifests").is_some() {
        media::INDEX.to_string()
    } else {
        media::MANIFEST.to_string()
    }
}

/// Asks for manifest `reference` (a tag or a digest) of `repository`. The bytes must
/// hash to `expected`, else to the `Docker-Content-Digest` the registry claims.
pub fn get_manifest(
    client: &Client,
    repository: &str,
    reference: &str,
    expected: Option<Digest>,
) -> Result<Manifest, RegistryError> {
    let what = format!("manifest {reference} of {repository}");
    let request = Request::new(
        Method::Get,
        format!("/v2/{repository}/manifests/{reference}"),
        &what,
        vec![pull_scope(repository)],
    )
    .header("accept", MANIFEST_ACCEPT);
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let mut response = client.send(&request)?;
        if !response.status().is_success() {
            return Err(client.unexpected(&what, response));
        }
        let claimed = header(&response, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
        let content_type =
            header(&response, "content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_string());
        let bytes = match response.body_mut().with_config().limit(MAX_JSON).read_to_vec() {
            Ok(b) => b,
            Err(e) if attempt + 1 < ATTEMPTS && super::client::backoff(attempt, started, None) => {
                let _ = e;
                attempt += 1;
                continue;
            }
            Err(e) => {
                return Err(RegistryError::Transfer {
                    registry: client.registry.clone(),
                    message: format!("{what}: {e}"),
                })
            }
        };
        let actual = Digest::of(&bytes);
        if let Some(expected) = expected.or(claimed) {
            if expected != actual {
                return Err(RegistryError::DigestMismatch {
                    registry: client.registry.clone(),
                    what,
                    expected,
                    actual,
                });
            }
        }
        let media_type = media_type_of(&bytes, content_type.as_deref());
        return Ok(Manifest { digest: actual, media_type, bytes });
    }
}

/// A manifest by digest: from the store when it is there, else from the registry
/// (and then into the store).
fn manifest_by_digest(
    client: &Client,
    repository: &str,
    digest: Digest,
    store: Option<&BlobStore>,
    offline: bool,
) -> Result<Manifest, RegistryError> {
    if let Some(store) = store {
        if let Ok(bytes) = std::fs::read(store.blob_path(&digest)) {
            if Digest::of(&bytes) == digest {
                return Ok(Manifest { digest, media_type: media_type_of(&bytes, None), bytes });
            }
        }
    }
    if offline {
        return Err(RegistryError::Unsupported(format!(
            "manifest {digest} of {}/{repository} is not in the store, and --offline forbids fetching it",
            client.registry
        )));
    }
    let manifest = get_manifest(client, repository, &digest.to_string(), Some(digest))?;
    if let Some(store) = store {
        // Best effort: a store that cannot be written costs a download next time.
        let _ = store_bytes(store, &manifest.bytes, &digest);
    }
    Ok(manifest)
}

fn store_bytes(store: &BlobStore, bytes: &[u8], digest: &Digest) -> io::Result<PathBuf> {
    let mut tmp = store.blob_tempfile()?;
    tmp.write_all(bytes)?;
    store.commit_blob(tmp, digest)
}

/// A blob's bytes streamed from the registry. A connection that breaks is resumed
/// where it broke (`Range: bytes=N-`, or by skipping N bytes when the registry
/// ignores ranges), within the retry bounds of [`super::client`].
pub struct BlobStream {
    client: Arc<Client>,
    repository: String,
    digest: Digest,
    offset: u64,
    reader: Option<ureq::BodyReader<'static>>,
    resumes: u32,
    started: Instant,
}

impl BlobStream {
    /// Starts the download; returns the stream and the size the registry announced.
    pub fn open(client: Arc<Client>, repository: &str, digest: Digest) -> Result<(Self, Option<u64>), RegistryError> {
        let mut stream = BlobStream {
            client,
            repository: repository.to_string(),
            digest,
            offset: 0,
            reader: None,
            resumes: 0,
            started: Instant::now(),
        };
        let length = stream.request()?;
        Ok((stream, length))
    }

    fn what(&self) -> String {
        format!("blob {} of {}", self.digest, self.repository)
    }

    /// (Re)starts the GET at the current offset.
    fn request(&mut self) -> Result<Option<u64>, RegistryError> {
        let what = self.what();
        let mut request = Request::new(
            Method::Get,
            format!("/v2/{}/blobs/{}", self.repository, self.digest),
            &what,
            vec![pull_scope(&self.repository)],
        );
        if self.offset > 0 {
            request = request.header("range", format!("bytes={}-", self.offset));
        }
        let response = self.client.send(&request)?;
        let status = response.status().as_u16();
        if !(status == 200 || (status == 206 && self.offset > 0)) {
            return Err(self.client.unexpected(&what, response));
        }
        let length = header(&response, "content-length").and_then(|l| l.parse::<u64>().ok());
        let mut reader = response.into_body().into_reader();
        if status == 200 && self.offset > 0 {
            // The registry sent the whole blob again: skip what was already read.
            let skipped = io::copy(&mut (&mut reader).take(self.offset), &mut io::sink()).map_err(|e| {
                RegistryError::Transfer { registry: self.client.registry.clone(), message: format!("{what}: {e}") }
            })?;
            if skipped != self.offset {
                return Err(RegistryError::Transfer {
                    registry: self.client.registry.clone(),
                    message: format!("{what}: it ended early"),
                });
            }
        }
        self.reader = Some(reader);
        Ok(length)
    }
}

impl Read for BlobStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let result = match self.reader.as_mut() {
                Some(r) => r.read(buf),
                None => Err(io::Error::other("the download was not restarted")),
            };
            match result {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) => {
                    if self.resumes + 1 >= ATTEMPTS || !super::client::backoff(self.resumes, self.started, None) {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("registry {}: {}: {e}", self.client.registry, self.what()),
                        ));
                    }
                    self.resumes += 1;
                    self.reader = None;
                    // A failed restart counts as one more failed try.
                    let _ = self.request();
                }
            }
        }
    }
}

/// Passes a blob through while writing it to a temporary file of the store; at the
/// end, the file is named by its digest only when the bytes hashed to it. The reader
/// of the stream checks the digest too, and fails on a mismatch; the store simply
/// never holds the bytes.
struct StoringReader {
    inner: Box<dyn Read + Send>,
    out: Option<HashingWriter<BufWriter<tempfile::NamedTempFile>>>,
    expected: Digest,
    store: BlobStore,
}

impl Read for StoringReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some(out) = self.out.as_mut() {
                if out.write_all(&buf[..n]).is_err() {
                    self.out = None; // the store is best effort; the stream goes on
                }
            }
        } else if let Some(out) = self.out.take() {
            let (actual, _, file) = out.finish();
            if actual == self.expected {
                if let Ok(tmp) = file.into_inner() {
                    let _ = self.store.commit_blob(tmp, &actual);
                }
            }
        }
        Ok(n)
    }
}

/// Streams a blob into the store, checked against its digest (and size, when known).
/// Returns its path in the store; on a mismatch nothing is stored.
pub fn fetch_blob(
    client: &Arc<Client>,
    repository: &str,
    digest: Digest,
    size: Option<u64>,
    store: &BlobStore,
) -> Result<PathBuf, RegistryError> {
    let path = store.blob_path(&digest);
    if path.is_file() {
        return Ok(path);
    }
    let store_err = |source| RegistryError::Store { path: store.root().to_path_buf(), source };
    let (stream, announced) = BlobStream::open(client.clone(), repository, digest)?;
    let tmp = store.blob_tempfile().map_err(store_err)?;
    let mut writer = HashingWriter::new(BufWriter::new(tmp));
    // Cut off as soon as the stream passes the descriptor's size (or, without one,
    // the size the registry announced): a registry cannot fill the store.
    let limit = size.or(announced).unwrap_or(u64::MAX);
    let mut stream = pinfold_image::digest::SizeLimited::new(stream, limit, format!("blob {digest} of {repository}"));
    io::copy(&mut stream, &mut writer)
        .map_err(|e| RegistryError::Transfer { registry: client.registry.clone(), message: e.to_string() })?;
    let (actual, written, out) = writer.finish();
    let tmp = out.into_inner().map_err(|e| store_err(e.into_error()))?;
    let what = format!("blob {digest} of {repository}");
    if actual != digest {
        return Err(RegistryError::DigestMismatch {
            registry: client.registry.clone(),
            what,
            expected: digest,
            actual,
        });
    }
    if let Some(size) = size.filter(|s| *s != written) {
        return Err(RegistryError::Invalid {
            registry: client.registry.clone(),
            what,
            message: format!("{written} bytes, its descriptor says {size}"),
        });
    }
    store.commit_blob(tmp, &digest).map_err(store_err)
}

/// The blobs of one repository, for [`Archive::Remote`]: from the store when they are
/// there, else streamed from the registry (and kept in the store when they match).
#[derive(Debug)]
pub struct RegistryBlobs {
    location: PathBuf,
    client: Arc<Client>,
    repository: String,
    store: Option<PathBuf>,
    offline: bool,
}

impl RemoteBlobs for RegistryBlobs {
    fn location(&self) -> &Path {
        &self.location
    }

    fn open_blob(&self, digest: &Digest) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let store = self.store.as_deref().map(BlobStore::new);
        if let Some(store) = &store {
            let path = store.blob_path(digest);
            if let Ok(file) = std::fs::File::open(&path) {
                let size = file.metadata()?.len();
                return Ok((Box::new(file), size));
            }
        }
        if self.offline {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("blob {digest} is not in the store, and --offline forbids fetching it"),
            ));
        }
        let (stream, length) = BlobStream::open(self.client.clone(), &self.repository, *digest).map_err(|e| {
            let kind = if e.is_not_found() { io::ErrorKind::NotFound } else { io::ErrorKind::Other };
            io::Error::new(kind, e.to_string())
        })?;
        // Never more than the registry announced (the caller checks the descriptor's
        // size and digest as well).
        let what = format!("blob {digest} of {}", self.repository);
        let stream = pinfold_image::digest::SizeLimited::new(stream, length.unwrap_or(u64::MAX), what);
        let reader: Box<dyn Read + Send> = match store {
            Some(store) => match store.blob_tempfile() {
                Ok(tmp) => Box::new(StoringReader {
                    inner: Box::new(stream),
                    out: Some(HashingWriter::new(BufWriter::new(tmp))),
                    expected: *digest,
                    store,
                }),
                Err(_) => Box::new(stream),
            },
            None => Box::new(stream),
        };
        Ok((reader, length.unwrap_or(0)))
    }
}

fn platform_of(d: &oci_spec::image::Descriptor) -> Option<Platform> {
    d.platform().as_ref().map(|p| Platform {
        os: p.os().to_string(),
        architecture: p.architecture().to_string(),
        variant: p.variant().clone(),
    })
}

/// Attestations and other non-images in an index: buildx marks them with the
/// platform `unknown/unknown` and a reference-type annotation.
fn is_attestation(d: &oci_spec::image::Descriptor) -> bool {
    let unknown = d.platform().as_ref().is_some_and(|p| p.os().to_string() == "unknown");
    let annotated = d.annotations().as_ref().is_some_and(|a| a.contains_key("vnd.docker.reference.type"));
    unknown || annotated
}

/// Opens `reference` at `pin` (else at its tag), with manifests of `platforms` only
/// (all when `None`, or when one asked for is missing, so that the error can list
/// what the image has).
fn open_with(
    registries: &Registries,
    reference: &Reference,
    pin: Option<Digest>,
    store: Option<&BlobStore>,
    platforms: Option<&[Platform]>,
    offline: bool,
) -> Result<OpenedImage, ReadError> {
    let client = registries.client_for(reference)?;
    let repository = &reference.repository;
    let top = match pin {
        Some(digest) => manifest_by_digest(&client, repository, digest, store, offline)?,
        None if offline => {
            return Err(RegistryError::Unsupported(format!(
                "docker://{reference} names a tag, which only the registry can resolve, and --offline forbids asking it"
            ))
            .into())
        }
        None => get_manifest(&client, repository, &reference.manifest_ref(), None)?,
    };
    let pinned = reference.with_digest(top.digest);
    let blobs = RegistryBlobs {
        location: PathBuf::from(format!("docker://{pinned}")),
        client: client.clone(),
        repository: repository.clone(),
        store: store.map(|s| s.root().to_path_buf()),
        offline,
    };
    let archive = Arc::new(Archive::Remote(Arc::new(blobs)));
    let invalid = |what: &str, e: serde_json::Error| ReadError::Invalid {
        what: format!("{what} of docker://{pinned}"),
        message: e.to_string(),
    };
    let mut manifests = Vec::new();
    if media::is_index(&top.media_type) {
        let index: oci_spec::image::ImageIndex =
            serde_json::from_slice(&top.bytes).map_err(|e| invalid("the index", e))?;
        let images: Vec<&oci_spec::image::Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| media::is_manifest(d.media_type().as_ref()) && !is_attestation(d))
            .collect();
        let wanted = |d: &&oci_spec::image::Descriptor| match platforms {
            None => true,
            Some(list) => platform_of(d).is_some_and(|p| list.iter().any(|w| platforms_match(&p, w))),
        };
        let all_there = platforms.is_none_or(|list| {
            list.iter().all(|w| images.iter().any(|d| platform_of(d).is_some_and(|p| platforms_match(&p, w))))
        });
        for d in images.iter().filter(|d| !all_there || wanted(d)) {
            let digest: Digest = d.digest().to_string().parse().map_err(|e| ReadError::Invalid {
                what: format!("the index of docker://{pinned}"),
                message: format!("digest `{}`: {e}", d.digest()),
            })?;
            let m = manifest_by_digest(&client, repository, digest, store, offline)?;
            if m.bytes.len() as u64 != d.size() {
                return Err(ReadError::SizeMismatch {
                    what: format!("manifest {digest}"),
                    expected: d.size(),
                    actual: m.bytes.len() as u64,
                });
            }
            manifests.push(load_manifest(&archive, m.digest, m.bytes, platform_of(d))?);
        }
    } else if media::is_manifest(&top.media_type) {
        manifests.push(load_manifest(&archive, top.digest, top.bytes.clone(), None)?);
    } else {
        return Err(ReadError::Unsupported(format!(
            "docker://{pinned} is a `{}`, not an image index or manifest pinfold reads",
            top.media_type
        )));
    }
    for m in &manifests {
        client.remember(repository, &m.config_digest);
        for l in &m.layers {
            client.remember(repository, &l.digest);
        }
    }
    Ok(OpenedImage {
        archive,
        top: TopObject { digest: top.digest, media_type: top.media_type, bytes: top.bytes },
        manifests,
    })
}

/// Opens `docker://…` for `pinfold inspect`, `verify` and `diff`. What is read goes
/// through the default store, like every blob pinfold reads. A tag alone is resolved
/// and warned about: what it names today may not be what it names tomorrow.
pub fn open_image(registries: &Registries, text: &str, store: Option<&BlobStore>) -> Result<OpenedImage, ReadError> {
    let reference = Reference::parse(text).map_err(RegistryError::from)?;
    let image = open_with(registries, &reference, reference.digest, store, None, false)?;
    if reference.digest.is_none() {
        eprintln!(
            "warning: docker://{reference} names a tag, not a digest: it is {} now and may be another image later; pin it as docker://{}",
            image.top.digest,
            reference.with_digest(image.top.digest)
        );
    }
    Ok(image)
}

/// Opens a base image: at `pin` (the build file's digest, else the lock's), else at
/// its tag (the caller reports it as unpinned). Manifests of `platforms` only; the
/// store keeps everything that was read, so the next build needs no network.
pub fn open_base(
    registries: &Registries,
    reference: &Reference,
    pin: Option<Digest>,
    store: Option<&BlobStore>,
    platforms: &[Platform],
    offline: bool,
) -> Result<OpenedImage, ReadError> {
    let platforms = (!platforms.is_empty()).then_some(platforms);
    open_with(registries, reference, pin, store, platforms, offline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_from_field_header_or_shape() {
        assert_eq!(media_type_of(br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#, None), media::INDEX);
        assert_eq!(media_type_of(br#"{"schemaVersion":2}"#, Some(media::DOCKER_MANIFEST)), media::DOCKER_MANIFEST);
        assert_eq!(media_type_of(br#"{"manifests":[]}"#, Some("application/json")), media::INDEX);
        assert_eq!(media_type_of(br#"{"layers":[]}"#, None), media::MANIFEST);
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A registry on 127.0.0.1 whose blob endpoint streams `total` bytes (chunked,
    /// so no length is announced) whatever the descriptor says. Returns its address
    /// and the count of bytes it managed to send.
    fn flooding_registry(total: u64) -> (String, Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut line = String::new();
                    // A TLS hello is not a request line: close, and the client falls
                    // back to plain HTTP on loopback.
                    if reader.read_line(&mut line).is_err() || !line.starts_with("GET") && !line.starts_with("HEAD") {
                        return;
                    }
                    let mut header = String::new();
                    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                        header.clear();
                    }
                    if !line.contains("/blobs/") {
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
                        return;
                    }
                    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                    let chunk = vec![b'x'; 64 * 1024];
                    let mut left = total;
                    while left > 0 {
                        let n = left.min(chunk.len() as u64) as usize;
                        if conn.write_all(format!("{n:x}\r\n").as_bytes()).is_err()
                            || conn.write_all(&chunk[..n]).is_err()
                            || conn.write_all(b"\r\n").is_err()
                        {
                            return;
                        }
                        counter.fetch_add(n as u64, Ordering::SeqCst);
                        left -= n as u64;
                    }
                    let _ = conn.write_all(b"0\r\n\r\n");
                });
            }
        });
        (addr, sent)
    }

    #[test]
    fn a_registry_that_streams_more_than_the_descriptor_says_is_cut_off() {
        let total = 256u64 << 20;
        let (addr, sent) = flooding_registry(total);
        let digest = Digest::of(b"the real blob");
        let reference = Reference::parse(&format!("{addr}/hostile/repo@{digest}")).unwrap();
        let registries = crate::Registries::new(crate::Options::default());
        let client = registries.client_for(&reference).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::new(tmp.path());
        std::fs::create_dir_all(tmp.path().join("tmp")).unwrap();
        let start = std::time::Instant::now();
        let err = fetch_blob(&client, "hostile/repo", digest, Some(13), &store).unwrap_err().to_string();
        assert!(err.contains("longer than its descriptor's size of 13 bytes"), "{err}");
        assert!(err.contains(&digest.to_string()), "{err}");
        assert!(!store.blob_path(&digest).exists());
        let stored: u64 = walkdir_size(tmp.path());
        assert!(stored < 1 << 20, "{stored} bytes reached the store");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let sent = sent.load(Ordering::SeqCst);
        assert!(sent < total / 4, "the registry sent {sent} of {total} bytes before it was cut off");
        eprintln!("cut off after {sent} bytes sent, {stored} stored, in {:?}", start.elapsed());
    }

    fn walkdir_size(dir: &Path) -> u64 {
        let mut total = 0;
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    todo.push(e.path());
                } else {
                    total += m.len();
                }
            }
        }
        total
    }
}
