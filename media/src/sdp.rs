//! The little of SDP the SFU and its clients read directly: the m-lines' mids and directions.

/// `(mid, direction)` of every m-line with a mid, in order. The direction is the m-line's
/// `a=sendrecv|sendonly|recvonly|inactive` (default `sendrecv`).
pub fn media_sections(sdp: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dir = String::new();
    let mut mid: Option<String> = None;
    for line in sdp.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            if let Some(m) = mid.take() {
                out.push((m, std::mem::take(&mut dir)));
            }
            dir = "sendrecv".into();
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.to_string());
        } else if let Some(d) = line.strip_prefix("a=").filter(|d| ["sendrecv", "sendonly", "recvonly", "inactive"].contains(d)) {
            dir = d.to_string();
        }
    }
    if let Some(m) = mid {
        out.push((m, dir));
    }
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
    }
}
