//! The bytes of one forwarded record on the Zenoh key `shmbus/<ns>/<topic>`.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +---------------+---------------+-------------------------------+  0
//! |    version    |  (reserved 0) |          record type          |
//! +---------------+---------------+-------------------------------+  4
//! |                         (reserved 0)                          |
//! +---------------------------------------------------------------+  8
//! |                                                               |
//! +                 origin: the exporting bridge                  +
//! |                                                               |
//! +---------------------------------------------------------------+ 16
//! |                                                               |
//! +          sequence: 1, 2, 3... per origin and topic            +
//! |                                                               |
//! +---------------------------------------------------------------+ 24
//! |                    payload (the record's bytes)               ...
//! ```
//!
//! All fields little-endian. The origin is drawn at random when a bridge
//! starts, so a restarted exporter is a new origin whose sequence starts at
//! 1 again; an importer counts a gap when a sequence skips ahead.

/// Version byte of this layout.
pub const VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 24;

/// The header of a forwarded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The record type of the local record.
    pub record_type: u16,
    /// The exporting bridge (random per run).
    pub origin: u64,
    /// Position of the record in its origin's stream for this topic, from 1.
    pub seq: u64,
}

impl Header {
    /// Writes the header then `payload` into `out` (cleared first).
    pub fn encode(&self, payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.reserve(HEADER_LEN + payload.len());
        out.push(VERSION);
        out.push(0);
        out.extend_from_slice(&self.record_type.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.origin.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(payload);
    }

    /// Splits a received message into its header and payload; `None` if it
    /// is too short or of another version.
    pub fn decode(bytes: &[u8]) -> Option<(Header, &[u8])> {
        if bytes.len() < HEADER_LEN || bytes[0] != VERSION {
            return None;
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let header = Header {
            record_type: u16::from_le_bytes([bytes[2], bytes[3]]),
            origin: u64_at(8),
            seq: u64_at(16),
        };
        Some((header, &bytes[HEADER_LEN..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Header {
            record_type: 0xBEEF,
            origin: 0x0123_4567_89AB_CDEF,
            seq: 42,
        };
        let mut out = Vec::new();
        h.encode(b"hello", &mut out);
        assert_eq!(out.len(), HEADER_LEN + 5);
        let (back, payload) = Header::decode(&out).expect("decodes");
        assert_eq!(back, h);
        assert_eq!(payload, b"hello");
        assert!(Header::decode(&out[..HEADER_LEN - 1]).is_none());
        out[0] = VERSION + 1;
        assert!(Header::decode(&out).is_none());
    }
}
