//! The agreement as a PDF: A4 pages of the agreement's text in a CJK font embedded as a subset,
//! the document's SHA-256 on every page, a last page with every signature (drawn image, signer,
//! time, address, hash signed) and the organisation's seal, and an integrity signature over the
//! whole file appended after `%%EOF` (Ed25519, the seal key), which any change breaks.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use base64::Engine as _;

use super::font::Font;

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;
const SIZE: f32 = 11.0;
const LEADING: f32 = 17.0;
/// The marker of the integrity signature after the PDF's end.
pub const SIGNATURE_MARKER: &str = "%jiefen-integrity-ed25519:";

pub struct Signature {
    pub name: String,
    pub signed_at: String,
    pub ip: String,
    pub document_sha256: String,
    /// `data:image/png;base64,...` as drawn.
    pub image: String,
}

pub struct PdfInput<'a> {
    pub title: &'a str,
    pub body: &'a str,
    pub sha256: &'a str,
    pub signatures: &'a [Signature],
    pub seal: Option<&'a str>,
}

fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

/// Lines of at most `width` points, breaking anywhere (CJK has no spaces to break at).
fn wrap(font: &Font, text: &str, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        let mut w = 0.0;
        for c in para.chars() {
            let cw = font.width(font.glyph(c)) as f32 * SIZE / 1000.0;
            if w + cw > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                w = 0.0;
            }
            line.push(c);
            w += cw;
        }
        lines.push(line);
    }
    lines
}

/// Decodes a PNG (8-bit RGB/RGBA/grey, not interlaced) to greyscale on white.
fn png_to_grey(png: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    if png.get(..8)? != b"\x89PNG\r\n\x1a\n" {
        return None;
    }
    let (mut w, mut h, mut color, mut idat) = (0u32, 0u32, 0u8, Vec::new());
    let mut o = 8;
    while o + 8 <= png.len() {
        let len = u32::from_be_bytes(png.get(o..o + 4)?.try_into().ok()?) as usize;
        let kind = png.get(o + 4..o + 8)?;
        let data = png.get(o + 8..o + 8 + len)?;
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?);
                h = u32::from_be_bytes(data.get(4..8)?.try_into().ok()?);
                if *data.get(8)? != 8 || *data.get(12)? != 0 {
                    return None;
                }
                color = *data.get(9)?;
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        o += 12 + len;
    }
    let bpp = match color {
        0 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => return None,
    };
    if w == 0 || h == 0 || w > 4000 || h > 4000 {
        return None;
    }
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&idat).ok()?;
    let stride = w as usize * bpp;
    let mut prev = vec![0u8; stride];
    let mut grey = Vec::with_capacity((w * h) as usize);
    for y in 0..h as usize {
        let row = raw.get(y * (stride + 1)..(y + 1) * (stride + 1))?;
        let filter = row[0];
        let mut cur = row[1..].to_vec();
        for x in 0..stride {
            let a = if x >= bpp { cur[x - bpp] } else { 0 };
            let b = prev[x];
            let c = if x >= bpp { prev[x - bpp] } else { 0 };
            cur[x] = cur[x].wrapping_add(match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = ((p - i16::from(a)).abs(), (p - i16::from(b)).abs(), (p - i16::from(c)).abs());
                    if pa <= pb && pa <= pc { a } else if pb <= pc { b } else { c }
                }
                _ => return None,
            });
        }
        for px in cur.chunks(bpp) {
            let (v, alpha) = match bpp {
                1 => (px[0], 255),
                2 => (px[0], px[1]),
                3 => (((u16::from(px[0]) * 3 + u16::from(px[1]) * 6 + u16::from(px[2])) / 10) as u8, 255),
                _ => (((u16::from(px[0]) * 3 + u16::from(px[1]) * 6 + u16::from(px[2])) / 10) as u8, px[3]),
            };
            // Composite on white: transparent pixels of a canvas signature are paper.
            grey.push(255 - ((u16::from(255 - v) * u16::from(alpha)) / 255) as u8);
        }
        prev = cur;
    }
    Some((w, h, grey))
}

struct Writer {
    out: Vec<u8>,
    offsets: Vec<usize>,
}

impl Writer {
    fn object(&mut self, body: &[u8]) -> usize {
        self.offsets.push(self.out.len());
        let n = self.offsets.len();
        self.out.extend_from_slice(format!("{n} 0 obj\n").as_bytes());
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(b"\nendobj\n");
        n
    }
    fn stream(&mut self, dict: &str, data: &[u8]) -> usize {
        let mut body = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(b"\nendstream");
        self.object(&body)
    }
}

fn hex_glyphs(font: &Font, text: &str, used: &mut BTreeSet<u16>) -> String {
    let mut s = String::from("<");
    for c in text.chars() {
        let g = font.glyph(c);
        used.insert(g);
        let _ = write!(s, "{g:04X}");
    }
    s.push('>');
    s
}

