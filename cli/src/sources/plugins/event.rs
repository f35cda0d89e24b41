//! A plugin event as the plugin API and scap captures carry it: Falco's
//! event header (ts, tid, len, type, nparams: 26 bytes, packed) followed by
//! the 32-bit lengths of the two parameters of PPME_PLUGINEVENT_E, the
//! plugin id (u32) and the payload. An async event a plugin pushes into a
//! plugin source's stream (PPME_ASYNCEVENT_E) has three: the plugin id,
//! the event's name (NUL-terminated) and its data.

use std::fmt;

/// Falco's event type of plugin events (PPME_PLUGINEVENT_E).
pub const PLUGINEVENT_E: u16 = 322;
/// Falco's event type of async events (PPME_ASYNCEVENT_E).
pub const ASYNCEVENT_E: u16 = 402;
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
    #[error("event type {0} is not an async event (402)")]
    AsyncType(u16),
    #[error("an async event has 3 parameters (plugin id, name, data), this one {0}")]
    AsyncParams(u32),
    #[error("the async event's parameters do not add up to its {0} bytes, or its name is not NUL-terminated text")]
    AsyncLayout(usize),
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

    /// Checks that `bytes` is one whole async event: a plugin id of 4
    /// bytes, a name of printable text ending in NUL, and data.
    pub fn from_async_bytes(bytes: Vec<u8>) -> Result<PluginEvent, EventError> {
        const PARAMS: usize = 12;
        if bytes.len() < HEADER_LEN + PARAMS {
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
        if kind != ASYNCEVENT_E {
            return Err(EventError::AsyncType(kind));
        }
        let nparams = u32_at(&bytes, 22);
        if nparams != 3 {
            return Err(EventError::AsyncParams(nparams));
        }
        let lens = [0, 4, 8].map(|at| u64::from(u32_at(&bytes, HEADER_LEN + at)));
        let total = (HEADER_LEN + PARAMS) as u64 + lens.iter().sum::<u64>();
        let bad = EventError::AsyncLayout(bytes.len());
        if lens[0] != 4 || lens[1] == 0 || total != bytes.len() as u64 {
            return Err(bad);
        }
        let event = PluginEvent { bytes, number: 0 };
        let name = event.name_param();
        let text = name.strip_suffix(&[0]).ok_or_else(|| bad.clone())?;
        if text.is_empty() || text.contains(&0) || std::str::from_utf8(text).is_err() {
            return Err(bad);
        }
        Ok(event)
    }

    /// Whether this is an async event.
    pub fn is_async(&self) -> bool {
        self.event_type() == ASYNCEVENT_E
    }

    /// The event type in the header: 322, or 402 for an async event.
    pub fn event_type(&self) -> u16 {
        u16_at(&self.bytes, 20)
    }

    /// Where the parameter values start (after the 2 or 3 lengths).
    fn values_start(&self) -> usize {
        HEADER_LEN + if self.is_async() { 12 } else { PARAMS_LEN }
    }

    /// An async event's name parameter, its NUL included.
    fn name_param(&self) -> &[u8] {
        let start = self.values_start() + 4;
        let len = u32_at(&self.bytes, HEADER_LEN + 4) as usize;
        &self.bytes[start..start + len]
    }

    /// An async event's name (`evt.asynctype`).
    pub fn async_name(&self) -> Option<&str> {
        if !self.is_async() {
            return None;
        }
        let name = self.name_param();
        std::str::from_utf8(&name[..name.len().saturating_sub(1)]).ok()
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

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
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
        u32_at(&self.bytes, self.values_start())
    }

    pub fn set_plugin_id(&mut self, id: u32) {
        let at = self.values_start();
        self.bytes[at..at + 4].copy_from_slice(&id.to_le_bytes());
    }

    /// The payload of a plugin event, the data of an async event.
    pub fn payload(&self) -> &[u8] {
        if self.is_async() {
            let start = self.values_start() + 4 + self.name_param().len();
            &self.bytes[start..]
        } else {
            &self.bytes[PAYLOAD_START..]
        }
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

    fn async_event(name: &[u8], data: &[u8]) -> Vec<u8> {
        let len = HEADER_LEN + 12 + 4 + name.len() + data.len();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&5u64.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&(len as u32).to_le_bytes());
        bytes.extend_from_slice(&ASYNCEVENT_E.to_le_bytes());
        bytes.extend_from_slice(&3u32.to_le_bytes());
        for l in [4, name.len(), data.len()] {
            bytes.extend_from_slice(&(l as u32).to_le_bytes());
        }
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn reads_async_events_and_refuses_bad_names() {
        let mut event = PluginEvent::from_async_bytes(async_event(b"tick\0", b"1 tick")).unwrap();
        assert!(event.is_async());
        assert_eq!(event.async_name(), Some("tick"));
        assert_eq!(event.payload(), b"1 tick");
        event.set_plugin_id(7);
        assert_eq!(event.plugin_id(), 7);
        assert_eq!(event.payload(), b"1 tick");
        for bad in [&b"tick"[..], b"\0", b"ti\0ck\0"] {
            assert!(PluginEvent::from_async_bytes(async_event(bad, b"x")).is_err());
        }
        let plain = PluginEvent::new(1, 0, 5, b"abc");
        assert!(!plain.is_async() && plain.async_name().is_none());
        assert!(PluginEvent::from_async_bytes(plain.bytes().to_vec()).is_err());
    }

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
