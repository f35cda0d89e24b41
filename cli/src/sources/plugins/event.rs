//! A plugin event as the plugin API and scap captures carry it: Falco's
//! event header (ts, tid, len, type, nparams: 26 bytes, packed) followed by
//! the 32-bit lengths of the two parameters of PPME_PLUGINEVENT_E, the
//! plugin id (u32) and the payload.

use std::fmt;

/// Falco's event type of plugin events (PPME_PLUGINEVENT_E).
pub const PLUGINEVENT_E: u16 = 322;
/// The event header's size.
pub const HEADER_LEN: usize = 26;
const PARAMS_LEN: usize = 8;
const PAYLOAD_START: usize = HEADER_LEN + PARAMS_LEN + 4;

/// Why bytes are not a plugin event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("an event of {0} bytes is shorter than a plugin event's header")]
    Short(usize),
    #[error("the event's length field says {said} bytes, but it has {actual}")]
    Length { said: usize, actual: usize },
    #[error("event type {0} is not a plugin event (322)")]
    Type(u16),
    #[error("a plugin event has 2 parameters, this one {0}")]
    Params(u32),
    #[error("the parameter lengths {id} + {payload} do not add up to the event's {len} bytes")]
    ParamLengths { id: u32, payload: u32, len: usize },
}

/// One plugin event, owned, with its checked layout.
#[derive(Clone, PartialEq, Eq)]
pub struct PluginEvent {
    bytes: Vec<u8>,
    /// The event's number in its stream (`evt.num`), from 1.
    pub number: u64,
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

impl PluginEvent {
    /// Checks that `bytes` is one whole plugin event.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<PluginEvent, EventError> {
        if bytes.len() < PAYLOAD_START {
            return Err(EventError::Short(bytes.len()));
        }
        let said = u32_at(&bytes, 16) as usize;
        if said != bytes.len() {
            return Err(EventError::Length {
                said,
                actual: bytes.len(),
            });
        }
        let kind = u16_at(&bytes, 20);
        if kind != PLUGINEVENT_E {
            return Err(EventError::Type(kind));
        }
        let nparams = u32_at(&bytes, 22);
        if nparams != 2 {
            return Err(EventError::Params(nparams));
        }
        let id_len = u32_at(&bytes, HEADER_LEN);
        let payload_len = u32_at(&bytes, HEADER_LEN + 4);
        let total = (HEADER_LEN + PARAMS_LEN) as u64 + u64::from(id_len) + u64::from(payload_len);
        if id_len != 4 || total != bytes.len() as u64 {
            return Err(EventError::ParamLengths {
                id: id_len,
                payload: payload_len,
                len: bytes.len(),
            });
        }
        Ok(PluginEvent { bytes, number: 0 })
    }

    /// Builds an event from its parts (for captures and tests).
    pub fn new(ts: u64, tid: u64, plugin_id: u32, payload: &[u8]) -> PluginEvent {
        let len = PAYLOAD_START + payload.len();
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(&ts.to_le_bytes());
        bytes.extend_from_slice(&tid.to_le_bytes());
        bytes.extend_from_slice(&(len as u32).to_le_bytes());
        bytes.extend_from_slice(&PLUGINEVENT_E.to_le_bytes());
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&4u32.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&plugin_id.to_le_bytes());
        bytes.extend_from_slice(payload);
        PluginEvent { bytes, number: 0 }
    }

    /// The whole event, header included, as plugins and captures see it.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn ts(&self) -> u64 {
        u64_at(&self.bytes, 0)
    }

    pub fn set_ts(&mut self, ts: u64) {
        self.bytes[0..8].copy_from_slice(&ts.to_le_bytes());
    }

    pub fn tid(&self) -> u64 {
        u64_at(&self.bytes, 8)
    }

    pub fn plugin_id(&self) -> u32 {
        u32_at(&self.bytes, HEADER_LEN + PARAMS_LEN)
    }

    pub fn set_plugin_id(&mut self, id: u32) {
        let at = HEADER_LEN + PARAMS_LEN;
        self.bytes[at..at + 4].copy_from_slice(&id.to_le_bytes());
    }

    pub fn payload(&self) -> &[u8] {
        &self.bytes[PAYLOAD_START..]
    }
}

impl fmt::Debug for PluginEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginEvent")
            .field("number", &self.number)
            .field("ts", &self.ts())
            .field("plugin_id", &self.plugin_id())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_checks_the_scap_layout() {
        let event = PluginEvent::new(7, 0, 999, b"hello");
        assert_eq!(event.bytes().len(), 26 + 8 + 4 + 5);
        let back = PluginEvent::from_bytes(event.bytes().to_vec()).unwrap();
        assert_eq!(
            (back.ts(), back.plugin_id(), back.payload()),
            (7, 999, &b"hello"[..])
        );
    }

    #[test]
    fn refuses_malformed_events() {
        let good = PluginEvent::new(1, 0, 5, b"abc").bytes().to_vec();
        assert!(matches!(
            PluginEvent::from_bytes(good[..20].to_vec()),
            Err(EventError::Short(20))
        ));
        let mut wrong_len = good.clone();
        wrong_len.push(0);
        assert!(matches!(
            PluginEvent::from_bytes(wrong_len),
            Err(EventError::Length { .. })
        ));
        let mut wrong_type = good.clone();
        wrong_type[20] = 1;
        assert!(matches!(
            PluginEvent::from_bytes(wrong_type),
            Err(EventError::Type(_))
        ));
        let mut wrong_params = good.clone();
        wrong_params[22] = 3;
        assert!(matches!(
            PluginEvent::from_bytes(wrong_params),
            Err(EventError::Params(3))
        ));
        let mut wrong_payload = good;
        wrong_payload[30] = 9;
        assert!(matches!(
            PluginEvent::from_bytes(wrong_payload),
            Err(EventError::ParamLengths { .. })
        ));
    }
}
