//! Named IPv4 address pools with O(1) allocation and release.
//!
//! A pool is a CIDR block (its network and broadcast addresses excluded, except in a /31
//! or /32) or an inclusive range, minus explicit exclusions (the gateway, ...). The free
//! addresses live in a dense array with a position index per address (a "sparse set"):
//! [`Pool::allocate`] pops the last free address, [`Pool::allocate_specific`] and
//! [`Pool::release`] swap-remove or push through the index. Every operation is O(1); the
//! memory is 8 octets per address, so a pool is capped at [`MAX_POOL_SIZE`] addresses.
//! Addresses are first handed out in ascending order; released ones are reused last in,
//! first out.
//!
//! Contract: a refused operation ([`PoolError`]) changes nothing. `used + free == size`
//! always holds and no address is handed out twice.
//!
//! An exhausted pool is [`PoolError::Exhausted`]; the session layer answers the call with
//! a CDN whose Result Code is 4, "Call failed due to lack of appropriate facilities being
//! available (temporary condition)" (RFC 2661 §4.4.2), see [`PoolError::cdn_result`]. A
//! pool that does not exist is a configuration fault: Result Code 5, the permanent form.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::policy::{ResultCode, result_code};

/// The largest pool: 2^22 addresses (32 MiB of index).
pub const MAX_POOL_SIZE: u32 = 1 << 22;

/// Marks an address that is not free (allocated) in the position index.
const USED: u32 = u32::MAX;
/// Marks an excluded address in the position index.
const EXCLUDED: u32 = u32::MAX - 1;

/// A refused pool operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// No free address is left.
    #[error("pool {pool} exhausted ({size} addresses in use)")]
    Exhausted { pool: String, size: u32 },
    /// The address is outside the pool's range.
    #[error("{address} is not in pool {pool}")]
    NotInPool { pool: String, address: Ipv4Addr },
    /// The address is excluded from the pool (network, broadcast, gateway, ...).
    #[error("{address} is excluded from pool {pool}")]
    Excluded { pool: String, address: Ipv4Addr },
    /// `allocate_specific` of an address already in use.
    #[error("{address} of pool {pool} is already allocated")]
    InUse { pool: String, address: Ipv4Addr },
    /// `release` of an address that is not allocated (a double release).
    #[error("{address} of pool {pool} is not allocated")]
    NotAllocated { pool: String, address: Ipv4Addr },
    /// No pool of that name.
    #[error("no pool named {0}")]
    UnknownPool(String),
    /// A pool of that name exists already.
    #[error("pool {0} defined twice")]
    DuplicatePool(String),
    /// The range is empty, reversed or over [`MAX_POOL_SIZE`].
    #[error("pool {pool}: bad range: {reason}")]
    BadRange { pool: String, reason: &'static str },
}

impl PoolError {
    /// The CDN Result Code for a session refused because of this error (RFC 2661
    /// §4.4.2): 4 (lack of facilities, temporary) for an exhausted pool, 5 (permanent)
    /// for anything else, which is a configuration fault.
    pub fn cdn_result(&self) -> ResultCode {
        match self {
            PoolError::Exhausted { .. } => ResultCode::SESSION_NO_RESOURCES,
            _ => ResultCode {
                result: result_code::CDN_PERMANENT_LACK_OF_FACILITIES,
                error: None,
            },
        }
    }
}

/// Live counters of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolCounters {
    /// Addresses that can be handed out (range minus exclusions).
    pub size: u32,
    /// Addresses allocated now.
    pub used: u32,
    /// `allocate` calls refused because the pool was exhausted.
    pub exhausted: u64,
}

/// One named pool.
#[derive(Debug, Clone)]
pub struct Pool {
    name: String,
    first: u32,
    /// Free offsets (address - first).
    free: Vec<u32>,
    /// Per offset: its index in `free`, or [`USED`] or [`EXCLUDED`].
    position: Vec<u32>,
    size: u32,
    exhausted: u64,
}

