//! Just enough TrueType to embed a CJK font in a PDF: read a font (or the first of a collection),
//! map characters to glyphs (cmap formats 4 and 12), read advance widths, and write a subset
//! that keeps every glyph index (so the PDF can use glyph ids directly) but empties the glyphs
//! not used — a 5 MB font becomes tens of kilobytes.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, thiserror::Error)]
pub enum FontError {
    #[error("not a TrueType font this writer understands: {0}")]
    Unsupported(&'static str),
}

fn u16_at(d: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(o)?, *d.get(o + 1)?]))
}
fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*d.get(o)?, *d.get(o + 1)?, *d.get(o + 2)?, *d.get(o + 3)?]))
}

pub struct Font {
    tables: HashMap<[u8; 4], Vec<u8>>,
    cmap: HashMap<u32, u16>,
    advances: Vec<u16>,
    pub units_per_em: u16,
    pub ascent: i16,
    pub descent: i16,
    num_glyphs: u16,
    long_loca: bool,
}

impl Font {
    pub fn parse(data: &[u8]) -> Result<Font, FontError> {
        let base = if data.get(0..4) == Some(b"ttcf") { u32_at(data, 12).ok_or(FontError::Unsupported("collection header"))? as usize } else { 0 };
        let count = u16_at(data, base + 4).ok_or(FontError::Unsupported("table directory"))? as usize;
        let mut tables = HashMap::new();
        for i in 0..count {
            let rec = base + 12 + i * 16;
            let tag: [u8; 4] = data.get(rec..rec + 4).and_then(|t| t.try_into().ok()).ok_or(FontError::Unsupported("table record"))?;
            let off = u32_at(data, rec + 8).ok_or(FontError::Unsupported("table offset"))? as usize;
            let len = u32_at(data, rec + 12).ok_or(FontError::Unsupported("table length"))? as usize;
            tables.insert(tag, data.get(off..off + len).ok_or(FontError::Unsupported("table bounds"))?.to_vec());
        }
        for need in [b"head", b"hhea", b"maxp", b"loca", b"glyf", b"hmtx", b"cmap"] {
            if !tables.contains_key(need) {
                return Err(FontError::Unsupported("a glyf-based TrueType font with head, hhea, maxp, loca, glyf, hmtx and cmap"));
            }
        }
        let head = &tables[b"head"];
        let units_per_em = u16_at(head, 18).unwrap_or(1000);
        let long_loca = u16_at(head, 50) == Some(1);
        let hhea = &tables[b"hhea"];
        let ascent = u16_at(hhea, 4).unwrap_or(880) as i16;
        let descent = u16_at(hhea, 6).unwrap_or(0) as i16;
        let metrics = u16_at(hhea, 34).unwrap_or(0) as usize;
        let num_glyphs = u16_at(&tables[b"maxp"], 4).unwrap_or(0);
        let hmtx = &tables[b"hmtx"];
        let mut advances = Vec::with_capacity(num_glyphs as usize);
        let mut last = 0;
        for g in 0..num_glyphs as usize {
            if g < metrics {
                last = u16_at(hmtx, g * 4).unwrap_or(last);
            }
            advances.push(last);
        }
        let cmap = parse_cmap(&tables[b"cmap"]).ok_or(FontError::Unsupported("a Unicode cmap (format 4 or 12)"))?;
        Ok(Font { tables, cmap, advances, units_per_em, ascent, descent, num_glyphs, long_loca })
    }

    pub fn glyph(&self, c: char) -> u16 {
        self.cmap.get(&(c as u32)).copied().unwrap_or(0)
    }

    /// Advance width in 1/1000 em (PDF glyph space).
    pub fn width(&self, gid: u16) -> u32 {
        let a = self.advances.get(gid as usize).copied().unwrap_or(0) as u32;
        a * 1000 / u32::from(self.units_per_em.max(1))
    }

    fn glyph_range(&self, gid: u16) -> Option<(usize, usize)> {
        let loca = &self.tables[b"loca"];
        let g = gid as usize;
        if self.long_loca {
            Some((u32_at(loca, g * 4)? as usize, u32_at(loca, g * 4 + 4)? as usize))
        } else {
            Some((u16_at(loca, g * 2)? as usize * 2, u16_at(loca, g * 2 + 2)? as usize * 2))
        }
    }

