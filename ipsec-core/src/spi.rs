//! Security Parameter Indexes.
//!
//! An ESP SPI is 32 bits (RFC 4303 §2.1); the values 1–255 are reserved by IANA and 0 is
//! reserved for local use, so an SPI chosen for an SA is always ≥ 256. An IKE SA SPI is 64
//! bits (RFC 7296 §3.1); zero means "not yet known" (the responder SPI of a first
//! IKE_SA_INIT request).

use core::fmt;

/// An ESP (or AH) SPI, RFC 4303 §2.1.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Spi(pub u32);

impl Spi {
    /// Smallest SPI value that may be assigned to an SA (1–255 are IANA reserved, 0 is local).
    pub const MIN_ASSIGNABLE: u32 = 256;

    /// True if this value may name an SA on the wire (RFC 4303 §2.1).
    pub fn is_assignable(self) -> bool {
        self.0 >= Self::MIN_ASSIGNABLE
    }

    /// Network byte order.
    pub fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// From network byte order.
    pub fn from_bytes(b: [u8; 4]) -> Self {
        Self(u32::from_be_bytes(b))
    }
}

impl fmt::Debug for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Spi({:08x})", self.0)
    }
}

impl fmt::Display for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// An IKE SA SPI, RFC 7296 §3.1 (eight octets, zero = unknown).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct IkeSpi(pub [u8; 8]);

impl IkeSpi {
    /// The all-zero SPI carried as the responder SPI of the first IKE_SA_INIT request.
    pub const ZERO: Self = Self([0; 8]);

    /// True for the all-zero SPI.
    pub fn is_zero(self) -> bool {
        self.0 == [0; 8]
    }
}

impl fmt::Debug for IkeSpi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IkeSpi({self})")
    }
}

impl fmt::Display for IkeSpi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spi_format_and_bytes() {
        let s = Spi(0xc0ffee01);
        assert_eq!(s.to_string(), "c0ffee01");
        assert_eq!(Spi::from_bytes(s.to_bytes()), s);
        assert!(!Spi(255).is_assignable());
        assert!(Spi(256).is_assignable());
        assert_eq!(
            IkeSpi([0, 1, 2, 3, 4, 5, 6, 0xff]).to_string(),
            "00010203040506ff"
        );
        assert!(IkeSpi::ZERO.is_zero());
    }
}
