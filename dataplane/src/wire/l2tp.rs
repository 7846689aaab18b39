//! The L2TPv2 header (RFC 2661 §3.1), shared by control and data messages.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |          Length (opt)         |
//! |           Tunnel ID           |           Session ID          |
//! |             Ns (opt)          |             Nr (opt)          |
//! |      Offset Size (opt)        |    Offset pad... (opt)
//! ```
//!
//! Contract: [`Packet::new_checked`] (or [`Packet::check_len`]) validates the version,
//! the flag rules for control messages, every optional field the flags announce, the
//! offset pad and the Length field against the buffer. Once it has succeeded no accessor
//! panics. The view never allocates: the data plane calls it per packet.
//!
//! Rules enforced (RFC 2661 §3.1):
//! * Ver must be 2; 3 is reported as [`WireError::L2tpV3`] (RFC 3931 §4.1.2.1), any other
//!   value as [`WireError::BadVersion`] ("packets received with an unknown Ver field MUST
//!   be discarded").
//! * A control message (T=1) must have L=1 and S=1, and O=0 and P=0, else
//!   [`WireError::BadFlags`].
//! * Reserved (x) bits are ignored on receipt and written as 0.
//! * The Length field, when present, must cover the header and fit in the buffer; bytes
//!   after Length (UDP padding) are not part of the payload.
//! * The offset pad must fit in the buffer (and within Length when present).

use super::{Result, WireError};

/// Flag bits of the first 16-bit word.
pub mod flags {
    /// Type: 1 for a control message, 0 for a data message.
    pub const T: u16 = 0x8000;
    /// Length field present.
    pub const L: u16 = 0x4000;
    /// Ns and Nr fields present.
    pub const S: u16 = 0x0800;
    /// Offset Size field present.
    pub const O: u16 = 0x0200;
    /// Priority (data messages only).
    pub const P: u16 = 0x0100;
    /// Version nibble.
    pub const VERSION_MASK: u16 = 0x000f;
    /// The bits RFC 2661 §3.1 reserves (x).
    pub const RESERVED: u16 = 0x30f0 | 0x0400;
}

/// The L2TP version this module speaks.
pub const VERSION: u8 = 2;

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const FLAGS: Field = 0..2;
    /// Length of the two-byte optional fields.
    pub const WORD: usize = 2;
}

/// Length of the fixed part of the header announced by `flags`: flags word, optional
/// Length, Tunnel ID, Session ID, optional Ns and Nr, optional Offset Size. The offset
/// pad (whose size is a field, not a flag) is added by [`Packet::header_len`].
///
/// This is the one place the header layout is derived from the flags.
pub const fn header_len_from_flags(flags_word: u16) -> usize {
    let mut len = 6;
    if flags_word & flags::L != 0 {
        len += 2;
    }
    if flags_word & flags::S != 0 {
        len += 4;
    }
    if flags_word & flags::O != 0 {
        len += 2;
    }
    len
}

/// Byte offsets of the optional fields for a given flags word.
#[derive(Debug, Clone, Copy)]
struct Layout {
    length: Option<usize>,
    tunnel_id: usize,
    ns: Option<usize>,
    offset_size: Option<usize>,
}

impl Layout {
    const fn new(flags_word: u16) -> Layout {
        let mut at = 2;
        let length = if flags_word & flags::L != 0 {
            at += 2;
            Some(2)
        } else {
            None
        };
        let tunnel_id = at;
        at += 4;
        let ns = if flags_word & flags::S != 0 {
            let ns = at;
            at += 4;
            Some(ns)
        } else {
            None
        };
        let offset_size = if flags_word & flags::O != 0 {
            Some(at)
        } else {
            None
        };
        Layout {
            length,
            tunnel_id,
            ns,
            offset_size,
        }
    }
}

/// A read/write wrapper around an L2TP packet buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn read_u16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

