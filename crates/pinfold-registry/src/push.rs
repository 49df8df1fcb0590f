//! Writing an image to a registry, in the one order that never shows a partial image:
//! every blob first, then each platform's manifest by digest, then the index by
//! digest, and the tag last. A push that is killed at any point leaves the tag where
//! it was; the next push finds the blobs that made it (HEAD) and sends the rest.
//!
//! A blob is skipped when the repository has it, mounted when this process saw it in
//! another repository of the same registry (a base, the shared cache), else uploaded:
//! in one PUT when small, in chunks (PATCH) when large, each chunk resumed where the
//! registry says it stands when a connection breaks. Manifests are sent as the exact
//! bytes that were hashed, never re-serialized, and the registry's
//! `Docker-Content-Digest` must agree.

use super::client::{backoff, encode, header, pull_scope, push_scope, Client, Method, Request, ATTEMPTS};
use super::reference::Reference;
use super::{Registries, RegistryError};
use pinfold_image::digest::{Digest, VerifyingReader};
use pinfold_image::oci::assemble::{AssembledImage, Blob, BlobSource};
use pinfold_image::oci::media;
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Blobs up to this size are uploaded in one request; larger ones in chunks of
/// [`CHUNK_SIZE`]. Either way at most one chunk per upload is held in memory.
pub const MONOLITHIC_MAX: u64 = 8 << 20;
pub const CHUNK_SIZE: usize = 8 << 20;
/// Blobs uploaded at once.
const PARALLEL_UPLOADS: usize = 4;
/// Upload sessions tried per blob: each request in a session is retried on its own
/// (see [`super::client`]), so this bounds the product, not just the sessions.
const UPLOAD_ROUNDS: u32 = 3;

/// What a push did.
#[derive(Debug, Clone, Default)]
pub struct PushReport {
    /// The reference written, with the image's digest.
    pub reference: String,
    pub uploaded: usize,
    pub mounted: usize,
    pub present: usize,
    pub bytes_uploaded: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Present,
    Mounted,
    Uploaded(u64),
}

/// A blob to put in a repository: its digest, size, and how to read it.
pub struct BlobToPush<'a> {
    pub digest: Digest,
    pub size: u64,
    pub open: Box<dyn Fn() -> io::Result<Box<dyn Read + Send + 'a>> + Send + Sync + 'a>,
    /// Where the bytes come from, for messages.
    pub source: String,
}

impl<'a> BlobToPush<'a> {
    /// A blob of an assembled image.
    pub fn of(blob: &'a Blob) -> Self {
        let source = match &blob.source {
            BlobSource::Bytes(_) => "this build".to_string(),
            BlobSource::File(p) => p.display().to_string(),
            BlobSource::Base { archive, .. } => archive.path().display().to_string(),
        };
        BlobToPush {
            digest: blob.digest,
            size: blob.size,
            source,
            open: Box::new(move || -> io::Result<Box<dyn Read + Send + 'a>> {
                Ok(match &blob.source {
                    BlobSource::Bytes(b) => Box::new(io::Cursor::new(b.to_vec())),
                    BlobSource::File(p) => Box::new(std::fs::File::open(p)?),
                    BlobSource::Base { archive, layer } => archive.open(&layer.member).map_err(io::Error::other)?.0,
                })
            }),
        }
    }
}

fn resolve_location(client: &Client, response: &super::client::Response, what: &str) -> Result<String, RegistryError> {
    let location = header(response, "location").ok_or_else(|| RegistryError::Invalid {
        registry: client.registry.clone(),
        what: what.to_string(),
        message: "the answer has no Location for the upload".into(),
    })?;
    Ok(client.url(location))
}

fn with_query(location: &str, query: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}{query}")
}

/// Why an upload must start over (the registry lost or refused its session).
fn session_lost(e: &RegistryError) -> bool {
    match e {
        RegistryError::Status { status, .. } => {
            ["400", "404", "416"].iter().any(|s| status.starts_with(s))
                || status.starts_with('5')
                || status.starts_with("429")
        }
        RegistryError::Transfer { .. } => true,
        _ => false,
    }
}

