//! The AVP header (RFC 2661 §4.1), a borrowing iterator over the AVPs of a message body,
//! and emit helpers.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |M|H| rsvd  |      Length       |           Vendor ID           |
//! |         Attribute Type        |        Attribute Value...
//! ```
//!
//! Contract: once [`AvpPacket::check_len`] passed (6 <= Length <= buffer), no accessor
//! panics. [`AvpIter`] yields an [`AvpError`] for a framing error (Length below 6 or
//! beyond the body) and then stops, since the next AVP cannot be located. Reserved bits
//! are not a framing error: RFC 2661 §4.1 says such an AVP "MUST be treated as an
//! unrecognized AVP", so the view reports them ([`AvpPacket::reserved`]) and the
//! message layer applies the M-bit rule of §4.2. Nothing here allocates.

/// Size of the AVP header.
pub const HEADER_LEN: usize = 6;
/// Largest value the 10-bit Length field can describe.
pub const MAX_VALUE_LEN: usize = 1023 - HEADER_LEN;

/// Bits of the first 16-bit word.
pub mod bits {
    /// Mandatory.
    pub const M: u16 = 0x8000;
    /// Hidden.
    pub const H: u16 = 0x4000;
    /// Reserved, must be zero (RFC 2661 §4.1).
    pub const RESERVED: u16 = 0x3c00;
    /// Length.
    pub const LENGTH: u16 = 0x03ff;
}

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const FLAGS_LENGTH: Field = 0..2;
    pub const VENDOR_ID: Field = 2..4;
    pub const ATTR_TYPE: Field = 4..6;
}

/// A framing error in an AVP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AvpError {
    /// Fewer than 6 bytes remain for an AVP header.
    #[error("AVP at offset {offset} truncated: {available} bytes, header needs 6")]
    Truncated { offset: usize, available: usize },
    /// The Length field is below 6 (RFC 2661 §4.1: "The minimum Length of an AVP is 6").
    #[error("AVP at offset {offset} has length {length}, below the minimum of 6")]
    LengthTooSmall { offset: usize, length: usize },
    /// The Length field runs past the end of the message body.
    #[error("AVP at offset {offset} has length {length}, only {available} bytes remain")]
    LengthBeyondBuffer {
        offset: usize,
        length: usize,
        available: usize,
    },
    /// Emit: the value does not fit the 10-bit Length field.
    #[error("AVP {attr_type} value of {len} bytes exceeds the 1017-byte maximum")]
    ValueTooLong { attr_type: u16, len: usize },
}

/// A read/write view of one AVP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

fn read_u16(data: &[u8], field: field::Field) -> u16 {
    u16::from_be_bytes([data[field.start], data[field.start + 1]])
}

impl<T: AsRef<[u8]>> AvpPacket<T> {
    /// Wrap without checking.
    pub const fn new_unchecked(buffer: T) -> AvpPacket<T> {
        AvpPacket { buffer }
    }

    /// Wrap and check the length (offset 0 in error values).
    pub fn new_checked(buffer: T) -> Result<AvpPacket<T>, AvpError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// 6 <= Length <= buffer.
    pub fn check_len(&self) -> Result<(), AvpError> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(AvpError::Truncated {
                offset: 0,
                available: data.len(),
            });
        }
        let length = self.length();
        if length < HEADER_LEN {
            return Err(AvpError::LengthTooSmall { offset: 0, length });
        }
        if length > data.len() {
            return Err(AvpError::LengthBeyondBuffer {
                offset: 0,
                length,
                available: data.len(),
            });
        }
        Ok(())
    }

    fn word(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLAGS_LENGTH)
    }

    /// M bit.
    pub fn mandatory(&self) -> bool {
        self.word() & bits::M != 0
    }

    /// H bit.
    pub fn hidden(&self) -> bool {
        self.word() & bits::H != 0
    }

    /// The four reserved bits (0 in a well-formed AVP), shifted down.
    pub fn reserved(&self) -> u8 {
        ((self.word() & bits::RESERVED) >> 10) as u8
    }

    /// Length of the whole AVP, header included.
    pub fn length(&self) -> usize {
        usize::from(self.word() & bits::LENGTH)
    }

    /// Vendor ID (0 for IETF AVPs).
    pub fn vendor_id(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::VENDOR_ID)
    }

    /// Attribute Type.
    pub fn attr_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ATTR_TYPE)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> AvpPacket<&'a T> {
    /// The Attribute Value (still hidden when H=1).
    pub fn value(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.length()]
    }
}

/// Iterator over the AVPs of a control message body.
#[derive(Debug, Clone)]
pub struct AvpIter<'a> {
    body: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> AvpIter<'a> {
    /// Iterate over `body` (the bytes after the L2TP header, up to its Length).
    pub const fn new(body: &'a [u8]) -> AvpIter<'a> {
        AvpIter {
            body,
            offset: 0,
            failed: false,
        }
    }

    /// Byte offset of the next AVP within the body.
    pub const fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for AvpIter<'a> {
    type Item = Result<AvpPacket<&'a [u8]>, AvpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.body.len() {
            return None;
        }
        let rest = &self.body[self.offset..];
        let offset = self.offset;
        let result = match AvpPacket::new_checked(rest) {
            Ok(avp) => {
                let length = avp.length();
                self.offset += length;
                Ok(AvpPacket::new_unchecked(&rest[..length]))
            }
            Err(error) => {
                self.failed = true;
                Err(match error {
                    AvpError::Truncated { available, .. } => {
                        AvpError::Truncated { offset, available }
                    }
                    AvpError::LengthTooSmall { length, .. } => {
                        AvpError::LengthTooSmall { offset, length }
                    }
                    AvpError::LengthBeyondBuffer {
                        length, available, ..
                    } => AvpError::LengthBeyondBuffer {
                        offset,
                        length,
                        available,
                    },
                    other => other,
                })
            }
        };
        Some(result)
    }
}

