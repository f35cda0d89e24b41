//! Borrowed views of one scap record, read in place from a ring.

use crate::abi::EVENT_HDR_LEN;
use std::fmt;

/// One event record, borrowed from the ring (or any byte slice) it lives in.
///
/// The record is Falco's scap layout: the packed 26-byte header
/// (ts u64, tid u64, len u32, type u16, nparams u32), then the parameter
/// length array and the parameter bytes. A view always covers exactly
/// `len()` bytes, so nothing past the record can be read through it.
#[derive(Clone, Copy)]
pub struct EventRef<'a> {
    hdr: &'a [u8; EVENT_HDR_LEN],
    bytes: &'a [u8],
}

/// Why a byte slice is not one well-formed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is {got} bytes, shorter than the {EVENT_HDR_LEN}-byte event header")]
    ShorterThanHeader { got: usize },
    #[error("record header says {claimed} bytes but {got} bytes were given")]
    LengthMismatch { claimed: u32, got: usize },
}

impl<'a> EventRef<'a> {
    /// Views `bytes` as one record; its header's `len` must be `bytes.len()`.
    pub fn parse(bytes: &'a [u8]) -> Result<EventRef<'a>, RecordError> {
        let hdr = bytes
            .first_chunk::<EVENT_HDR_LEN>()
            .ok_or(RecordError::ShorterThanHeader { got: bytes.len() })?;
        let claimed = len_field(hdr);
        if claimed as usize != bytes.len() {
            return Err(RecordError::LengthMismatch {
                claimed,
                got: bytes.len(),
            });
        }
        Ok(EventRef { hdr, bytes })
    }

    /// Views the record at the start of `bytes`, which may run further
    /// (the rest of a ring). The caller has already checked `len` against
    /// its own bounds; this only refuses what would be out of range.
    pub(crate) fn at_start_of(bytes: &'a [u8]) -> Option<EventRef<'a>> {
        let hdr = bytes.first_chunk::<EVENT_HDR_LEN>()?;
        let len = len_field(hdr) as usize;
        if len < EVENT_HDR_LEN {
            return None;
        }
        let bytes = bytes.get(..len)?;
        Some(EventRef { hdr, bytes })
    }

    /// Nanoseconds since the epoch.
    pub fn ts(&self) -> u64 {
        u64::from_ne_bytes(field(self.hdr, 0))
    }

    /// Thread id (the kernel's pid).
    pub fn tid(&self) -> u64 {
        u64::from_ne_bytes(field(self.hdr, 8))
    }

    /// Whole record length, header included.
    pub fn len(&self) -> u32 {
        len_field(self.hdr)
    }

    /// Never true for a valid record (the header alone is 26 bytes); here
    /// because clippy pairs `len` with it.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Falco's PPME_* event type.
    pub fn event_type(&self) -> u16 {
        u16::from_ne_bytes(field(self.hdr, 20))
    }

    /// Number of parameters.
    pub fn nparams(&self) -> u32 {
        u32::from_ne_bytes(field(self.hdr, 22))
    }

    /// The whole record, header included, exactly as in a .scap event block.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// What follows the header: the parameter length array, then the parameters.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes.get(EVENT_HDR_LEN..).unwrap_or_default()
    }
}

impl fmt::Debug for EventRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRef")
            .field("ts", &self.ts())
            .field("tid", &self.tid())
            .field("len", &self.len())
            .field("type", &self.event_type())
            .field("nparams", &self.nparams())
            .finish()
    }
}

fn len_field(hdr: &[u8; EVENT_HDR_LEN]) -> u32 {
    u32::from_ne_bytes(field(hdr, 16))
}

/// N bytes of the header at a constant offset; the fixed-size array lets
/// the compiler drop every bounds check.
#[inline(always)]
fn field<const N: usize>(hdr: &[u8; EVENT_HDR_LEN], offset: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&hdr[offset..offset + N]);
    out
}

/// Writes the 26-byte header for a record of `len` bytes.
pub(crate) fn write_header(
    out: &mut [u8; EVENT_HDR_LEN],
    ts: u64,
    tid: u64,
    len: u32,
    event_type: u16,
    nparams: u32,
) {
    out[0..8].copy_from_slice(&ts.to_ne_bytes());
    out[8..16].copy_from_slice(&tid.to_ne_bytes());
    out[16..20].copy_from_slice(&len.to_ne_bytes());
    out[20..22].copy_from_slice(&event_type.to_ne_bytes());
    out[22..26].copy_from_slice(&nparams.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ts: u64, tid: u64, event_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; EVENT_HDR_LEN + payload.len()];
        let len = v.len() as u32;
        let hdr: &mut [u8; EVENT_HDR_LEN] = v.first_chunk_mut().unwrap();
        write_header(hdr, ts, tid, len, event_type, 2);
        v[EVENT_HDR_LEN..].copy_from_slice(payload);
        v
    }

    #[test]
    fn header_fields_read_back() {
        let r = record(0x1122_3344_5566_7788, 4242, 293, &[1, 2, 3, 4]);
        let ev = EventRef::parse(&r).unwrap();
        assert_eq!(ev.ts(), 0x1122_3344_5566_7788);
        assert_eq!(ev.tid(), 4242);
        assert_eq!(ev.len(), 30);
        assert_eq!(ev.event_type(), 293);
        assert_eq!(ev.nparams(), 2);
        assert_eq!(ev.payload(), &[1, 2, 3, 4]);
        assert_eq!(ev.bytes(), &r[..]);
    }

    #[test]
    fn parse_refuses_short_and_mismatched_records() {
        assert_eq!(
            EventRef::parse(&[0u8; 10]).unwrap_err(),
            RecordError::ShorterThanHeader { got: 10 }
        );
        let mut r = record(1, 2, 3, &[9; 8]);
        r.push(0);
        assert_eq!(
            EventRef::parse(&r).unwrap_err(),
            RecordError::LengthMismatch {
                claimed: 34,
                got: 35
            }
        );
        let r = record(1, 2, 3, &[]);
        let mut tiny = r.clone();
        tiny[16..20].copy_from_slice(&3u32.to_ne_bytes());
        assert!(EventRef::at_start_of(&tiny).is_none());
        assert_eq!(EventRef::at_start_of(&r).unwrap().len(), 26);
    }
}