/// Makes sure `repository` holds the blob: HEAD, else mount, else upload.
pub fn ensure_blob(client: &Client, repository: &str, blob: &BlobToPush) -> Result<Outcome, RegistryError> {
    let what = format!("blob {} of {repository}", blob.digest);
    let head = Request::new(
        Method::Head,
        format!("/v2/{repository}/blobs/{}", blob.digest),
        &what,
        vec![push_scope(repository)],
    );
    let response = client.send(&head)?;
    match response.status().as_u16() {
        200 => {
            client.remember(repository, &blob.digest);
            return Ok(Outcome::Present);
        }
        404 => {}
        _ => return Err(client.unexpected(&what, response)),
    }
    let started = Instant::now();
    let mut round = 0;
    loop {
        let result = upload_round(client, repository, blob, round == 0);
        match result {
            Ok(outcome) => {
                client.remember(repository, &blob.digest);
                return Ok(outcome);
            }
            Err(e) if session_lost(&e) && round + 1 < UPLOAD_ROUNDS && backoff(round, started, None) => round += 1,
            Err(e) => return Err(e),
        }
    }
}

/// One try at putting the blob: a mount (on the first round, when the blob is known
/// elsewhere), else an upload session from start to end.
fn upload_round(
    client: &Client,
    repository: &str,
    blob: &BlobToPush,
    may_mount: bool,
) -> Result<Outcome, RegistryError> {
    let what = format!("an upload of blob {} to {repository}", blob.digest);
    let from = if may_mount { client.known_elsewhere(repository, &blob.digest) } else { None };
    let response = match &from {
        Some(from) => {
            let url = format!(
                "/v2/{repository}/blobs/uploads/?mount={}&from={}",
                encode(&blob.digest.to_string()),
                encode(from)
            );
            let response = client.send(
                &Request::new(Method::Post, url, &what, vec![push_scope(repository), pull_scope(from)]).body(&[]),
            )?;
            if response.status().as_u16() == 201 {
                return Ok(Outcome::Mounted);
            }
            response
        }
        None => client.send(
            &Request::new(
                Method::Post,
                format!("/v2/{repository}/blobs/uploads/"),
                &what,
                vec![push_scope(repository)],
            )
            .body(&[]),
        )?,
    };
    if response.status().as_u16() != 202 {
        return Err(client.unexpected(&what, response));
    }
    let mut location = resolve_location(client, &response, &what)?;
    let min_chunk = header(&response, "oci-chunk-min-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    let mut reader = VerifyingReader::new((blob.open)().map_err(|e| RegistryError::Transfer {
        registry: client.registry.clone(),
        message: format!("cannot read {}: {e}", blob.source),
    })?);
    let read_err = |e: io::Error| RegistryError::Transfer {
        registry: client.registry.clone(),
        message: format!("reading blob {} from {}: {e}", blob.digest, blob.source),
    };
    let scopes = vec![push_scope(repository)];
    let finish_url;
    let mut body_of_put = Vec::new();
    if blob.size <= MONOLITHIC_MAX {
        reader.read_to_end(&mut body_of_put).map_err(read_err)?;
        finish_url = location.clone();
    } else {
        let chunk_size = CHUNK_SIZE.max(min_chunk);
        let mut buf = vec![0u8; chunk_size];
        let mut offset = 0u64;
        loop {
            let n = read_full(&mut reader, &mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            location = send_chunk(client, repository, &location, offset, &buf[..n])?;
            offset += n as u64;
        }
        finish_url = location.clone();
    }
    let (actual, size) = reader.finish().map_err(read_err)?;
    if actual != blob.digest || size != blob.size {
        // Nothing that does not hash to its name is committed; the session is dropped.
        let _ = client.send(&Request::new(Method::Delete, finish_url.clone(), &what, scopes.clone()).no_retry());
        return Err(RegistryError::Unsupported(format!(
            "blob {} read from {} does not match its digest: it is {actual} ({size} bytes); nothing was pushed for it",
            blob.digest, blob.source
        )));
    }
    let url = with_query(&finish_url, &format!("digest={}", encode(&blob.digest.to_string())));
    let put = Request::new(Method::Put, url, &what, scopes)
        .header("content-type", "application/octet-stream")
        .body(&body_of_put)
        .no_retry();
    let response = client.send(&put)?;
    if response.status().as_u16() != 201 {
        return Err(client.unexpected(&what, response));
    }
    Ok(Outcome::Uploaded(blob.size))
}

