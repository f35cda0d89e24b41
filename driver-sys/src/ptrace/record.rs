//! Building one record in the module's byte layout: the 26-byte header,
//! u16 parameter lengths, the parameters back to back.

use crate::abi::EVENT_HDR_LEN;

/// Parameters of the record being built; reused from record to record.
#[derive(Debug, Default)]
pub struct RecordBuilder {
    lens: Vec<u16>,
    data: Vec<u8>,
}

impl RecordBuilder {
    pub fn begin(&mut self) {
        self.lens.clear();
        self.data.clear();
    }

    pub fn bytes(&mut self, b: &[u8]) {
        // A parameter length is a u16.
        let b = &b[..b.len().min(0xffff)];
        self.lens.push(b.len() as u16);
        self.data.extend_from_slice(b);
    }

    pub fn empty(&mut self) {
        self.lens.push(0);
    }

    /// A string parameter: the bytes and a terminating NUL.
    pub fn str(&mut self, s: &[u8]) {
        let s = &s[..s.len().min(0xfffe)];
        self.lens.push(s.len() as u16 + 1);
        self.data.extend_from_slice(s);
        self.data.push(0);
    }

    /// A string read from the tracee: empty when it could not be read, as
    /// the module does for a NULL pointer.
    pub fn opt_str(&mut self, s: Option<Vec<u8>>) {
        match s {
            Some(s) => self.str(&s),
            None => self.empty(),
        }
    }

    pub fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_ne_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_ne_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_ne_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.bytes(&v.to_ne_bytes());
    }

    pub fn nparams(&self) -> usize {
        self.lens.len()
    }

    /// Appends the finished record to `out`.
    pub fn finish(&self, out: &mut Vec<u8>, ts: u64, tid: u64, event_type: u16) {
        let len = EVENT_HDR_LEN + 2 * self.lens.len() + self.data.len();
        out.reserve(len);
        out.extend_from_slice(&ts.to_ne_bytes());
        out.extend_from_slice(&tid.to_ne_bytes());
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&event_type.to_ne_bytes());
        out.extend_from_slice(&(self.lens.len() as u32).to_ne_bytes());
        for l in &self.lens {
            out.extend_from_slice(&l.to_ne_bytes());
        }
        out.extend_from_slice(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventRef;

    #[test]
    fn a_record_parses_back_with_its_params() {
        let mut b = RecordBuilder::default();
        b.begin();
        b.i64(-2);
        b.str(b"/etc/passwd");
        b.empty();
        b.u32(7);
        let mut out = Vec::new();
        b.finish(&mut out, 11, 42, 307);
        let ev = EventRef::parse(&out).unwrap();
        assert_eq!(
            (ev.ts(), ev.tid(), ev.event_type(), ev.nparams()),
            (11, 42, 307, 4)
        );
        let p = ev.payload();
        assert_eq!(&p[..8], &[8, 0, 12, 0, 0, 0, 4, 0]);
        assert_eq!(&p[8..16], &(-2i64).to_ne_bytes());
        assert_eq!(&p[16..28], b"/etc/passwd\0");
        assert_eq!(&p[28..], &7u32.to_ne_bytes());
    }
}
