//! Where finished recordings live: the local data directory (default), or S3-compatible object
//! storage. Recording always writes to the local disk first (a crash keeps what was written);
//! with S3 configured, a job uploads the files, re-reads each one to check its digests, and only
//! then removes the local copy.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use sm3::Digest as _;
use tokio::io::AsyncReadExt;

#[derive(Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// For endpoints on plain HTTP (a test server, an internal MinIO).
    #[serde(default)]
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Config {
    // The secret key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config").field("endpoint", &self.endpoint).field("bucket", &self.bucket).field("region", &self.region).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object storage: {0}")]
    Object(#[from] object_store::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the uploaded copy of {0} does not match the original")]
    Mismatch(String),
}

#[derive(Clone)]
pub enum Storage {
    Local,
    S3 { store: Arc<dyn ObjectStore>, bucket: String },
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Local => f.write_str("Storage::Local"),
            Storage::S3 { bucket, .. } => write!(f, "Storage::S3({bucket})"),
        }
    }
}

impl Storage {
    pub fn s3(c: &S3Config) -> Result<Storage, StorageError> {
        let mut b = object_store::aws::AmazonS3Builder::new().with_bucket_name(&c.bucket).with_allow_http(c.allow_http);
        if let Some(e) = &c.endpoint {
            b = b.with_endpoint(e);
        }
        b = b.with_region(c.region.clone().unwrap_or_else(|| "us-east-1".into()));
        if let (Some(k), Some(s)) = (&c.access_key_id, &c.secret_access_key) {
            b = b.with_access_key_id(k).with_secret_access_key(s);
        }
        Ok(Storage::S3 { store: Arc::new(b.build()?), bucket: c.bucket.clone() })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Storage::Local => "local",
            Storage::S3 { .. } => "s3",
        }
    }

    fn store(&self) -> Option<&Arc<dyn ObjectStore>> {
        match self {
            Storage::Local => None,
            Storage::S3 { store, .. } => Some(store),
        }
    }

    /// Uploads one local file to `key`, streaming.
    pub async fn upload(&self, local: &Path, key: &str) -> Result<(), StorageError> {
        let Some(store) = self.store() else { return Ok(()) };
        let mut writer = object_store::buffered::BufWriter::new(store.clone(), ObjectPath::from(key));
        let mut file = tokio::fs::File::open(local).await?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            writer.put(Bytes::copy_from_slice(&buf[..n])).await?;
        }
        tokio::io::AsyncWriteExt::shutdown(&mut writer).await?;
        Ok(())
    }

    /// SHA-256 and SM3 of a stored object, read as a stream.
    pub async fn digest(&self, key: &str) -> Result<jiefen_recorder::hash::FileDigest, StorageError> {
        let Some(store) = self.store() else { return Ok(jiefen_recorder::hash::digest_file(Path::new(key))?) };
        let mut stream = store.get(&ObjectPath::from(key)).await?.into_stream();
        let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
        let mut sm = sm3::Sm3::new();
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            bytes += chunk.len() as u64;
            sha.update(&chunk);
            sm.update(&chunk);
        }
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        Ok(jiefen_recorder::hash::FileDigest { sha256: hex(sha.finish().as_ref()), sm3: hex(&sm.finalize()), bytes })
    }

    pub async fn size(&self, key: &str) -> Result<u64, StorageError> {
        match self.store() {
            None => Ok(tokio::fs::metadata(key).await?.len()),
            Some(store) => Ok(store.head(&ObjectPath::from(key)).await?.size),
        }
    }

    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        match self.store() {
            None => Err(StorageError::Io(std::io::Error::other("local files are served from disk"))),
            Some(store) => Ok(store.get_range(&ObjectPath::from(key), range).await?),
        }
    }

    /// Deletes every object under `prefix`.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<(), StorageError> {
        let Some(store) = self.store() else { return Ok(()) };
        let objects: Vec<_> = store.list(Some(&ObjectPath::from(prefix))).collect().await;
        for meta in objects {
            store.delete(&meta?.location).await?;
        }
        Ok(())
    }
}
