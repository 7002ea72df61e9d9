//! QR codes as SVG or PNG. The PNG encoder is a few lines (greyscale, stored deflate blocks):
//! a QR image is tiny, so compression would buy nothing worth a dependency.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use qrcode::{EcLevel, QrCode};

use super::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QrFormat {
    Svg,
    Png,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct QrQuery {
    /// `svg` (default) or `png`.
    pub format: Option<QrFormat>,
}

pub fn respond(text: &str, format: Option<QrFormat>) -> Result<Response, ApiError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|e| ApiError::BadRequest(format!("cannot encode a QR code: {e}")))?;
    Ok(match format.unwrap_or(QrFormat::Svg) {
        QrFormat::Svg => {
            let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(240, 240).quiet_zone(true).build();
            ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
        }
        QrFormat::Png => ([(header::CONTENT_TYPE, "image/png")], png(&code, 8)).into_response(),
    })
}

/// A greyscale PNG of the code, `scale` pixels per module, with the 4-module quiet zone.
pub fn png(code: &QrCode, scale: usize) -> Vec<u8> {
    let modules = code.width();
    let colors = code.to_colors();
    let size = (modules + 8) * scale;
    let mut raw = Vec::with_capacity(size * (size + 1));
    for y in 0..size {
        raw.push(0); // filter: none
        for x in 0..size {
            let (mx, my) = ((x / scale).wrapping_sub(4), (y / scale).wrapping_sub(4));
            let dark = mx < modules && my < modules && colors[my * modules + mx] == qrcode::Color::Dark;
            raw.push(if dark { 0 } else { 255 });
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(size as u32).to_be_bytes());
    ihdr.extend_from_slice(&(size as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(65_535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_and_png_structure() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let code = QrCode::new(b"https://example.org/intake?org=1").expect("encodes");
        let png = png(&code, 4);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]), "IEND chunk with its fixed CRC");
    }
}
