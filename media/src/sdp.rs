//! The little of SDP the SFU and its clients read directly: the m-lines' media, mids and
//! directions.

/// One m-line: its media (`audio`, `video`, `application`), mid and direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    pub media: String,
    pub mid: String,
    pub direction: String,
}

/// Every m-line with a mid, in order. The direction is the m-line's
/// `a=sendrecv|sendonly|recvonly|inactive` (default `sendrecv`).
pub fn sections(sdp: &str) -> Vec<MediaSection> {
    let mut out = Vec::new();
    let mut current: Option<(String, Option<String>, String)> = None;
    let finish = |c: Option<(String, Option<String>, String)>, out: &mut Vec<MediaSection>| {
        if let Some((media, Some(mid), direction)) = c {
            out.push(MediaSection { media, mid, direction });
        }
    };
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            finish(current.take(), &mut out);
            let media = m.split(' ').next().unwrap_or_default().to_string();
            current = Some((media, None, "sendrecv".into()));
        } else if let Some(c) = current.as_mut() {
            if let Some(m) = line.strip_prefix("a=mid:") {
                c.1 = Some(m.to_string());
            } else if let Some(d) = line.strip_prefix("a=").filter(|d| ["sendrecv", "sendonly", "recvonly", "inactive"].contains(d)) {
                c.2 = d.to_string();
            }
        }
    }
    finish(current, &mut out);
    out
}

/// `(mid, direction)` of every m-line with a mid, in order.
pub fn media_sections(sdp: &str) -> Vec<(String, String)> {
    sections(sdp).into_iter().map(|s| (s.mid, s.direction)).collect()
}

/// The SDP with the ICE candidates of the first m-line that has any repeated in every m-line
/// that has none. rtc writes them into the first m-line only, and a client (rtc among them)
/// ignores the candidates of an inactive m-line: an answer whose first m-line is an inactive
/// subscription would leave it with nothing to connect to.
pub fn candidates_in_every_section(sdp: &str) -> String {
    let lines: Vec<&str> = sdp.lines().map(str::trim_end).collect();
    let candidates: Vec<&str> = {
        let mut found = Vec::new();
        let mut in_media = false;
        for l in &lines {
            if l.starts_with("m=") {
                if !found.is_empty() {
                    break;
                }
                in_media = true;
            } else if in_media && (l.starts_with("a=candidate:") || *l == "a=end-of-candidates") {
                found.push(*l);
            }
        }
        found
    };
    if candidates.is_empty() {
        return sdp.to_string();
    }
    let mut out = String::with_capacity(sdp.len() + 256);
    let mut section: Vec<&str> = Vec::new();
    let flush = |section: &mut Vec<&str>, out: &mut String| {
        let is_media = section.first().is_some_and(|l| l.starts_with("m="));
        let has = section.iter().any(|l| l.starts_with("a=candidate:"));
        for l in section.iter() {
            out.push_str(l);
            out.push_str("\r\n");
        }
        if is_media && !has {
            for c in &candidates {
                out.push_str(c);
                out.push_str("\r\n");
            }
        }
        section.clear();
    };
    for l in lines {
        if l.starts_with("m=") {
            flush(&mut section, &mut out);
        }
        section.push(l);
    }
    flush(&mut section, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mids_and_directions_in_order() {
        let sdp = "v=0\r\nm=audio 9 x\r\na=mid:0\r\na=sendrecv\r\nm=video 9 x\r\na=recvonly\r\na=mid:1\r\nm=video 9 x\r\na=mid:x\r\n";
        assert_eq!(
            media_sections(sdp),
            vec![("0".into(), "sendrecv".into()), ("1".into(), "recvonly".into()), ("x".into(), "sendrecv".into())]
        );
        assert_eq!(sections(sdp)[1].media, "video");
        let with = candidates_in_every_section("v=0\r\nm=audio 9 x\r\na=mid:0\r\na=inactive\r\na=candidate:1 1 udp 1 127.0.0.1 5 typ host\r\nm=video 9 x\r\na=mid:1\r\n");
        assert_eq!(with.matches("a=candidate:1 1 udp 1 127.0.0.1 5 typ host\r\n").count(), 2, "{with}");
        assert!(with.ends_with("a=mid:1\r\na=candidate:1 1 udp 1 127.0.0.1 5 typ host\r\n"), "{with}");
        assert_eq!(sections("m=audio 9 x\r\na=recvonly\r\n"), vec![], "an m-line without a mid is skipped");
    }
}
