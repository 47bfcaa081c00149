//! Secret key material that is wiped when dropped and never printed.

use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Owned secret bytes (keys, salts, shared secrets, PSKs).
///
/// The buffer is zeroized on drop, `Debug` prints `[redacted]`, and equality is constant
/// time. Reach the bytes with [`SecretBytes::expose`]; the name makes every use greppable.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes` (no copy is left behind by this call).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Copies `bytes` into a new secret.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// A zero-filled secret of `len` bytes, to be filled in place.
    pub fn zeroed(len: usize) -> Self {
        Self(vec![0; len])
    }

    /// The secret bytes. Callers must not log or persist them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Mutable access, for filling a [`SecretBytes::zeroed`] buffer.
    pub fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Splits off the first `at` bytes into a new secret, keeping the rest.
    ///
    /// # Panics
    /// If `at > self.len()` (a caller bug, not reachable from input).
    pub fn split_to(&mut self, at: usize) -> SecretBytes {
        let head = SecretBytes::from_slice(&self.0[..at]);
        let tail = SecretBytes::from_slice(&self.0[at..]);
        *self = tail;
        head
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == other.0.len() && bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for SecretBytes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_split_works() {
        let mut s = SecretBytes::from_slice(b"key-and-salt");
        assert_eq!(format!("{s:?}"), "[redacted]");
        let head = s.split_to(3);
        assert_eq!(head.expose(), b"key");
        assert_eq!(s.expose(), b"-and-salt");
        assert_ne!(head, s);
        assert_eq!(head, SecretBytes::from_slice(b"key"));
    }
}