impl Pool {
    /// A pool over a CIDR block: every address but the network and broadcast addresses
    /// (a /31 and a /32 keep all theirs, RFC 3021), minus `exclude`.
    pub fn from_cidr(name: &str, net: Ipv4Net, exclude: &[Ipv4Addr]) -> Result<Pool, PoolError> {
        let (mut first, mut last) = (u32::from(net.network()), u32::from(net.broadcast()));
        if net.prefix_len() < 31 {
            first += 1;
            last -= 1;
        }
        Pool::from_range(name, first.into(), last.into(), exclude)
    }

    /// A pool over the inclusive range `first..=last`, minus `exclude` (exclusions
    /// outside the range are ignored).
    pub fn from_range(
        name: &str,
        first: Ipv4Addr,
        last: Ipv4Addr,
        exclude: &[Ipv4Addr],
    ) -> Result<Pool, PoolError> {
        let bad = |reason| PoolError::BadRange {
            pool: name.to_owned(),
            reason,
        };
        let (first, last) = (u32::from(first), u32::from(last));
        if last < first {
            return Err(bad("last address below first"));
        }
        let span = last - first;
        if span >= MAX_POOL_SIZE {
            return Err(bad("more than 2^22 addresses"));
        }
        let count = span + 1;
        let mut position = vec![0u32; count as usize];
        for address in exclude {
            if let Some(offset) = u32::from(*address)
                .checked_sub(first)
                .filter(|&o| o < count)
            {
                position[offset as usize] = EXCLUDED;
            }
        }
        // Descending, so that `pop` hands out the lowest address first.
        let free: Vec<u32> = (0..count)
            .rev()
            .filter(|&o| position[o as usize] != EXCLUDED)
            .collect();
        if free.is_empty() {
            return Err(bad("no address left after exclusions"));
        }
        for (index, &offset) in free.iter().enumerate() {
            position[offset as usize] = index as u32;
        }
        Ok(Pool {
            name: name.to_owned(),
            first,
            size: free.len() as u32,
            free,
            position,
            exhausted: 0,
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counters.
    pub fn counters(&self) -> PoolCounters {
        PoolCounters {
            size: self.size,
            used: self.size - self.free.len() as u32,
            exhausted: self.exhausted,
        }
    }

    /// Number of free addresses.
    pub fn free(&self) -> u32 {
        self.free.len() as u32
    }

    /// Whether `address` lies in the pool's range (excluded or not).
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        self.offset(address).is_some()
    }

    /// Whether `address` is allocated now.
    pub fn is_allocated(&self, address: Ipv4Addr) -> bool {
        self.offset(address)
            .is_some_and(|o| self.position[o as usize] == USED)
    }

    /// The allocated addresses, ascending. O(size of the range).
    pub fn allocated(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.position
            .iter()
            .enumerate()
            .filter(|(_, p)| **p == USED)
            .map(|(offset, _)| Ipv4Addr::from(self.first + offset as u32))
    }

    fn offset(&self, address: Ipv4Addr) -> Option<u32> {
        u32::from(address)
            .checked_sub(self.first)
            .filter(|&o| (o as usize) < self.position.len())
    }

    /// Hand out a free address.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, PoolError> {
        let Some(offset) = self.free.pop() else {
            self.exhausted += 1;
            return Err(PoolError::Exhausted {
                pool: self.name.clone(),
                size: self.size,
            });
        };
        self.position[offset as usize] = USED;
        Ok(Ipv4Addr::from(self.first + offset))
    }

    /// Hand out this address (a user's fixed address inside the pool).
    pub fn allocate_specific(&mut self, address: Ipv4Addr) -> Result<(), PoolError> {
        let offset = self.checked_offset(address)?;
        let index = match self.position[offset as usize] {
            USED => {
                return Err(PoolError::InUse {
                    pool: self.name.clone(),
                    address,
                });
            }
            index => index as usize,
        };
        self.free.swap_remove(index);
        if let Some(&moved) = self.free.get(index) {
            self.position[moved as usize] = index as u32;
        }
        self.position[offset as usize] = USED;
        Ok(())
    }

    /// Give an allocated address back.
    pub fn release(&mut self, address: Ipv4Addr) -> Result<(), PoolError> {
        let offset = self.checked_offset(address)?;
        if self.position[offset as usize] != USED {
            return Err(PoolError::NotAllocated {
                pool: self.name.clone(),
                address,
            });
        }
        self.position[offset as usize] = self.free.len() as u32;
        self.free.push(offset);
        Ok(())
    }

    /// The offset of an address in range and not excluded.
    fn checked_offset(&self, address: Ipv4Addr) -> Result<u32, PoolError> {
        let offset = self.offset(address).ok_or_else(|| PoolError::NotInPool {
            pool: self.name.clone(),
            address,
        })?;
        if self.position[offset as usize] == EXCLUDED {
            return Err(PoolError::Excluded {
                pool: self.name.clone(),
                address,
            });
        }
        Ok(offset)
    }
}

/// The pools by name.
#[derive(Debug, Clone, Default)]
pub struct Pools {
    by_name: HashMap<String, Pool>,
    /// Leases that a reload ([`Pools::reload`]) could not put back into the pool they are
    /// held under (the pool was removed or shrunk): (held pool name, address) -> the pool
    /// that now reserves the address so that it is not handed out twice, if any does.
    stranded: HashMap<(String, Ipv4Addr), Option<String>>,
}

/// What [`Pools::reload`] did with the live leases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolReload {
    /// Leases now counted in the new pool of the same name.
    pub carried: u32,
    /// Leases outside every new pool of their name: kept until their session ends.
    pub stranded: u32,
}

