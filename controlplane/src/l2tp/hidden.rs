//! Hiding of AVP attribute values (RFC 2661 §4.3).
//!
//! The cleartext value is wrapped in the Hidden AVP Subformat (a 2-byte original
//! length, the value, optional padding), then XORed 16 bytes at a time with an MD5
//! chain:
//!
//! ```text
//! b1 = MD5(attribute type (2 octets) + secret + random vector)   c1 = p1 xor b1
//! bi = MD5(secret + c(i-1))                                     ci = pi xor bi
//! ```
//!
//! The last block may be shorter than 16 bytes: only the octets present are XORed.
//! [`unhide`] never trusts the decoded length: it must fit in the hidden value minus
//! the 2-byte length prefix, else [`HiddenError::BadLength`].

use md5::{Digest, Md5};

/// Size of one MD5 block.
const BLOCK: usize = 16;

/// Why a hidden value could not be recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HiddenError {
    /// The hidden value is shorter than the 2-byte original-length prefix.
    #[error("hidden value of {len} bytes is shorter than its length prefix")]
    TooShort { len: usize },
    /// The decoded original length exceeds what the outer AVP carries (usually a wrong
    /// shared secret or random vector).
    #[error("hidden length {original} exceeds the {available} bytes carried")]
    BadLength { original: usize, available: usize },
}

/// XOR `data` in place with the MD5 chain of RFC 2661 §4.3. `decrypt` selects whether
/// the chaining input is the ciphertext before (decrypt) or after (encrypt) the XOR.
fn apply(attr_type: u16, secret: &[u8], random_vector: &[u8], data: &mut [u8], decrypt: bool) {
    let mut hasher = Md5::new();
    hasher.update(attr_type.to_be_bytes());
    hasher.update(secret);
    hasher.update(random_vector);
    let mut key = hasher.finalize();
    for chunk in data.chunks_mut(BLOCK) {
        let mut next = Md5::new();
        next.update(secret);
        if decrypt {
            // The chain continues over the full ciphertext block.
            next.update(&*chunk);
        }
        for (byte, k) in chunk.iter_mut().zip(key.iter()) {
            *byte ^= k;
        }
        if !decrypt {
            next.update(&*chunk);
        }
        key = next.finalize();
    }
}

/// Hide `value` of AVP `attr_type`: returns the Attribute Value of the hidden AVP,
/// `2 + value.len() + padding.len()` bytes.
pub fn hide(
    attr_type: u16,
    secret: &[u8],
    random_vector: &[u8],
    value: &[u8],
    padding: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + value.len() + padding.len());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(padding);
    apply(attr_type, secret, random_vector, &mut out, false);
    out
}

/// Recover the cleartext value of a hidden AVP of type `attr_type`.
pub fn unhide(
    attr_type: u16,
    secret: &[u8],
    random_vector: &[u8],
    hidden: &[u8],
) -> Result<Vec<u8>, HiddenError> {
    if hidden.len() < 2 {
        return Err(HiddenError::TooShort { len: hidden.len() });
    }
    let mut plain = hidden.to_vec();
    apply(attr_type, secret, random_vector, &mut plain, true);
    let original = usize::from(u16::from_be_bytes([plain[0], plain[1]]));
    let available = plain.len() - 2;
    if original > available {
        return Err(HiddenError::BadLength {
            original,
            available,
        });
    }
    plain.truncate(2 + original);
    plain.drain(..2);
    Ok(plain)
}

#[cfg(test)]
mod tests;