/// The first word of an AVP header.
pub fn header_word(mandatory: bool, hidden: bool, reserved: u8, length: usize) -> u16 {
    let mut word = (length as u16) & bits::LENGTH;
    word |= (u16::from(reserved) << 10) & bits::RESERVED;
    if mandatory {
        word |= bits::M;
    }
    if hidden {
        word |= bits::H;
    }
    word
}

/// Append an AVP header announcing a `value_len`-byte value (RFC 2661 §4.1).
pub fn push_header(
    out: &mut Vec<u8>,
    mandatory: bool,
    hidden: bool,
    vendor_id: u16,
    attr_type: u16,
    value_len: usize,
) -> Result<(), AvpError> {
    push_header_reserved(out, mandatory, hidden, 0, vendor_id, attr_type, value_len)
}

/// [`push_header`] with explicit reserved bits (only to re-emit an AVP received with
/// them set).
pub fn push_header_reserved(
    out: &mut Vec<u8>,
    mandatory: bool,
    hidden: bool,
    reserved: u8,
    vendor_id: u16,
    attr_type: u16,
    value_len: usize,
) -> Result<(), AvpError> {
    if value_len > MAX_VALUE_LEN {
        return Err(AvpError::ValueTooLong {
            attr_type,
            len: value_len,
        });
    }
    let word = header_word(mandatory, hidden, reserved, HEADER_LEN + value_len);
    out.extend_from_slice(&word.to_be_bytes());
    out.extend_from_slice(&vendor_id.to_be_bytes());
    out.extend_from_slice(&attr_type.to_be_bytes());
    Ok(())
}

/// Append a whole AVP.
pub fn push_avp(
    out: &mut Vec<u8>,
    mandatory: bool,
    hidden: bool,
    vendor_id: u16,
    attr_type: u16,
    value: &[u8],
) -> Result<(), AvpError> {
    push_header(out, mandatory, hidden, vendor_id, attr_type, value.len())?;
    out.extend_from_slice(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn view_fields() {
        // M=1, H=1, Length 8, vendor 0, Message Type (0), value 1 (SCCRQ).
        let bytes = [0xc0, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
        let avp = AvpPacket::new_checked(&bytes[..]).unwrap();
        assert!(avp.mandatory());
        assert!(avp.hidden());
        assert_eq!(avp.reserved(), 0);
        assert_eq!(avp.length(), 8);
        assert_eq!(avp.vendor_id(), 0);
        assert_eq!(avp.attr_type(), 0);
        assert_eq!(avp.value(), &[0, 1]);
        let bytes = [0x3c, 0x06, 0x0d, 0xe9, 0x00, 0x01];
        let avp = AvpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(avp.reserved(), 0xf);
        assert!(!avp.mandatory() && !avp.hidden());
        assert_eq!(avp.vendor_id(), 3561);
        assert_eq!(avp.value(), &[] as &[u8]);
    }

    #[test]
    fn iterator_yields_each_avp() {
        let mut body = Vec::new();
        push_avp(&mut body, true, false, 0, 0, &[0, 6]).unwrap();
        push_avp(&mut body, false, false, 3561, 1, b"circuit").unwrap();
        push_avp(&mut body, true, false, 0, 39, &[]).unwrap();
        let avps: Vec<_> = AvpIter::new(&body).map(Result::unwrap).collect();
        assert_eq!(avps.len(), 3);
        assert_eq!(avps[1].vendor_id(), 3561);
        assert_eq!(avps[1].value(), b"circuit");
        assert_eq!(avps[2].attr_type(), 39);
        assert_eq!(avps[2].length(), 6);
    }

    #[test]
    fn iterator_errors() {
        let good = [0x80, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06];
        let mut short = good.to_vec();
        short.extend_from_slice(&[0x80, 0x08, 0x00]);
        let results: Vec<_> = AvpIter::new(&short).collect();
        assert_eq!(results.len(), 2);
        assert_eq!(
            results[1],
            Err(AvpError::Truncated {
                offset: 8,
                available: 3
            })
        );

        let small = [0x80, 0x05, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(
            AvpIter::new(&small).collect::<Vec<_>>(),
            vec![Err(AvpError::LengthTooSmall {
                offset: 0,
                length: 5
            })]
        );
        // Length 0 must not loop forever.
        let zero = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(AvpIter::new(&zero).count(), 1);

        let beyond = [0x80, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06];
        assert_eq!(
            AvpIter::new(&beyond).collect::<Vec<_>>(),
            vec![Err(AvpError::LengthBeyondBuffer {
                offset: 0,
                length: 9,
                available: 8
            })]
        );
    }

    #[test]
    fn value_too_long() {
        let mut out = Vec::new();
        assert!(push_avp(&mut out, false, false, 0, 7, &[0u8; MAX_VALUE_LEN]).is_ok());
        assert_eq!(out.len(), 1023);
        assert_eq!(
            push_avp(&mut out, false, false, 0, 7, &[0u8; MAX_VALUE_LEN + 1]),
            Err(AvpError::ValueTooLong {
                attr_type: 7,
                len: 1018
            })
        );
    }
}