impl Pools {
    /// No pools.
    pub fn new() -> Pools {
        Pools::default()
    }

    /// Add a pool; its name must be new.
    pub fn add(&mut self, pool: Pool) -> Result<(), PoolError> {
        if self.by_name.contains_key(pool.name()) {
            return Err(PoolError::DuplicatePool(pool.name.clone()));
        }
        self.by_name.insert(pool.name.clone(), pool);
        Ok(())
    }

    /// The pool of this name.
    pub fn get(&self, name: &str) -> Option<&Pool> {
        self.by_name.get(name)
    }

    fn pool_mut(&mut self, name: &str) -> Result<&mut Pool, PoolError> {
        self.by_name
            .get_mut(name)
            .ok_or_else(|| PoolError::UnknownPool(name.to_owned()))
    }

    /// Allocate from the named pool.
    pub fn allocate(&mut self, name: &str) -> Result<Ipv4Addr, PoolError> {
        self.pool_mut(name)?.allocate()
    }

    /// Allocate this address from the named pool.
    pub fn allocate_specific(&mut self, name: &str, address: Ipv4Addr) -> Result<(), PoolError> {
        self.pool_mut(name)?.allocate_specific(address)
    }

    /// Release an address to the named pool (or a lease a reload stranded).
    pub fn release(&mut self, name: &str, address: Ipv4Addr) -> Result<(), PoolError> {
        if let Some(reserved) = self.stranded.remove(&(name.to_owned(), address)) {
            return match reserved {
                Some(pool) => self.pool_mut(&pool)?.release(address),
                None => Ok(()),
            };
        }
        self.pool_mut(name)?.release(address)
    }

    /// The name of the pool whose range holds `address` (pools should not overlap; the
    /// first match in no particular order otherwise). O(number of pools).
    pub fn pool_of(&self, address: Ipv4Addr) -> Option<&str> {
        self.by_name
            .values()
            .find(|p| p.contains(address))
            .map(Pool::name)
    }