/// Reads until `buf` is full or the input ends.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// How many bytes an upload session holds, from its `Range: 0-N` header (distribution
/// writes `0-0` for both 0 and 1 byte; taken as 0, which at worst resends a byte).
fn received(response: &super::client::Response) -> Option<u64> {
    let range = header(response, "range")?;
    let end: u64 = range.trim().trim_start_matches("bytes=").split_once('-')?.1.parse().ok()?;
    Some(if end == 0 { 0 } else { end + 1 })
}

/// Sends one chunk at `offset`. When the connection breaks or the registry fails,
/// asks the session where it stands and sends only what it lacks. Returns the
/// session's next location.
fn send_chunk(
    client: &Client,
    repository: &str,
    location: &str,
    offset: u64,
    chunk: &[u8],
) -> Result<String, RegistryError> {
    let what = format!("a chunk at byte {offset} of an upload to {repository}");
    let scopes = vec![push_scope(repository)];
    let mut location = location.to_string();
    let mut from = 0usize;
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let part = &chunk[from..];
        let start = offset + from as u64;
        let patch = Request::new(Method::Patch, location.clone(), &what, scopes.clone())
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{start}-{}", start + part.len() as u64 - 1))
            .body(part)
            .no_retry();
        let failure = match client.send(&patch) {
            Ok(response) if response.status().as_u16() == 202 => return resolve_location(client, &response, &what),
            Ok(response) => client.unexpected(&what, response),
            Err(e) => e,
        };
        let transient = matches!(&failure, RegistryError::Transfer { .. })
            || matches!(&failure, RegistryError::Status { status, .. } if status.starts_with('5') || status.starts_with("429"));
        if !transient || attempt + 1 >= ATTEMPTS || !backoff(attempt, started, None) {
            return Err(failure);
        }
        attempt += 1;
        // Where does the session stand? A registry that lost it answers 404, and the
        // caller starts the upload over.
        let status =
            client.send(&Request::new(Method::Get, location.clone(), "the state of an upload", scopes.clone()))?;
        if status.status().as_u16() != 204 {
            return Err(client.unexpected("the state of an upload", status));
        }
        let has = received(&status).unwrap_or(0);
        location = resolve_location(client, &status, &what).unwrap_or(location);
        if has < offset {
            return Err(RegistryError::Status {
                registry: client.registry.clone(),
                what: what.clone(),
                status: "416 Range Not Satisfiable".into(),
                detail: format!(": the upload holds {has} bytes, less than the {offset} already sent"),
            });
        }
        if has >= offset + chunk.len() as u64 {
            return Ok(location);
        }
        from = (has - offset) as usize;
    }
}

/// PUTs a manifest as `reference` (a digest or a tag), as the exact bytes given.
pub fn put_manifest(
    client: &Client,
    repository: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> Result<(), RegistryError> {
    let what = format!("manifest {reference} of {repository}");
    let request = Request::new(
        Method::Put,
        format!("/v2/{repository}/manifests/{reference}"),
        &what,
        vec![push_scope(repository)],
    )
    .header("content-type", media_type)
    .body(bytes);
    let response = client.send(&request)?;
    if response.status().as_u16() != 201 {
        return Err(client.unexpected(&what, response));
    }
    let ours = Digest::of(bytes);
    if let Some(theirs) = header(&response, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok()) {
        if theirs != ours {
            return Err(RegistryError::DigestMismatch {
                registry: client.registry.clone(),
                what,
                expected: ours,
                actual: theirs,
            });
        }
    }
    Ok(())
}

/// Puts every blob in `repository`, several at once; the first error stops the rest.
pub fn ensure_blobs(client: &Client, repository: &str, blobs: &[BlobToPush]) -> Result<Vec<Outcome>, RegistryError> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Outcome, RegistryError>>>> =
        Mutex::new((0..blobs.len()).map(|_| None).collect());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_UPLOADS.min(blobs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= blobs.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let result = ensure_blob(client, repository, &blobs[i]);
                if result.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
            });
        }
    });
    let mut outcomes = Vec::new();
    for r in results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().flatten() {
        outcomes.push(r?);
    }
    Ok(outcomes)
}