fn write_u16(data: &mut [u8], at: usize, value: u16) {
    data[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it. Accessors may panic until
    /// [`check_len`](Self::check_len) has succeeded.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer and validate it (see the module contract).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Validate version, flags, the fields the flags announce, the offset pad and the
    /// Length field (RFC 2661 §3.1).
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < field::FLAGS.end {
            return Err(WireError::Truncated {
                what: "L2TP header",
                needed: field::FLAGS.end,
                available: data.len(),
            });
        }
        let flags_word = read_u16(data, field::FLAGS.start);
        match (flags_word & flags::VERSION_MASK) as u8 {
            VERSION => {}
            3 => return Err(WireError::L2tpV3),
            other => return Err(WireError::BadVersion(other)),
        }
        // RFC 2661 §3.1: L and S MUST be 1, O and P MUST be 0 on control messages.
        if flags_word & flags::T != 0
            && flags_word & (flags::L | flags::S | flags::O | flags::P) != (flags::L | flags::S)
        {
            return Err(WireError::BadFlags {
                what: "L2TP control header",
                flags: flags_word,
            });
        }
        let fixed = header_len_from_flags(flags_word);
        if data.len() < fixed {
            return Err(WireError::Truncated {
                what: "L2TP header",
                needed: fixed,
                available: data.len(),
            });
        }
        let layout = Layout::new(flags_word);
        let end = match layout.length {
            Some(at) => {
                let length = usize::from(read_u16(data, at));
                if length < fixed || length > data.len() {
                    return Err(WireError::BadLength {
                        what: "L2TP Length",
                        value: length,
                    });
                }
                length
            }
            None => data.len(),
        };
        if let Some(at) = layout.offset_size {
            let header = fixed + usize::from(read_u16(data, at));
            if header > end {
                return Err(WireError::Truncated {
                    what: "L2TP offset pad",
                    needed: header,
                    available: end,
                });
            }
        }
        Ok(())
    }

    /// Consume the view and return the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The first 16 bits: flags and version.
    pub fn flags_word(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLAGS.start)
    }

    fn layout(&self) -> Layout {
        Layout::new(self.flags_word())
    }

    /// The Ver field.
    pub fn version(&self) -> u8 {
        (self.flags_word() & flags::VERSION_MASK) as u8
    }

    /// T bit: a control message.
    pub fn is_control(&self) -> bool {
        self.flags_word() & flags::T != 0
    }

    /// L bit: the Length field is present.
    pub fn has_length(&self) -> bool {
        self.flags_word() & flags::L != 0
    }

    /// S bit: Ns and Nr are present.
    pub fn has_sequence(&self) -> bool {
        self.flags_word() & flags::S != 0
    }

    /// O bit: Offset Size is present.
    pub fn has_offset(&self) -> bool {
        self.flags_word() & flags::O != 0
    }

    /// P bit: preferential treatment requested (data messages).
    pub fn priority(&self) -> bool {
        self.flags_word() & flags::P != 0
    }

    /// The Length field, when L=1.
    pub fn length(&self) -> Option<u16> {
        let at = self.layout().length?;
        Some(read_u16(self.buffer.as_ref(), at))
    }

    /// Tunnel ID (of the recipient).
    pub fn tunnel_id(&self) -> u16 {
        read_u16(self.buffer.as_ref(), self.layout().tunnel_id)
    }

    /// Session ID (of the recipient).
    pub fn session_id(&self) -> u16 {
        read_u16(self.buffer.as_ref(), self.layout().tunnel_id + field::WORD)
    }

    /// Ns, when S=1.
    pub fn ns(&self) -> Option<u16> {
        let at = self.layout().ns?;
        Some(read_u16(self.buffer.as_ref(), at))
    }

    /// Nr, when S=1 (reserved and to be ignored in data messages, RFC 2661 §3.1).
    pub fn nr(&self) -> Option<u16> {
        let at = self.layout().ns?;
        Some(read_u16(self.buffer.as_ref(), at + field::WORD))
    }

    /// Offset Size, when O=1.
    pub fn offset_size(&self) -> Option<u16> {
        let at = self.layout().offset_size?;
        Some(read_u16(self.buffer.as_ref(), at))
    }

    /// Whole header length: the fixed part from the flags plus the offset pad.
    pub fn header_len(&self) -> usize {
        header_len_from_flags(self.flags_word()) + usize::from(self.offset_size().unwrap_or(0))
    }

    /// Where the message ends: at Length when present (UDP padding after it is ignored),
    /// else at the end of the buffer.
    pub fn total_len(&self) -> usize {
        match self.length() {
            Some(length) => usize::from(length),
            None => self.buffer.as_ref().len(),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload: after the header (and offset pad), up to Length or the buffer end.
    pub fn payload(&self) -> &'a [u8] {
        let start = self.header_len();
        let end = self.total_len();
        &self.buffer.as_ref()[start..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the flags word (flags and version).
    pub fn set_flags_word(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::FLAGS.start, value)
    }

    /// Set the Length field. Does nothing when L=0.
    pub fn set_length(&mut self, value: u16) {
        if let Some(at) = self.layout().length {
            write_u16(self.buffer.as_mut(), at, value)
        }
    }

    /// Set Tunnel ID.
    pub fn set_tunnel_id(&mut self, value: u16) {
        let at = self.layout().tunnel_id;
        write_u16(self.buffer.as_mut(), at, value)
    }

    /// Set Session ID.
    pub fn set_session_id(&mut self, value: u16) {
        let at = self.layout().tunnel_id + field::WORD;
        write_u16(self.buffer.as_mut(), at, value)
    }

    /// Set Ns. Does nothing when S=0.
    pub fn set_ns(&mut self, value: u16) {
        if let Some(at) = self.layout().ns {
            write_u16(self.buffer.as_mut(), at, value)
        }
    }

    /// Set Nr. Does nothing when S=0.
    pub fn set_nr(&mut self, value: u16) {
        if let Some(at) = self.layout().ns {
            write_u16(self.buffer.as_mut(), at + field::WORD, value)
        }
    }

    /// Set Offset Size. Does nothing when O=0.
    pub fn set_offset_size(&mut self, value: u16) {
        if let Some(at) = self.layout().offset_size {
            write_u16(self.buffer.as_mut(), at, value)
        }
    }

    /// The payload, mutable (same bounds as `payload`).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let end = self.total_len();
        &mut self.buffer.as_mut()[start..end]
    }
}