    /// The pools, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Pool> {
        self.by_name.values()
    }

    /// Replaces these pools with `new` (a configuration reload) without losing a lease:
    ///
    /// * a lease whose pool still exists and still holds the address is allocated in the
    ///   new pool (a grown or unchanged pool);
    /// * any other lease (its pool was removed, shrunk, or now excludes the address) is
    ///   *stranded*: it stays valid until its session releases it, and if another new pool
    ///   covers the address, that pool reserves it until then, so that it is never handed
    ///   out twice.
    ///
    /// `exhausted` counters carry over to the new pool of the same name.
    pub fn reload(&mut self, mut new: Pools) -> PoolReload {
        let mut leases: Vec<(String, Ipv4Addr)> = Vec::new();
        for pool in self.by_name.values() {
            leases.extend(pool.allocated().map(|a| (pool.name.clone(), a)));
            if let Some(next) = new.by_name.get_mut(&pool.name) {
                next.exhausted = pool.exhausted;
            }
        }
        leases.extend(self.stranded.keys().cloned());
        let mut report = PoolReload::default();
        for (name, address) in leases {
            if new.allocate_specific(&name, address).is_ok() {
                report.carried += 1;
                continue;
            }
            report.stranded += 1;
            let reserved = new
                .by_name
                .values_mut()
                .find(|p| p.name != name && p.contains(address))
                .and_then(|p| p.allocate_specific(address).ok().map(|()| p.name.clone()));
            new.stranded.insert((name, address), reserved);
        }
        *self = new;
        report
    }

    /// Leases kept from pools a reload removed or shrunk, until their sessions end.
    pub fn stranded(&self) -> usize {
        self.stranded.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_excludes_network_broadcast_and_gateway() {
        let mut pool =
            Pool::from_cidr("p", "10.0.0.0/29".parse().unwrap(), &[ip("10.0.0.1")]).unwrap();
        assert_eq!(pool.counters().size, 5);
        let got: Vec<_> = (0..5).map(|_| pool.allocate().unwrap()).collect();
        assert_eq!(
            got,
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"].map(ip)
        );
        assert_eq!(
            pool.allocate(),
            Err(PoolError::Exhausted {
                pool: "p".into(),
                size: 5
            })
        );
        assert_eq!(pool.allocate().unwrap_err().cdn_result().result, 4);
        assert_eq!(
            pool.counters(),
            PoolCounters {
                size: 5,
                used: 5,
                exhausted: 2
            }
        );
        pool.release(ip("10.0.0.4")).unwrap();
        assert_eq!(pool.allocate().unwrap(), ip("10.0.0.4"));
        let slash31 = Pool::from_cidr("q", "10.0.0.0/31".parse().unwrap(), &[]).unwrap();
        assert_eq!(slash31.counters().size, 2);
    }

    #[test]
    fn errors_change_nothing() {
        let mut pool =
            Pool::from_range("r", ip("192.0.2.10"), ip("192.0.2.20"), &[ip("192.0.2.15")]).unwrap();
        assert_eq!(pool.counters().size, 10);
        let name = || "r".to_owned();
        assert_eq!(
            pool.release(ip("192.0.2.11")),
            Err(PoolError::NotAllocated {
                pool: name(),
                address: ip("192.0.2.11")
            })
        );
        assert_eq!(
            pool.release(ip("192.0.2.9")),
            Err(PoolError::NotInPool {
                pool: name(),
                address: ip("192.0.2.9")
            })
        );
        assert_eq!(
            pool.allocate_specific(ip("192.0.2.15")),
            Err(PoolError::Excluded {
                pool: name(),
                address: ip("192.0.2.15")
            })
        );
        assert_eq!(
            pool.release(ip("192.0.2.15")),
            Err(PoolError::Excluded {
                pool: name(),
                address: ip("192.0.2.15")
            })
        );
        pool.allocate_specific(ip("192.0.2.10")).unwrap();
        assert_eq!(
            pool.allocate_specific(ip("192.0.2.10")),
            Err(PoolError::InUse {
                pool: name(),
                address: ip("192.0.2.10")
            })
        );
        assert!(pool.is_allocated(ip("192.0.2.10")));
        // The specific allocation took the lowest address; the next is .11.
        assert_eq!(pool.allocate().unwrap(), ip("192.0.2.11"));
        pool.release(ip("192.0.2.10")).unwrap();
        assert_eq!(
            pool.release(ip("192.0.2.10")),
            Err(PoolError::NotAllocated {
                pool: name(),
                address: ip("192.0.2.10")
            })
        );
        assert_eq!(pool.counters().used, 1);
        assert!(pool.allocate_specific(ip("192.0.2.20")).is_ok());
        assert_eq!(pool.free(), 8);
    }

    #[test]
    fn bad_ranges() {
        assert!(matches!(
            Pool::from_range("x", ip("10.0.0.2"), ip("10.0.0.1"), &[]),
            Err(PoolError::BadRange { .. })
        ));
        assert!(matches!(
            Pool::from_cidr("x", "10.0.0.0/8".parse().unwrap(), &[]),
            Err(PoolError::BadRange { .. })
        ));
        assert!(matches!(
            Pool::from_range("x", ip("10.0.0.1"), ip("10.0.0.1"), &[ip("10.0.0.1")]),
            Err(PoolError::BadRange { .. })
        ));
        assert!(Pool::from_cidr("x", "10.0.0.0/10".parse().unwrap(), &[]).is_ok());
    }

    #[test]
    fn registry() {
        let mut pools = Pools::new();
        pools
            .add(Pool::from_cidr("a", "10.1.0.0/30".parse().unwrap(), &[]).unwrap())
            .unwrap();
        pools
            .add(Pool::from_cidr("b", "10.2.0.0/30".parse().unwrap(), &[]).unwrap())
            .unwrap();
        assert_eq!(
            pools.add(Pool::from_cidr("a", "10.3.0.0/30".parse().unwrap(), &[]).unwrap()),
            Err(PoolError::DuplicatePool("a".into()))
        );
        assert_eq!(pools.allocate("a").unwrap(), ip("10.1.0.1"));
        assert_eq!(pools.allocate("b").unwrap(), ip("10.2.0.1"));
        pools.allocate_specific("b", ip("10.2.0.2")).unwrap();
        assert_eq!(pools.pool_of(ip("10.2.0.2")), Some("b"));
        assert_eq!(pools.pool_of(ip("10.9.0.2")), None);
        let unknown = pools.allocate("c").unwrap_err();
        assert_eq!(unknown, PoolError::UnknownPool("c".into()));
        assert_eq!(unknown.cdn_result().result, 5);
        assert!(matches!(
            pools.allocate("b"),
            Err(PoolError::Exhausted { .. })
        ));
        pools.release("b", ip("10.2.0.1")).unwrap();
        assert!(pools.release("a", ip("10.2.0.1")).is_err());
        assert_eq!(pools.get("b").unwrap().counters().used, 1);
        assert_eq!(pools.iter().count(), 2);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Allocate,
        Specific(u8),
        Release(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Allocate),
            any::<u8>().prop_map(Op::Specific),
            any::<u8>().prop_map(Op::Release),
        ]
    }

    proptest! {
        /// Any sequence keeps used + free == size, never hands out an address twice,
        /// and refuses exactly what a model set refuses.
        #[test]
        fn any_sequence_keeps_the_invariants(ops in proptest::collection::vec(op(), 0..300)) {
            // 10.0.0.0/27 minus .1 and .7: 28 addresses; offsets 0..=40 cover the range
            // and beyond it.
            let mut pool = Pool::from_cidr("p", "10.0.0.0/27".parse().unwrap(), &[ip("10.0.0.1"), ip("10.0.0.7")]).unwrap();
            let valid = |a: Ipv4Addr| {
                let o = u32::from(a) - u32::from(ip("10.0.0.0"));
                (1..=30).contains(&o) && o != 1 && o != 7
            };
            let mut model: HashSet<Ipv4Addr> = HashSet::new();
            for op in ops {
                match op {
                    Op::Allocate => match pool.allocate() {
                        Ok(a) => {
                            prop_assert!(valid(a));
                            prop_assert!(model.insert(a), "{} handed out twice", a);
                        }
                        Err(e) => {
                            prop_assert_eq!(model.len(), 28);
                            let exhausted = matches!(e, PoolError::Exhausted { .. });
                            prop_assert!(exhausted);
                        }
                    },
                    Op::Specific(n) => {
                        let a = Ipv4Addr::from(u32::from(ip("10.0.0.0")) + u32::from(n % 41));
                        let result = pool.allocate_specific(a);
                        prop_assert_eq!(result.is_ok(), valid(a) && !model.contains(&a));
                        if result.is_ok() {
                            model.insert(a);
                        }
                    }
                    Op::Release(n) => {
                        let a = Ipv4Addr::from(u32::from(ip("10.0.0.0")) + u32::from(n % 41));
                        let result = pool.release(a);
                        prop_assert_eq!(result.is_ok(), model.remove(&a));
                    }
                }
                let c = pool.counters();
                prop_assert_eq!(c.size, 28);
                prop_assert_eq!(c.used as usize, model.len());
                prop_assert_eq!(c.used + pool.free(), c.size);
                for a in &model {
                    prop_assert!(pool.is_allocated(*a));
                }
            }
        }
    }
}

