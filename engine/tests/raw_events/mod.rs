//! Syscall events built by hand in the current scap layout, for tests
//! that apply them to a state or read their fields.
#![allow(dead_code)]

use peregrine_engine::event::table::event_info;

/// A current-layout event of type `ty` with the named parameters (the
/// others empty); a name the event type does not have fails the test.
pub fn event(ty: u16, ts: u64, tid: u64, params: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let info = event_info(ty).unwrap();
    for (name, _) in params {
        assert!(
            info.params.iter().any(|p| p.name == *name),
            "{} has no parameter {name}",
            info.name
        );
    }
    let vals: Vec<Vec<u8>> = info
        .params
        .iter()
        .map(|p| {
            params
                .iter()
                .find(|(n, _)| *n == p.name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect();
    let mut body = Vec::new();
    for v in &vals {
        body.extend_from_slice(&(v.len() as u16).to_le_bytes());
    }
    for v in &vals {
        body.extend_from_slice(v);
    }
    let mut r = Vec::new();
    r.extend_from_slice(&ts.to_le_bytes());
    r.extend_from_slice(&tid.to_le_bytes());
    r.extend_from_slice(&((26 + body.len()) as u32).to_le_bytes());
    r.extend_from_slice(&ty.to_le_bytes());
    r.extend_from_slice(&(vals.len() as u32).to_le_bytes());
    r.extend_from_slice(&body);
    r
}

pub fn i64b(v: i64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}
pub fn u64b(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}
pub fn u32b(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}
pub fn s(v: &str) -> Vec<u8> {
    [v.as_bytes(), b"\0"].concat()
}