/// The PDF bytes (without the integrity signature; see [`sign`]).
pub fn render(font: &Font, input: &PdfInput<'_>) -> Vec<u8> {
    let mut used = BTreeSet::new();
    let text_w = PAGE_W - 2.0 * MARGIN;
    let lines = wrap(font, input.body, text_w);
    let per_page = ((PAGE_H - 2.0 * MARGIN - 40.0) / LEADING) as usize;
    let mut pages: Vec<String> = Vec::new();
    for chunk in lines.chunks(per_page.max(1)) {
        let mut c = String::from("BT /F1 11 Tf 17 TL\n");
        let _ = writeln!(c, "{MARGIN} {} Td", PAGE_H - MARGIN);
        for line in chunk {
            let _ = writeln!(c, "{} Tj T*", hex_glyphs(font, line, &mut used));
        }
        c.push_str("ET\n");
        pages.push(c);
    }
    // The signature page: images and the facts of each signature, then the seal.
    let mut sig_page = String::new();
    let mut images: Vec<(u32, u32, Vec<u8>)> = Vec::new();
    let mut y = PAGE_H - MARGIN;
    let _ = writeln!(sig_page, "BT /F1 14 Tf {MARGIN} {y} Td {} Tj ET", hex_glyphs(font, "签署记录", &mut used));
    y -= 30.0;
    for s in input.signatures {
        if let Some(img) = s.image.strip_prefix("data:image/png;base64,").and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()).and_then(|b| png_to_grey(&b)) {
            let (w, h) = (160.0_f32, 160.0 * img.1 as f32 / img.0.max(1) as f32);
            let _ = writeln!(sig_page, "q {w} 0 0 {h:.1} {MARGIN} {:.1} cm /Im{} Do Q", y - h, images.len());
            images.push(img);
            y -= h.min(60.0) + 6.0;
        }
        for line in [format!("签署人：{}　时间：{}　IP：{}", s.name, s.signed_at, s.ip), format!("所签文书哈希：{}", s.document_sha256)] {
            let _ = writeln!(sig_page, "BT /F1 9 Tf {MARGIN} {y:.1} Td {} Tj ET", hex_glyphs(font, &line, &mut used));
            y -= 14.0;
        }
        y -= 10.0;
        if y < MARGIN + 80.0 {
            break;
        }
    }
    if let Some(seal) = input.seal {
        for line in wrap(font, &format!("调解组织电子印章（Ed25519）：{seal}"), text_w) {
            let _ = writeln!(sig_page, "BT /F1 8 Tf {MARGIN} {y:.1} Td {} Tj ET", hex_glyphs(font, &line, &mut used));
            y -= 12.0;
        }
    }
    pages.push(sig_page);
    let total = pages.len();
    for (i, p) in pages.iter_mut().enumerate() {
        let footer = format!("文书哈希 SHA-256：{}　第{}/{}页", input.sha256, i + 1, total);
        let _ = writeln!(p, "BT /F1 7 Tf {MARGIN} 30 Td {} Tj ET", hex_glyphs(font, &footer, &mut used));
    }

    let mut w = Writer { out: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec(), offsets: Vec::new() };
    // Objects 1 and 2 are the catalog and the page tree; written first, filled by reference.
    let catalog = w.object(b"<< /Type /Catalog /Pages 2 0 R >>");
    let pages_placeholder = w.out.len();
    w.offsets.push(pages_placeholder);
    let kids_marker = w.out.len();
    let _ = kids_marker;
    // Font objects.
    let font_file = font.subset(&used);
    let font_file_obj = w.stream(&format!("/Filter /FlateDecode /Length1 {}", font_file.len()), &deflate(&font_file));
    let scale = 1000.0 / f32::from(font.units_per_em.max(1));
    let descriptor = w.object(
        format!(
            "<< /Type /FontDescriptor /FontName /JiefenCJK /Flags 4 /FontBBox [0 {} 1000 {}] /ItalicAngle 0 /Ascent {} /Descent {} /CapHeight 700 /StemV 80 /FontFile2 {font_file_obj} 0 R >>",
            (f32::from(font.descent) * scale) as i32,
            (f32::from(font.ascent) * scale) as i32,
            (f32::from(font.ascent) * scale) as i32,
            (f32::from(font.descent) * scale) as i32
        )
        .as_bytes(),
    );
    let widths: String = used.iter().map(|g| format!("{g} [{}]", font.width(*g))).collect::<Vec<_>>().join(" ");
    let cid = w.object(
        format!("<< /Type /Font /Subtype /CIDFontType2 /BaseFont /JiefenCJK /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor {descriptor} 0 R /W [{widths}] /CIDToGIDMap /Identity >>").as_bytes(),
    );
    let to_unicode = w.stream("", to_unicode_cmap(font, input, &used).as_bytes());
    let font_obj = w.object(format!("<< /Type /Font /Subtype /Type0 /BaseFont /JiefenCJK /Encoding /Identity-H /DescendantFonts [{cid} 0 R] /ToUnicode {to_unicode} 0 R >>").as_bytes());
    let image_objs: Vec<usize> = images.iter().map(|(iw, ih, grey)| w.stream(&format!("/Type /XObject /Subtype /Image /Width {iw} /Height {ih} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode"), &deflate(grey))).collect();
    let xobjects: String = image_objs.iter().enumerate().map(|(i, o)| format!("/Im{i} {o} 0 R")).collect::<Vec<_>>().join(" ");
    let mut kids = Vec::new();
    for p in &pages {
        let content = w.stream("/Filter /FlateDecode", &deflate(p.as_bytes()));
        kids.push(w.object(
            format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] /Resources << /Font << /F1 {font_obj} 0 R >> /XObject << {xobjects} >> >> /Contents {content} 0 R >>").as_bytes(),
        ));
    }
    // The page tree goes at the end; object 2's offset points at it.
    let tree_at = w.out.len();
    w.out.extend_from_slice(
        format!("2 0 obj\n<< /Type /Pages /Count {} /Kids [{}] >>\nendobj\n", kids.len(), kids.iter().map(|k| format!("{k} 0 R")).collect::<Vec<_>>().join(" ")).as_bytes(),
    );
    w.offsets[1] = tree_at;
    let info = w.object(format!("<< /Title ({}) /Producer (jiefen) >>", input.title.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect::<String>()).as_bytes());
    let xref_at = w.out.len();
    let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", w.offsets.len() + 1);
    for o in &w.offsets {
        let _ = writeln!(xref, "{o:010} 00000 n ");
    }
    let _ = write!(xref, "trailer\n<< /Size {} /Root {catalog} 0 R /Info {info} 0 R >>\nstartxref\n{xref_at}\n%%EOF\n", w.offsets.len() + 1);
    w.out.extend_from_slice(xref.as_bytes());
    w.out
}