#[cfg(test)]
mod reload_tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn pools(list: &[(&str, &str)]) -> Pools {
        let mut p = Pools::new();
        for (name, cidr) in list {
            p.add(Pool::from_cidr(name, cidr.parse().unwrap(), &[]).unwrap())
                .unwrap();
        }
        p
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn grown_pool_keeps_its_leases() {
        let mut p = pools(&[("a", "10.0.0.0/30")]);
        let first = p.allocate("a").unwrap();
        let second = p.allocate("a").unwrap();
        assert!(p.allocate("a").is_err());
        let report = p.reload(pools(&[("a", "10.0.0.0/29"), ("b", "10.1.0.0/30")]));
        assert_eq!(
            report,
            PoolReload {
                carried: 2,
                stranded: 0
            }
        );
        let a = p.get("a").unwrap();
        assert!(a.is_allocated(first) && a.is_allocated(second));
        assert_eq!(a.counters().used, 2);
        // The exhausted count carried over, the grown range hands out new addresses.
        assert_eq!(a.counters().exhausted, 1);
        for _ in 0..4 {
            let next = p.allocate("a").unwrap();
            assert!(next != first && next != second);
        }
        assert!(p.get("b").is_some());
        p.release("a", first).unwrap();
    }

    #[test]
    fn removed_and_shrunk_pools_strand_leases_until_released() {
        let mut p = pools(&[("a", "10.0.0.0/29"), ("b", "10.1.0.0/30")]);
        let mut a = Vec::new();
        for _ in 0..6 {
            a.push(p.allocate("a").unwrap());
        }
        let b = p.allocate("b").unwrap();
        // "a" shrinks to a /30 (10.0.0.1 and .2 stay), "b" goes, "c" takes over b's range.
        let report = p.reload(pools(&[("a", "10.0.0.0/30"), ("c", "10.1.0.0/30")]));
        assert_eq!(
            report,
            PoolReload {
                carried: 2,
                stranded: 5
            }
        );
        assert_eq!(p.stranded(), 5);
        // b's lease is reserved in c: c cannot hand it out twice.
        assert!(p.get("c").unwrap().is_allocated(b));
        let other = p.allocate("c").unwrap();
        assert_ne!(other, b);
        assert!(p.allocate("c").is_err());
        // Releasing under the old names works and frees the reservation.
        p.release("b", b).unwrap();
        assert!(!p.get("c").unwrap().is_allocated(b));
        for addr in &a {
            p.release("a", *addr).unwrap();
        }
        assert_eq!(p.stranded(), 0);
        assert_eq!(p.get("a").unwrap().counters().used, 0);
        // A second release is still refused.
        assert!(p.release("a", ip("10.0.0.1")).is_err());
    }

    #[test]
    fn stranded_leases_survive_a_second_reload() {
        let mut p = pools(&[("a", "10.0.0.0/30")]);
        let x = p.allocate("a").unwrap();
        p.reload(pools(&[]));
        assert_eq!(p.stranded(), 1);
        // "a" comes back: the stranded lease returns into it.
        let report = p.reload(pools(&[("a", "10.0.0.0/30")]));
        assert_eq!(
            report,
            PoolReload {
                carried: 1,
                stranded: 0
            }
        );
        assert!(p.get("a").unwrap().is_allocated(x));
        p.release("a", x).unwrap();
        assert_eq!(p.get("a").unwrap().counters().used, 0);
    }
}