    /// A font file with only `used` glyphs (and what composites need) drawn; ids unchanged.
    pub fn subset(&self, used: &BTreeSet<u16>) -> Vec<u8> {
        let glyf = &self.tables[b"glyf"];
        let mut keep: BTreeSet<u16> = used.clone();
        keep.insert(0);
        // Composite glyphs name their components: keep those too.
        let mut stack: Vec<u16> = keep.iter().copied().collect();
        while let Some(g) = stack.pop() {
            let Some((a, b)) = self.glyph_range(g) else { continue };
            let Some(data) = glyf.get(a..b) else { continue };
            if data.len() > 10 && i16::from_be_bytes([data[0], data[1]]) < 0 {
                let mut o = 10;
                while let (Some(flags), Some(comp)) = (u16_at(data, o), u16_at(data, o + 2)) {
                    if keep.insert(comp) {
                        stack.push(comp);
                    }
                    o += 4 + if flags & 1 != 0 { 4 } else { 2 };
                    o += if flags & 8 != 0 { 2 } else if flags & 0x40 != 0 { 4 } else if flags & 0x80 != 0 { 8 } else { 0 };
                    if flags & 0x20 == 0 {
                        break;
                    }
                }
            }
        }
        let mut new_glyf = Vec::new();
        let mut new_loca = Vec::with_capacity((self.num_glyphs as usize + 1) * 4);
        for g in 0..self.num_glyphs {
            new_loca.extend_from_slice(&(new_glyf.len() as u32).to_be_bytes());
            if keep.contains(&g)
                && let Some((a, b)) = self.glyph_range(g)
                && let Some(data) = glyf.get(a..b)
            {
                new_glyf.extend_from_slice(data);
                while new_glyf.len() % 4 != 0 {
                    new_glyf.push(0);
                }
            }
        }
        new_loca.extend_from_slice(&(new_glyf.len() as u32).to_be_bytes());
        let mut head = self.tables[b"head"].clone();
        if head.len() > 51 {
            head[50] = 0;
            head[51] = 1; // long loca offsets
            head[8..12].copy_from_slice(&[0, 0, 0, 0]);
        }
        let mut out_tables: Vec<([u8; 4], Vec<u8>)> = vec![(*b"head", head), (*b"loca", new_loca), (*b"glyf", new_glyf)];
        for tag in [b"hhea", b"maxp", b"hmtx", b"cvt ", b"fpgm", b"prep"] {
            if let Some(t) = self.tables.get(tag) {
                out_tables.push((*tag, t.clone()));
            }
        }
        out_tables.sort_by_key(|t| t.0);
        write_ttf(&out_tables)
    }
}

fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |acc, c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        acc.wrapping_add(u32::from_be_bytes(w))
    })
}

fn write_ttf(tables: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let n = tables.len() as u16;
    let mut pow = 1u16;
    let mut log = 0u16;
    while pow * 2 <= n {
        pow *= 2;
        log += 1;
    }
    let mut out = Vec::new();
    out.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    for v in [n, pow * 16, log, n * 16 - pow * 16] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    let mut offset = 12 + 16 * tables.len();
    let mut body = Vec::new();
    for (tag, data) in tables {
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(data).to_be_bytes());
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        body.extend_from_slice(data);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        offset = 12 + 16 * tables.len() + body.len();
    }
    out.extend_from_slice(&body);
    out
}

fn parse_cmap(cmap: &[u8]) -> Option<HashMap<u32, u16>> {
    let count = u16_at(cmap, 2)? as usize;
    let mut best: Option<(u16, usize)> = None;
    for i in 0..count {
        let rec = 4 + i * 8;
        let (platform, encoding, offset) = (u16_at(cmap, rec)?, u16_at(cmap, rec + 2)?, u32_at(cmap, rec + 4)? as usize);
        let format = u16_at(cmap, offset)?;
        let unicode = platform == 0 || (platform == 3 && (encoding == 1 || encoding == 10));
        if unicode && (format == 12 || (format == 4 && best.is_none_or(|(f, _)| f != 12))) {
            best = Some((format, offset));
        }
    }
    let (format, o) = best?;
    let mut map = HashMap::new();
    if format == 12 {
        let groups = u32_at(cmap, o + 12)? as usize;
        for g in 0..groups {
            let r = o + 16 + g * 12;
            let (start, end, gid) = (u32_at(cmap, r)?, u32_at(cmap, r + 4)?, u32_at(cmap, r + 8)?);
            for (k, c) in (start..=end.min(start + 0xffff)).enumerate() {
                map.insert(c, (gid + k as u32) as u16);
            }
        }
    } else {
        let segs = u16_at(cmap, o + 6)? as usize / 2;
        let (ends, starts, deltas, ranges) = (o + 14, o + 16 + segs * 2, o + 16 + segs * 4, o + 16 + segs * 6);
        for s in 0..segs {
            let (end, start) = (u16_at(cmap, ends + s * 2)?, u16_at(cmap, starts + s * 2)?);
            let (delta, range) = (u16_at(cmap, deltas + s * 2)?, u16_at(cmap, ranges + s * 2)?);
            if start == 0xffff {
                continue;
            }
            for c in start..=end {
                let gid = if range == 0 {
                    c.wrapping_add(delta)
                } else {
                    let addr = ranges + s * 2 + range as usize + 2 * (c - start) as usize;
                    match u16_at(cmap, addr)? {
                        0 => 0,
                        g => g.wrapping_add(delta),
                    }
                };
                if gid != 0 {
                    map.insert(u32::from(c), gid);
                }
            }
        }
    }
    Some(map)
}
