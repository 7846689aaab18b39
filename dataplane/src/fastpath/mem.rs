//! In-memory implementations of [`Sessions`] and [`SessionStats`], for tests, benches and
//! until the shared-memory reader is plugged in.
//!
//! Built once, read per packet: lookups never allocate. The hash is a multiplicative
//! mix (FxHash-like), not SipHash: keys are ids and addresses, and SipHash would dominate
//! the per-packet cost.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::{SessionStats, Sessions, downstream_of};
use crate::session::{Downstream, SessionHead, SessionRecord, TEMPLATE_CAPACITY, flags, mask_v4};

/// A fast, non-cryptographic hasher for integer keys.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.mix(u64::from(byte));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    fn write_u128(&mut self, value: u128) {
        self.mix(value as u64);
        self.mix((value >> 64) as u64);
    }
}

type IdMap<K> = HashMap<K, u32, BuildHasherDefault<IdHasher>>;

fn mask_v6(addr: [u8; 16], len: u8) -> u128 {
    let value = u128::from_be_bytes(addr);
    match len {
        0 => 0,
        len if len >= 128 => value,
        len => value & !(u128::MAX >> len),
    }
}

/// Sessions in memory: a slot vector and four indexes.
#[derive(Debug, Default)]
pub struct MemSessions {
    records: Vec<SessionRecord>,
    /// The records' heads, apart: the upstream path reads only these.
    heads: Vec<SessionHead>,
    upstream: IdMap<u32>,
    v4: IdMap<u32>,
    /// Framed-Route prefixes: one map per prefix length, longest first.
    routes: Vec<(u8, IdMap<u32>)>,
    /// IPv6 prefixes (own and further): one map per prefix length, longest first.
    v6: Vec<(u8, IdMap<u128>)>,
}

/// The map for prefix length `len` in `maps` (sorted longest first), created if needed.
fn map_for<K>(maps: &mut Vec<(u8, IdMap<K>)>, len: u8) -> Option<&mut IdMap<K>> {
    if !maps.iter().any(|(l, _)| *l == len) {
        maps.push((len, IdMap::default()));
        maps.sort_by_key(|entry| core::cmp::Reverse(entry.0));
    }
    maps.iter_mut().find(|(l, _)| *l == len).map(|(_, map)| map)
}

impl MemSessions {
    /// An empty table with room for `capacity` sessions.
    pub fn with_capacity(capacity: usize) -> MemSessions {
        MemSessions {
            records: Vec::with_capacity(capacity),
            heads: Vec::with_capacity(capacity),
            upstream: IdMap::with_capacity_and_hasher(capacity, Default::default()),
            v4: IdMap::with_capacity_and_hasher(capacity, Default::default()),
            routes: Vec::new(),
            v6: Vec::new(),
        }
    }

    /// Add a session; returns its slot. A later session with the same key replaces the
    /// earlier one in that index. The template layout is derived as the shared-memory
    /// writer does it.
    pub fn insert(&mut self, mut record: SessionRecord) -> u32 {
        record.derive_template_layout();
        let slot = self.records.len() as u32;
        self.records.push(record);
        self.heads.push(record.head());
        self.upstream.insert(record.upstream_key(), slot);
        if record.has(flags::HAS_IPV4) {
            self.v4
                .insert(u32::from_be_bytes(record.subscriber_v4), slot);
        }
        for (prefix, len) in record.routes_v4() {
            if let Some(map) = map_for(&mut self.routes, len) {
                map.insert(u32::from_be_bytes(prefix), slot);
            }
        }
        if record.has(flags::HAS_IPV6) {
            let len = record.subscriber_v6_len.min(128);
            if let Some(map) = map_for(&mut self.v6, len) {
                map.insert(mask_v6(record.subscriber_v6_prefix, len), slot);
            }
        }
        for (upper, len) in record.prefixes_v6() {
            if let Some(map) = map_for(&mut self.v6, len) {
                map.insert(u128::from(upper) << 64, slot);
            }
        }
        slot
    }

