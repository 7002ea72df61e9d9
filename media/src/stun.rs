//! Just enough STUN to route a datagram: is it STUN, and what is its USERNAME.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;
const HEADER_LEN: usize = 20;

/// RFC 7983 demultiplexing: the first byte tells STUN (0-3), DTLS (20-63) and RTP/RTCP (128-191).
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] < 4 && datagram[4..8] == MAGIC_COOKIE
}

/// The local ufrag (the part before ':') of a STUN request's USERNAME, if any.
pub fn local_ufrag(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let end = HEADER_LEN.checked_add(body_len)?;
    let body = datagram.get(HEADER_LEN..end)?;
    let mut at = 0usize;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        // Attributes are padded to a multiple of four bytes.
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7u8; 12]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn reads_the_local_ufrag() {
        assert_eq!(local_ufrag(&binding_request("srvUfrag:cli")), Some("srvUfrag"));
        assert_eq!(local_ufrag(&binding_request("abc")), Some("abc"));
    }

    #[test]
    fn truncated_and_foreign_datagrams_give_none() {
        let m = binding_request("srvUfrag:cli");
        for cut in 0..m.len() {
            let _ = local_ufrag(&m[..cut]);
        }
        assert_eq!(local_ufrag(&[0x80, 0, 0, 0]), None);
        let mut lying = m.clone();
        lying[3] = 0xff; // body length beyond the datagram
        assert_eq!(local_ufrag(&lying), None);
    }
}
