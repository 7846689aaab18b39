//! The per-CPU verdict counters of the XDP program, one per verdict and reason.
//!
//! The discriminants of [`Counter`] are the `XLNS_CNT_*` indices of
//! `src/bpf/xlns_common.h`; a unit test reads that header and fails when they disagree.
//! Every frame the program sees increments exactly one counter.

/// One verdict/reason counter of the XDP program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Counter {
    /// Access: L2TP data carrying PPP IPv4/IPv6, redirected to the queue's XSK.
    RedirectData = 0,
    /// Core: destination in a subscriber prefix, redirected to the queue's XSK.
    RedirectCore = 1,
    /// Access: selected for redirect, but no XSK is registered for the queue: passed.
    PassNoXskData = 2,
    /// Core: selected for redirect, but no XSK is registered for the queue: passed.
    PassNoXskCore = 3,
    /// Access: L2TP control message (T bit, RFC 2661 §3.1).
    PassControl = 4,
    /// Access: L2TP data carrying a PPP control protocol (0x8000 and above: LCP, PAP,
    /// CHAP, IPCP, IPv6CP, CCP, ...; RFC 1661 §2).
    PassPppControl = 5,
    /// Access: L2TP data carrying another PPP network protocol (VJ, MP, ...).
    PassPppOther = 6,
    /// Access: UDP to the L2TP port whose version is not 2 (L2TPv3, ...).
    PassL2tpVersion = 7,
    /// Access: a first IPv4 fragment (MF set) to the L2TP port: the kernel reassembles it.
    PassFragment = 8,
    /// Neither IPv4 nor IPv6 (ARP, LLDP, ...).
    PassNonIp = 9,
    /// IPv6 neighbour discovery (ICMPv6 133-137, RFC 4861 §4).
    PassNd = 10,
    /// IP traffic that no enabled rule selects.
    PassOther = 11,
    /// Truncated or inconsistent headers.
    PassMalformed = 12,
}

/// Number of counters (`XLNS_CNT_MAX`).
pub const COUNTER_COUNT: usize = 13;

impl Counter {
    /// Every counter, in index order.
    pub const ALL: [Counter; COUNTER_COUNT] = [
        Counter::RedirectData,
        Counter::RedirectCore,
        Counter::PassNoXskData,
        Counter::PassNoXskCore,
        Counter::PassControl,
        Counter::PassPppControl,
        Counter::PassPppOther,
        Counter::PassL2tpVersion,
        Counter::PassFragment,
        Counter::PassNonIp,
        Counter::PassNd,
        Counter::PassOther,
        Counter::PassMalformed,
    ];

    /// Index in the `counters` map.
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// Stable name, for metrics and logs ("redirect-data", "pass-malformed", ...).
    pub const fn name(self) -> &'static str {
        match self {
            Counter::RedirectData => "redirect-data",
            Counter::RedirectCore => "redirect-core",
            Counter::PassNoXskData => "pass-no-xsk-data",
            Counter::PassNoXskCore => "pass-no-xsk-core",
            Counter::PassControl => "pass-control",
            Counter::PassPppControl => "pass-ppp-control",
            Counter::PassPppOther => "pass-ppp-other",
            Counter::PassL2tpVersion => "pass-l2tp-version",
            Counter::PassFragment => "pass-fragment",
            Counter::PassNonIp => "pass-non-ip",
            Counter::PassNd => "pass-nd",
            Counter::PassOther => "pass-other",
            Counter::PassMalformed => "pass-malformed",
        }
    }
}

/// A snapshot of all counters, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    values: [u64; COUNTER_COUNT],
}

impl Counters {
    /// A snapshot from per-counter values in index order.
    pub const fn from_values(values: [u64; COUNTER_COUNT]) -> Counters {
        Counters { values }
    }

    /// The value of one counter.
    pub const fn get(&self, counter: Counter) -> u64 {
        self.values[counter as usize]
    }

    /// Sum of all counters: the number of frames the program has seen.
    pub fn total(&self) -> u64 {
        self.values.iter().sum()
    }

    /// Every counter with its value, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.iter().map(|&c| (c, self.get(c)))
    }

    /// The counters that grew from `earlier` to `self`, with the increase (wrapping).
    pub fn delta(&self, earlier: &Counters) -> Counters {
        let mut values = [0; COUNTER_COUNT];
        for (i, v) in values.iter_mut().enumerate() {
            *v = self.values[i].wrapping_sub(earlier.values[i]);
        }
        Counters { values }
    }
}
