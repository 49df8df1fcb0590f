//! OpenPGP keyrings that decide which InRelease files are trusted.
//!
//! Why: a Release file is the root of every digest in the lock; it is trusted only when
//! a key of a keyring the caller chose signed it. The default is the host's Debian
//! archive keyring; the caller may pin the keyring file by sha256 so that the trust root
//! itself is part of the build's inputs. Binary and ASCII-armored keyrings are read
//! (rpgp, pure Rust). A key's subkeys count only when their binding signature verifies.

use crate::digest::sha256_hex;
use crate::error::{io_at, Error, Result};
use pgp::composed::{CleartextSignedMessage, PublicOrSecret, SignedPublicKey};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The host's Debian archive keyring (package debian-archive-keyring).
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Bound on a keyring file (Debian's is about 60 KiB).
const MAX_KEYRING: u64 = 16 << 20;
/// Bound on the keys (and unreadable packets) of one keyring.
const MAX_KEYS: usize = 10_000;

pub struct Keyring {
    path: PathBuf,
    sha256: String,
    keys: Vec<SignedPublicKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({}, {} keys, sha256 {})", self.path.display(), self.keys.len(), self.sha256)
    }
}

impl Keyring {
    /// Reads the keyring at `path`; with `pinned_sha256`, its bytes must hash to it.
    pub fn load(path: &Path, pinned_sha256: Option<&str>) -> Result<Keyring> {
        let file = std::fs::File::open(path).map_err(io_at(path))?;
        let mut bytes = Vec::new();
        file.take(MAX_KEYRING + 1).read_to_end(&mut bytes).map_err(io_at(path))?;
        if bytes.len() as u64 > MAX_KEYRING {
            return Err(Error::TooLarge { what: path.display().to_string(), limit: MAX_KEYRING });
        }
        let keyring = Keyring::from_bytes(&bytes, path)?;
        if let Some(expected) = pinned_sha256.filter(|e| !e.eq_ignore_ascii_case(&keyring.sha256)) {
            return Err(Error::DigestMismatch {
                what: format!("keyring {}", path.display()),
                expected: expected.to_ascii_lowercase(),
                actual: keyring.sha256,
            });
        }
        Ok(keyring)
    }

    /// Parses keyring bytes (binary or armored); `path` only names it in messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Keyring> {
        let err = |message: String| Error::Keyring { path: path.to_path_buf(), message };
        let (parsed, _) = PublicOrSecret::from_reader_many(bytes).map_err(|e| err(e.to_string()))?;
        // A key rpgp cannot read (an old v3 key, an unknown algorithm) is left out: it
        // can sign nothing then, which fails closed. Bounded: a keyring has few keys.
        let keys: Vec<SignedPublicKey> = parsed
            .take(MAX_KEYS)
            .flatten()
            .map(|key| match key {
                PublicOrSecret::Public(k) => k,
                PublicOrSecret::Secret(k) => k.to_public_key(),
            })
            .collect();
        if keys.is_empty() {
            return Err(err("no OpenPGP public key could be read".into()));
        }
        Ok(Keyring { path: path.to_path_buf(), sha256: sha256_hex(bytes), keys })
    }

    /// The sha256 of the keyring file's bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the cleartext signature of `armored` (an InRelease file) and returns the
    /// signed text with `\n` line ends. `what` names the file in errors.
    pub fn verify_cleartext(&self, armored: &[u8], what: &str) -> Result<String> {
        let bad = |message: String| Error::Signature { what: what.to_string(), message };
        let (message, _) = CleartextSignedMessage::from_armor(armored).map_err(|e| bad(e.to_string()))?;
        if !self.keys.iter().any(|key| self.signed_by(&message, key)) {
            let ids: Vec<String> =
                message.signatures().iter().flat_map(|s| s.issuer_key_id()).map(|k| format!("{k:?}")).collect();
            return Err(bad(format!(
                "no good signature by a key of {} (signed by {})",
                self.path.display(),
                if ids.is_empty() { "nobody".to_string() } else { ids.join(", ") }
            )));
        }
        Ok(message.signed_text().replace("\r\n", "\n"))
    }

    /// Whether `key` (its primary key or a properly bound subkey) made a signature of
    /// `message`.
    fn signed_by(&self, message: &CleartextSignedMessage, key: &SignedPublicKey) -> bool {
        if message.verify(&key.primary_key).is_ok() {
            return true;
        }
        key.public_subkeys
            .iter()
            .filter(|sub| sub.verify_bindings(&key.primary_key).is_ok())
            .any(|sub| message.verify(sub).is_ok())
    }
}

