//! Compression done once before upload (`precompress = "gzip" | "br"`): the object holds
//! the compressed bytes, hashed as uploaded, cached by the source's hash.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::config::Precompress;
use crate::digest::hash_bytes;

/// The compressed copy of a site file, as uploaded.
pub(super) struct Packed {
    pub(super) path: PathBuf,
    pub(super) size: u64,
    pub(super) sha256: String,
}

/// Compress the file whose content hash is `sha` once: the result is kept in `dir` under
/// that hash, so later scans (and re-runs) reuse it without compressing again. Output is
/// deterministic (no timestamp in the gzip header), so its hash is stable across machines.
pub(super) fn precompressed(
    dir: &Path,
    path: &Path,
    sha: &str,
    enc: Precompress,
) -> std::io::Result<Packed> {
    let out = dir.join(format!("{sha}.{}", enc.token()));
    let sum = dir.join(format!("{sha}.{}.sha256", enc.token()));
    if let (Ok(meta), Ok(h)) = (std::fs::metadata(&out), std::fs::read_to_string(&sum))
        && h.len() == 64
    {
        return Ok(Packed {
            path: out,
            size: meta.len(),
            sha256: h,
        });
    }
    let input = std::fs::read(path)?;
    if hash_bytes(&input) != sha {
        return Err(std::io::Error::other(
            "the file changed while it was being scanned",
        ));
    }
    let bytes = compress(&input, enc)?;
    let sha256 = hash_bytes(&bytes);
    std::fs::create_dir_all(dir)?;
    let tmp = |p: &Path| p.with_extension(format!("tmp{}", crate::digest::unique_token()));
    for (target, contents) in [(&out, &bytes[..]), (&sum, sha256.as_bytes())] {
        let t = tmp(target);
        std::fs::write(&t, contents)?;
        std::fs::rename(&t, target)?;
    }
    Ok(Packed {
        path: out,
        size: bytes.len() as u64,
        sha256,
    })
}

/// Compress with the strongest setting: it is done once per content, not per request.
pub fn compress(input: &[u8], enc: Precompress) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    match enc {
        Precompress::Gzip => {
            let mut w = flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::best());
            w.write_all(input)?;
            w.finish()
        }
        Precompress::Br => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 64 * 1024, 11, 22);
                w.write_all(input)?;
            }
            Ok(out)
        }
    }
}

/// The inverse of [`compress`]: `pull` gives back the source a precompressed object was
/// made from, so a pulled site re-deploys to the same bytes.
pub fn decompress(input: &[u8], enc: Precompress) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match enc {
        Precompress::Gzip => {
            flate2::read::GzDecoder::new(input).read_to_end(&mut out)?;
        }
        Precompress::Br => {
            brotli::Decompressor::new(input, 64 * 1024).read_to_end(&mut out)?;
        }
    }
    Ok(out)
}
