//! RECORD files: reading a wheel's, writing the installed one.
//!
//! Why: a wheel's RECORD is the only integrity claim about its members, so every member
//! is checked against it; the installed RECORD is regenerated because paths change
//! (scripts move to `bin/`, INSTALLER is added) and tools such as `pip uninstall` and
//! image scanners read it. CSV quoting is the csv crate's, as the format is CSV.

use std::collections::BTreeMap;

use base64::Engine;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// One line of a wheel's RECORD: `algorithm=digest` (urlsafe base64) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub hash: Option<(String, String)>,
    pub size: Option<u64>,
}

/// Parses a RECORD into `path → Recorded`.
pub(crate) fn parse(bytes: &[u8]) -> Result<BTreeMap<String, Recorded>, String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut out = BTreeMap::new();
    for row in reader.records() {
        let row = row.map_err(|e| format!("RECORD: {e}"))?;
        let path = row.get(0).unwrap_or("").to_string();
        if path.is_empty() {
            continue;
        }
        let hash = row
            .get(1)
            .filter(|h| !h.is_empty())
            .map(|h| {
                h.split_once('=').map(|(a, d)| (a.to_string(), d.to_string())).ok_or(format!("RECORD: bad hash {h:?}"))
            })
            .transpose()?;
        let size = row.get(2).filter(|s| !s.is_empty()).and_then(|s| s.parse().ok());
        out.insert(path, Recorded { hash, size });
    }
    Ok(out)
}

/// The urlsafe-base64 (no padding) digest of `bytes` with `algorithm`, if supported.
pub(crate) fn digest(algorithm: &str, bytes: &[u8]) -> Option<String> {
    let raw = match algorithm {
        "sha256" => Sha256::digest(bytes).to_vec(),
        "sha384" => Sha384::digest(bytes).to_vec(),
        "sha512" => Sha512::digest(bytes).to_vec(),
        _ => return None,
    };
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// The RECORD text of installed files (`relative path → bytes`), sorted by path, with
/// RECORD's own line empty.
pub(crate) fn write<'a>(files: impl Iterator<Item = (String, &'a [u8])>, record_path: &str) -> Vec<u8> {
    let mut rows: Vec<[String; 3]> = files
        .map(|(p, bytes)| {
            let hash = format!("sha256={}", digest("sha256", bytes).expect("sha256 is supported"));
            [p, hash, bytes.len().to_string()]
        })
        .collect();
    rows.push([record_path.to_string(), String::new(), String::new()]);
    rows.sort();
    let mut writer =
        csv::WriterBuilder::new().has_headers(false).terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    for row in rows {
        writer.write_record(&row).expect("writing to memory");
    }
    writer.into_inner().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_is_sorted_hashed_and_self_empty() {
        let files = vec![("b/x.py".to_string(), &b"hello"[..]), ("a,1.py".to_string(), &b""[..])];
        let text = String::from_utf8(write(files.into_iter(), "a-1.dist-info/RECORD")).unwrap();
        assert_eq!(
            text,
            "\"a,1.py\",sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\
             a-1.dist-info/RECORD,,\n\
             b/x.py,sha256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ,5\n"
        );
        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(back["b/x.py"].size, Some(5));
        assert_eq!(back["a-1.dist-info/RECORD"].hash, None);
        assert_eq!(back["a,1.py"].hash.as_ref().unwrap().0, "sha256");
    }
}