/// Sequence numbers (RFC 2661 §3.1, §5.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sequence {
    /// Ns: this message's sequence number.
    pub ns: u16,
    /// Nr: next expected (control); reserved in data messages.
    pub nr: u16,
}

/// Control or data, with the fields each may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderKind {
    /// T=1: L=1, S=1, O=0, P=0 are implied (RFC 2661 §3.1).
    Control(Sequence),
    /// T=0: every optional field is the sender's choice.
    Data {
        /// L bit.
        length: bool,
        /// S bit with Ns/Nr.
        sequence: Option<Sequence>,
        /// O bit with Offset Size; the pad is emitted as zeros.
        offset_size: Option<u16>,
        /// P bit.
        priority: bool,
    },
}

/// An owned, validated L2TP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderRepr {
    /// Tunnel ID of the recipient.
    pub tunnel_id: u16,
    /// Session ID of the recipient.
    pub session_id: u16,
    /// Control or data.
    pub kind: HeaderKind,
}

impl HeaderRepr {
    /// A control header (RFC 2661 §3.1).
    pub const fn control(tunnel_id: u16, session_id: u16, ns: u16, nr: u16) -> HeaderRepr {
        HeaderRepr {
            tunnel_id,
            session_id,
            kind: HeaderKind::Control(Sequence { ns, nr }),
        }
    }

    /// Parse a header from a packet (validates it first).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<HeaderRepr> {
        packet.check_len()?;
        let sequence = match (packet.ns(), packet.nr()) {
            (Some(ns), Some(nr)) => Some(Sequence { ns, nr }),
            _ => None,
        };
        let kind = match (packet.is_control(), sequence) {
            (true, Some(sequence)) => HeaderKind::Control(sequence),
            (true, None) => {
                return Err(WireError::BadFlags {
                    what: "L2TP control header",
                    flags: packet.flags_word(),
                });
            }
            (false, sequence) => HeaderKind::Data {
                length: packet.has_length(),
                sequence,
                offset_size: packet.offset_size(),
                priority: packet.priority(),
            },
        };
        Ok(HeaderRepr {
            tunnel_id: packet.tunnel_id(),
            session_id: packet.session_id(),
            kind,
        })
    }

    /// True for a control header.
    pub const fn is_control(&self) -> bool {
        matches!(self.kind, HeaderKind::Control(_))
    }

    /// The flags word this header is emitted with (reserved bits zero, Ver 2).
    pub const fn flags_word(&self) -> u16 {
        let mut word = VERSION as u16;
        match self.kind {
            HeaderKind::Control(_) => word |= flags::T | flags::L | flags::S,
            HeaderKind::Data {
                length,
                sequence,
                offset_size,
                priority,
            } => {
                if length {
                    word |= flags::L;
                }
                if sequence.is_some() {
                    word |= flags::S;
                }
                if offset_size.is_some() {
                    word |= flags::O;
                }
                if priority {
                    word |= flags::P;
                }
            }
        }
        word
    }

    /// Bytes the header occupies, offset pad included.
    pub const fn buffer_len(&self) -> usize {
        let pad = match self.kind {
            HeaderKind::Data {
                offset_size: Some(size),
                ..
            } => size as usize,
            _ => 0,
        };
        header_len_from_flags(self.flags_word()) + pad
    }

    /// Emit the header into `packet`, whose buffer must hold at least `buffer_len()`
    /// bytes. When L=1 the Length field is set to `buffer_len() + payload_len`
    /// (saturating at 65535: callers keep messages below that). The offset pad is
    /// zeroed.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>, payload_len: usize) {
        packet.set_flags_word(self.flags_word());
        let total = u16::try_from(self.buffer_len() + payload_len).unwrap_or(u16::MAX);
        packet.set_length(total);
        packet.set_tunnel_id(self.tunnel_id);
        packet.set_session_id(self.session_id);
        let (sequence, offset_size) = match self.kind {
            HeaderKind::Control(sequence) => (Some(sequence), None),
            HeaderKind::Data {
                sequence,
                offset_size,
                ..
            } => (sequence, offset_size),
        };
        if let Some(sequence) = sequence {
            packet.set_ns(sequence.ns);
            packet.set_nr(sequence.nr);
        }
        if let Some(size) = offset_size {
            packet.set_offset_size(size);
            let fixed = header_len_from_flags(self.flags_word());
            packet.buffer.as_mut()[fixed..fixed + usize::from(size)].fill(0);
        }
    }
}

#[cfg(test)]
mod tests;