    /// The record in `slot`.
    pub fn get(&self, slot: u32) -> Option<&SessionRecord> {
        self.records.get(slot as usize)
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// No sessions.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    #[inline]
    fn record(&self, slot: u32) -> Option<(u32, SessionRecord)> {
        self.records
            .get(slot as usize)
            .map(|record| (slot, *record))
    }

    #[inline]
    fn slot_v4(&self, dst: [u8; 4]) -> Option<u32> {
        let addr = u32::from_be_bytes(dst);
        if let Some(slot) = self.v4.get(&addr) {
            return Some(*slot);
        }
        self.routes
            .iter()
            .find_map(|(len, map)| map.get(&mask_v4(addr, *len)).copied())
    }

    #[inline]
    fn slot_v6(&self, dst: [u8; 16]) -> Option<u32> {
        self.v6
            .iter()
            .find_map(|(len, map)| map.get(&mask_v6(dst, *len)).copied())
    }
}

impl Sessions for MemSessions {
    #[inline(always)]
    fn by_upstream(&self, tunnel: u16, session: u16) -> Option<(u32, SessionHead)> {
        let key = (u32::from(tunnel) << 16) | u32::from(session);
        let slot = *self.upstream.get(&key)?;
        self.heads.get(slot as usize).map(|head| (slot, *head))
    }

    #[inline]
    fn record(&self, slot: u32, key: u32) -> Option<SessionRecord> {
        self.records
            .get(slot as usize)
            .filter(|record| record.upstream_key() == key)
            .copied()
    }

    #[inline(always)]
    fn by_v4(&self, dst: [u8; 4]) -> Option<(u32, SessionRecord)> {
        self.record(self.slot_v4(dst)?)
    }

    #[inline]
    fn by_v6(&self, dst: [u8; 16]) -> Option<(u32, SessionRecord)> {
        self.record(self.slot_v6(dst)?)
    }

    #[inline(always)]
    fn down_v4(&self, dst: [u8; 4], out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        let slot = self.slot_v4(dst)?;
        Some(downstream_of(slot, self.records.get(slot as usize)?, out))
    }

    #[inline(always)]
    fn down_v6(&self, dst: [u8; 16], out: &mut [u8; TEMPLATE_CAPACITY]) -> Option<Downstream> {
        let slot = self.slot_v6(dst)?;
        Some(downstream_of(slot, self.records.get(slot as usize)?, out))
    }
}

/// One session's counters as one worker keeps them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SlotCounters {
    pub up_packets: u64,
    pub up_bytes: u64,
    pub down_packets: u64,
    pub down_bytes: u64,
    /// Next downstream Ns.
    pub ns: u16,
    /// The session (record epoch) `ns` counts for.
    pub epoch: u32,
}

/// [`SessionStats`] over a pre-sized vector indexed by slot; slots beyond it are not
/// counted (and get Ns 0).
#[derive(Debug, Default, Clone)]
pub struct SlotStats {
    slots: Vec<SlotCounters>,
}

impl SlotStats {
    /// Room for slots `0..slots`.
    pub fn new(slots: usize) -> SlotStats {
        SlotStats {
            slots: vec![SlotCounters::default(); slots],
        }
    }

    /// The counters of `slot`.
    pub fn get(&self, slot: u32) -> Option<&SlotCounters> {
        self.slots.get(slot as usize)
    }

    /// Reset `slot` (a new session took it).
    pub fn reset(&mut self, slot: u32) {
        if let Some(counters) = self.slots.get_mut(slot as usize) {
            *counters = SlotCounters::default();
        }
    }
}

impl SessionStats for SlotStats {
    #[inline]
    fn upstream(&mut self, slot: u32, bytes: usize) {
        if let Some(counters) = self.slots.get_mut(slot as usize) {
            counters.up_packets += 1;
            counters.up_bytes += bytes as u64;
        }
    }

    #[inline]
    fn downstream(&mut self, slot: u32, bytes: usize) {
        if let Some(counters) = self.slots.get_mut(slot as usize) {
            counters.down_packets += 1;
            counters.down_bytes += bytes as u64;
        }
    }

    #[inline]
    fn next_ns(&mut self, slot: u32, epoch: u32) -> u16 {
        match self.slots.get_mut(slot as usize) {
            Some(counters) => {
                if counters.epoch != epoch {
                    counters.epoch = epoch;
                    counters.ns = 0;
                }
                let ns = counters.ns;
                counters.ns = ns.wrapping_add(1);
                ns
            }
            None => 0,
        }
    }
}