/// Maps glyph ids back to text, so the PDF's text can be searched and copied.
fn to_unicode_cmap(font: &Font, input: &PdfInput<'_>, used: &BTreeSet<u16>) -> String {
    let mut by_glyph = std::collections::BTreeMap::new();
    let all = format!("{}签署记录签署人：时间：IP所签文书哈希调解组织电子印章（Ed25519）SHA-256第页/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+=　 ", input.body);
    for c in all.chars().chain(input.signatures.iter().flat_map(|s| s.name.chars().chain(s.signed_at.chars()).chain(s.ip.chars()))) {
        let g = font.glyph(c);
        if used.contains(&g) {
            by_glyph.entry(g).or_insert(c);
        }
    }
    let mut s = String::from("/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def /CMapName /Adobe-Identity-UCS def /CMapType 2 def\n1 begincodespacerange <0000> <FFFF> endcodespacerange\n");
    let entries: Vec<(u16, char)> = by_glyph.into_iter().collect();
    for chunk in entries.chunks(100) {
        let _ = writeln!(s, "{} beginbfchar", chunk.len());
        for (g, c) in chunk {
            let mut utf16 = [0u16; 2];
            let units: String = c.encode_utf16(&mut utf16).iter().map(|u| format!("{u:04X}")).collect();
            let _ = writeln!(s, "<{g:04X}> <{units}>");
        }
        s.push_str("endbfchar\n");
    }
    s.push_str("endcmap CMapName currentdict /CMap defineresource pop end end");
    s
}

/// Appends the integrity signature (over every byte before it).
pub fn sign(pdf: Vec<u8>, key: &super::seal::SealKey) -> Vec<u8> {
    let mut out = pdf;
    let digest = ring::digest::digest(&ring::digest::SHA256, &out);
    let signature = key.seal(&crate::case::chain::hex(digest.as_ref()));
    out.extend_from_slice(format!("{SIGNATURE_MARKER}{signature}\n").as_bytes());
    out
}

/// Whether a signed PDF is byte for byte what was signed.
pub fn verify(pdf: &[u8], public_key_base64: &str) -> bool {
    let marker = SIGNATURE_MARKER.as_bytes();
    let Some(at) = pdf.windows(marker.len()).rposition(|w| w == marker) else { return false };
    let signature = String::from_utf8_lossy(&pdf[at + marker.len()..]).trim().to_string();
    let digest = ring::digest::digest(&ring::digest::SHA256, &pdf[..at]);
    super::seal::verify(public_key_base64, &crate::case::chain::hex(digest.as_ref()), &signature)
}
