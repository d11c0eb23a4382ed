//! The node's secret key, and what it does: seals secrets kept in the database (the mail
//! server's password) so a copy of the database does not give them away, and signs links
//! that act without a login (unsubscribe). It comes from the configuration (`secret_key`, the
//! same on every node of one database), else from `secret.key` in the data folder, made on
//! the first start.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

const KEY_FILE: &str = "secret.key";

pub struct Secrets {
    seal: LessSafeKey,
    sign: hmac::Key,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(***)")
    }
}

impl Secrets {
    /// The key given (base64 of 32 bytes), else the data folder's, made when missing.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        let key = match configured {
            Some(text) => STANDARD.decode(text.trim()).map_err(|_| anyhow::anyhow!("secret_key is not base64"))?,
            None => key_file(&data_dir.join(KEY_FILE))?,
        };
        Self::from_key(&key)
    }

    fn from_key(key: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(key.len() == 32, "secret_key must be 32 bytes (base64 of 32 random bytes)");
        // One key, two uses: each gets its own key derived from it, so neither weakens the other.
        let derive = |purpose: &[u8]| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), purpose);
        let seal = UnboundKey::new(&aead::CHACHA20_POLY1305, derive(b"seal").as_ref())
            .map_err(|_| anyhow::anyhow!("secret_key is unusable"))?;
        Ok(Secrets { seal: LessSafeKey::new(seal), sign: hmac::Key::new(hmac::HMAC_SHA256, derive(b"sign").as_ref()) })
    }

    /// A secret as text that only this key opens.
    pub fn seal(&self, plain: &str) -> String {
        let mut nonce = [0u8; aead::NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("the system's random source");
        let mut sealed = plain.as_bytes().to_vec();
        self.seal
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut sealed)
            .expect("sealing a short secret");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    /// A sealed secret opened; `None` when it was sealed with another key or is damaged.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = STANDARD.decode(sealed).ok()?;
        if bytes.len() < aead::NONCE_LEN {
            return None;
        }
        let (nonce, rest) = bytes.split_at(aead::NONCE_LEN);
        let mut rest = rest.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self.seal.open_in_place(nonce, Aad::empty(), &mut rest).ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    /// A signature of `message` fit for a URL.
    pub fn sign(&self, message: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.sign, message.as_bytes()))
    }

    /// Whether `signature` is this key's signature of `message`, compared in constant time.
    pub fn verify(&self, message: &str, signature: &str) -> bool {
        URL_SAFE_NO_PAD.decode(signature).is_ok_and(|tag| hmac::verify(&self.sign, message.as_bytes(), &tag).is_ok())
    }
}

/// The key in `path`, or a new one written there, readable by its owner only.
fn key_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return STANDARD.decode(text.trim()).map_err(|_| anyhow::anyhow!("{} is not base64", path.display()));
    }
    let mut key = [0u8; 32];
    SystemRandom::new().fill(&mut key).map_err(|_| anyhow::anyhow!("no random source"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write;
    let written = options.open(path).and_then(|mut file| file.write_all(STANDARD.encode(key).as_bytes()));
    match written {
        Ok(()) => Ok(key.to_vec()),
        // Another process of this data folder made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => key_file(path),
        Err(e) => Err(anyhow::anyhow!("cannot write {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let secrets = Secrets::from_key(&[7; 32]).expect("a key");
        let sealed = secrets.seal("smtp 密码");
        assert!(!sealed.contains("smtp"));
        assert_ne!(sealed, secrets.seal("smtp 密码"), "a fresh nonce each time");
        assert_eq!(secrets.open(&sealed).as_deref(), Some("smtp 密码"));
        let other = Secrets::from_key(&[8; 32]).expect("a key");
        assert_eq!(other.open(&sealed), None);
        assert_eq!(secrets.open("not sealed"), None);
    }

    #[test]
    fn signatures_check_their_message() {
        let secrets = Secrets::from_key(&[7; 32]).expect("a key");
        let signature = secrets.sign("contact:1");
        assert!(secrets.verify("contact:1", &signature));
        assert!(!secrets.verify("contact:2", &signature));
        assert!(!Secrets::from_key(&[8; 32]).expect("a key").verify("contact:1", &signature));
    }
}
