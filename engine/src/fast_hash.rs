//! A fast non-cryptographic hasher for the tables looked up on every event
//! (threads, fds, enter events by thread id; rule literal sets).
//!
//! The standard SipHash resists collision flooding by whoever picks the
//! keys; here the keys are thread ids, pids and fds the kernel assigns, and
//! string sets built from rule files, while SipHash was a quarter of the
//! instructions spent per event. This is the multiply-rotate scheme the
//! Rust compiler uses for its own tables (a word at a time).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher {
    hash: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // The length in the top byte keeps "a" apart from "a\0".
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            w[7] = rest.len() as u8;
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub type FastBuild = BuildHasherDefault<FastHasher>;
pub type FastMap<K, V> = HashMap<K, V, FastBuild>;
pub type FastSet<K> = HashSet<K, FastBuild>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash_of(v: impl Hash) -> u64 {
        FastBuild::default().hash_one(v)
    }

    #[test]
    fn nearby_keys_spread_and_strings_differ_by_every_byte() {
        let hashes: FastSet<u64> = (0..10_000i64).map(hash_of).collect();
        assert_eq!(hashes.len(), 10_000);
        // hashbrown picks buckets with the low bits and tags with the top 7.
        let tops: FastSet<u64> = (0..1000i64).map(|k| hash_of(k) >> 57).collect();
        assert!(tops.len() > 100, "{} distinct tags", tops.len());
        assert_ne!(hash_of("/etc/passwd"), hash_of("/etc/passwe"));
        assert_ne!(hash_of("abcdefgh1"), hash_of("abcdefgh2"));
        assert_ne!(hash_of("a"), hash_of("a\0"));
    }
}