/// Pushes an assembled image to `target`: blobs, manifests by digest, then the tag
/// (`latest` when the reference names neither tag nor digest).
pub fn push(registries: &Registries, image: &AssembledImage, target: &Reference) -> Result<PushReport, RegistryError> {
    if let Some(d) = target.digest.filter(|d| *d != image.top.digest) {
        return Err(RegistryError::Unsupported(format!(
            "docker://{target} names digest {d}, and the image built is {}; drop the digest or fix it",
            image.top.digest
        )));
    }
    let client = registries.client_for(target)?;
    let repository = &target.repository;
    let is_manifest = |b: &Blob| media::is_index(&b.media_type) || media::is_manifest(&b.media_type);
    let blobs: Vec<BlobToPush> = image.blobs.values().filter(|b| !is_manifest(b)).map(BlobToPush::of).collect();
    let outcomes = ensure_blobs(&client, repository, &blobs)?;

    let manifest_bytes = |digest: &Digest| -> Result<(String, Arc<Vec<u8>>), RegistryError> {
        match image.blobs.get(digest).map(|b| (&b.media_type, &b.source)) {
            Some((media_type, BlobSource::Bytes(bytes))) => Ok((media_type.clone(), bytes.clone())),
            _ => Err(RegistryError::Unsupported(format!("manifest {digest} of the image has no bytes to push"))),
        }
    };
    for m in image.manifests.iter().filter(|m| m.digest != image.top.digest) {
        let (media_type, bytes) = manifest_bytes(&m.digest)?;
        put_manifest(&client, repository, &m.digest.to_string(), &media_type, &bytes)?;
    }
    let (media_type, top) = manifest_bytes(&image.top.digest)?;
    put_manifest(&client, repository, &image.top.digest.to_string(), &media_type, &top)?;
    // The tag last: until here it still named whatever it named before.
    let tag = match (&target.tag, &target.digest) {
        (Some(t), _) => Some(t.clone()),
        (None, None) => Some("latest".to_string()),
        (None, Some(_)) => None,
    };
    if let Some(tag) = &tag {
        put_manifest(&client, repository, tag, &media_type, &top)?;
    }
    let mut report = PushReport {
        reference: Reference { tag, digest: Some(image.top.digest), ..target.clone() }.to_string(),
        ..PushReport::default()
    };
    for o in outcomes {
        match o {
            Outcome::Present => report.present += 1,
            Outcome::Mounted => report.mounted += 1,
            Outcome::Uploaded(n) => {
                report.uploaded += 1;
                report.bytes_uploaded += n;
            }
        }
    }
    eprintln!(
        "pinfold: pushed docker://{}: {} blob(s) uploaded ({} bytes), {} mounted, {} already there",
        report.reference, report.uploaded, report.bytes_uploaded, report.mounted, report.present
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_take_the_digest_query() {
        assert_eq!(with_query("http://h/v2/r/blobs/uploads/u", "digest=x"), "http://h/v2/r/blobs/uploads/u?digest=x");
        assert_eq!(with_query("http://h/u?_state=s", "digest=x"), "http://h/u?_state=s&digest=x");
    }

    #[test]
    fn known_blobs_mount_only_from_another_repository() {
        let d = Digest::of(b"known");
        let registries = Registries::default();
        let client = |host: &str| registries.client_for(&Reference::parse(&format!("{host}/x")).unwrap()).unwrap();
        client("reg.example").remember("a/base", &d);
        assert_eq!(client("reg.example").known_elsewhere("b/app", &d).as_deref(), Some("a/base"));
        assert_eq!(client("reg.example").known_elsewhere("a/base", &d), None);
        assert_eq!(client("other.example").known_elsewhere("b/app", &d), None);
    }
}