#[cfg(test)]
mod tests {
    //! Offline: a key made here signs a Release text; its keyring (binary or armored)
    //! accepts it, another key's refuses it, one changed byte is refused.
    use super::*;
    use pgp::composed::{KeyType, SecretKeyParamsBuilder, SignedSecretKey, SubkeyParamsBuilder};
    use pgp::ser::Serialize;
    use pgp::types::Password;

    fn key(seed: u64) -> SignedSecretKey {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let sub = SubkeyParamsBuilder::default().key_type(KeyType::Ed25519).can_sign(true).build().unwrap();
        let params = SecretKeyParamsBuilder::default()
            .key_type(KeyType::Ed25519)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id("Test Archive <archive@invalid>".into())
            .subkey(sub)
            .build()
            .unwrap();
        params.generate(&mut rng).unwrap()
    }

    fn signed(key: &SignedSecretKey, text: &str, by_subkey: bool) -> Vec<u8> {
        use rand::SeedableRng;
        let rng = rand::rngs::StdRng::seed_from_u64(7);
        let msg = match by_subkey {
            true => CleartextSignedMessage::sign(rng, text, &key.secret_subkeys[0].key, &Password::empty()),
            false => CleartextSignedMessage::sign(rng, text, &key.primary_key, &Password::empty()),
        };
        msg.unwrap().to_armored_bytes(Default::default()).unwrap()
    }

    const TEXT: &str = "Suite: stable\nCodename: bookworm\nDate: Sat, 10 May 2025 08:00:00 UTC\nSHA256:\n";

    #[test]
    fn signatures_by_the_keyring_only() {
        let k = key(1);
        let public = k.to_public_key();
        let binary = Keyring::from_bytes(&public.to_bytes().unwrap(), Path::new("k.gpg")).unwrap();
        let armored_text = public.to_armored_bytes(Default::default()).unwrap();
        let armored = Keyring::from_bytes(&armored_text, Path::new("k.asc")).unwrap();
        for by_subkey in [false, true] {
            let file = signed(&k, TEXT, by_subkey);
            assert_eq!(binary.verify_cleartext(&file, "InRelease").unwrap(), TEXT);
            assert_eq!(armored.verify_cleartext(&file, "InRelease").unwrap(), TEXT);
            let r = crate::release::verify_release(&file, &binary, "bookworm", "InRelease").unwrap();
            assert_eq!(r.sha256, crate::digest::sha256_hex(&file));
            let mut tampered = file.clone();
            let at = tampered.windows(8).position(|w| w == b"bookworm").unwrap();
            tampered[at] = b'c';
            assert!(binary.verify_cleartext(&tampered, "InRelease").is_err());
        }
        let other = Keyring::from_bytes(&key(2).to_public_key().to_bytes().unwrap(), Path::new("o.gpg")).unwrap();
        let err = other.verify_cleartext(&signed(&k, TEXT, false), "InRelease").unwrap_err();
        assert!(err.to_string().contains("no good signature by a key of o.gpg"), "{err}");
    }

    #[test]
    fn a_pinned_keyring_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.gpg");
        let bytes = key(3).to_public_key().to_bytes().unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let sha = sha256_hex(&bytes);
        assert_eq!(Keyring::load(&path, Some(&sha)).unwrap().sha256(), sha);
        let err = Keyring::load(&path, Some(&"1".repeat(64))).unwrap_err().to_string();
        assert!(err.contains(&sha) && err.contains(&"1".repeat(64)), "{err}");
        assert!(Keyring::from_bytes(b"garbage", Path::new("g")).is_err());
    }
}
