//! Secrets generated once into the data dir when config gives none: the join-token signing
//! secret (`token.key`) and the field-encryption key (`field.key`).

use std::io::Write;
use std::path::Path;

use rand::RngCore;

pub const TOKEN_KEY_FILE: &str = "token.key";
pub const FIELD_KEY_FILE: &str = "field.key";

/// Reads `<data_dir>/token.key`, creating it (mode 0600) on first use.
pub fn load_or_create(data_dir: &Path) -> std::io::Result<Vec<u8>> {
    load_or_create_named(data_dir, TOKEN_KEY_FILE)
}

/// Reads `<data_dir>/<name>` (64 hex digits), creating it (mode 0600) on first use.
pub fn load_or_create_named(data_dir: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let path = data_dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().as_bytes().to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = match options.open(&path) {
                Ok(f) => f,
                // Another process (a server and `jiefen token`) created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Ok(std::fs::read_to_string(&path)?.trim().as_bytes().to_vec());
                }
                Err(e) => return Err(e),
            };
            f.write_all(hex.as_bytes())?;
            Ok(hex.into_bytes())
        }
        Err(e) => Err(e),
    }
}
