//! IANA "Internet Key Exchange Version 2 (IKEv2) Parameters" transform identifiers
//! (RFC 7296 §3.3.2, with the registry additions of RFC 4106, RFC 5282, RFC 7634, RFC 8031
//! and RFC 4868).
//!
//! Every identifier is a transparent newtype over the wire value, so values that this
//! implementation does not know survive a decode/encode round trip and can still be named
//! in logs and negotiation reports. Known values have associated constants and a
//! strongSwan-style display name.

use core::fmt;

macro_rules! transform_id {
    (
        $(#[$meta:meta])*
        $name:ident : $repr:ty { $( $(#[$cmeta:meta])* $konst:ident = $val:expr => $text:expr ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $repr);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($val); )*

            /// Every identifier with a constant in this module, in registry order.
            pub const KNOWN: &'static [Self] = &[$(Self::$konst),*];

            /// The name used in logs, or `None` for a value without a constant here.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some($text), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({})", n, self.0),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}#{}", stringify!($name), self.0),
                }
            }
        }
    };
}

transform_id! {
    /// Transform type (RFC 7296 §3.3.2, "Transform Type Values").
    TransformType: u8 {
        /// Encryption algorithm (ENCR).
        ENCR = 1 => "ENCR",
        /// Pseudorandom function (PRF).
        PRF = 2 => "PRF",
        /// Integrity algorithm (INTEG).
        INTEG = 3 => "INTEG",
        /// Key exchange method (KE, formerly D-H group).
        KE = 4 => "KE",
        /// Extended sequence numbers (ESN).
        ESN = 5 => "ESN",
    }
}

transform_id! {
    /// Transform type 1, encryption algorithm (RFC 7296 §3.3.2, RFC 4106, RFC 5282, RFC 7634).
    EncrId: u16 {
        /// AES-CBC, RFC 3602; key length from the Key Length attribute.
        AES_CBC = 12 => "aes-cbc",
        /// AES-CTR, RFC 3686 (listed for negotiation reports only).
        AES_CTR = 13 => "aes-ctr",
        /// AES-GCM with an 8-octet ICV, RFC 4106.
        AES_GCM_8 = 18 => "aes-gcm-8",
        /// AES-GCM with a 12-octet ICV, RFC 4106.
        AES_GCM_12 = 19 => "aes-gcm-12",
        /// AES-GCM with a 16-octet ICV, RFC 4106 / RFC 5282.
        AES_GCM_16 = 20 => "aes-gcm-16",
        /// ChaCha20-Poly1305, RFC 7634.
        CHACHA20_POLY1305 = 28 => "chacha20-poly1305",
    }
}

transform_id! {
    /// Transform type 2, pseudorandom function (RFC 7296 §3.3.2, RFC 4868).
    PrfId: u16 {
        /// PRF_HMAC_SHA1, RFC 2104 (negotiation reports only; not offered).
        HMAC_SHA1 = 2 => "prf-hmac-sha1",
        /// PRF_HMAC_SHA2_256, RFC 4868.
        HMAC_SHA2_256 = 5 => "prf-hmac-sha2-256",
        /// PRF_HMAC_SHA2_384, RFC 4868.
        HMAC_SHA2_384 = 6 => "prf-hmac-sha2-384",
        /// PRF_HMAC_SHA2_512, RFC 4868.
        HMAC_SHA2_512 = 7 => "prf-hmac-sha2-512",
    }
}

transform_id! {
    /// Transform type 3, integrity algorithm (RFC 7296 §3.3.2, RFC 4868).
    IntegId: u16 {
        /// NONE: used with combined-mode (AEAD) ciphers.
        NONE = 0 => "none",
        /// AUTH_HMAC_SHA1_96, RFC 2404 (negotiation reports only; not offered).
        HMAC_SHA1_96 = 2 => "hmac-sha1-96",
        /// AUTH_HMAC_SHA2_256_128, RFC 4868.
        HMAC_SHA2_256_128 = 12 => "hmac-sha2-256-128",
        /// AUTH_HMAC_SHA2_384_192, RFC 4868.
        HMAC_SHA2_384_192 = 13 => "hmac-sha2-384-192",
        /// AUTH_HMAC_SHA2_512_256, RFC 4868.
        HMAC_SHA2_512_256 = 14 => "hmac-sha2-512-256",
    }
}

transform_id! {
    /// Transform type 4, key exchange method / Diffie-Hellman group (RFC 7296 §3.3.2,
    /// RFC 3526, RFC 5903, RFC 8031).
    KeId: u16 {
        /// NONE: no key exchange (Child SA without PFS).
        NONE = 0 => "none",
        /// 2048-bit MODP group, RFC 3526 (RFC 8247 MUST).
        MODP_2048 = 14 => "modp2048",
        /// 3072-bit MODP group, RFC 3526 (negotiation reports only).
        MODP_3072 = 15 => "modp3072",
        /// 256-bit random ECP group (NIST P-256), RFC 5903.
        ECP_256 = 19 => "ecp256",
        /// 384-bit random ECP group (NIST P-384), RFC 5903 (negotiation reports only).
        ECP_384 = 20 => "ecp384",
        /// Curve25519, RFC 8031.
        CURVE25519 = 31 => "x25519",
    }
}

transform_id! {
    /// Transform type 5, extended sequence numbers (RFC 7296 §3.3.2).
    EsnId: u16 {
        /// No extended sequence numbers (32-bit).
        NO_ESN = 0 => "noesn",
        /// Extended (64-bit) sequence numbers, RFC 4303 §2.2.1.
        ESN = 1 => "esn",
    }
}

impl EncrId {
    /// True for combined-mode ciphers, which need no separate integrity transform.
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            Self::AES_GCM_8 | Self::AES_GCM_12 | Self::AES_GCM_16 | Self::CHACHA20_POLY1305
        )
    }
}

impl PrfId {
    /// Output and preferred key length in octets (RFC 4868 §2.1.2).
    pub fn output_len(self) -> Option<usize> {
        match self {
            Self::HMAC_SHA2_256 => Some(32),
            Self::HMAC_SHA2_384 => Some(48),
            Self::HMAC_SHA2_512 => Some(64),
            _ => None,
        }
    }
}

impl IntegId {
    /// `(key length, truncated ICV length)` in octets (RFC 4868 §2.6).
    pub fn key_and_icv_len(self) -> Option<(usize, usize)> {
        match self {
            Self::HMAC_SHA2_256_128 => Some((32, 16)),
            Self::HMAC_SHA2_384_192 => Some((48, 24)),
            Self::HMAC_SHA2_512_256 => Some((64, 32)),
            _ => None,
        }
    }
}

/// Transform attribute type Key Length (RFC 7296 §3.3.5), in TV format.
pub const ATTR_KEY_LENGTH: u16 = 14;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_unknown_values() {
        assert_eq!(EncrId::AES_GCM_16.0, 20);
        assert_eq!(format!("{:?}", KeId(31)), "x25519(31)");
        assert_eq!(format!("{}", KeId(999)), "KeId#999");
        assert!(EncrId::CHACHA20_POLY1305.is_aead());
        assert!(!EncrId::AES_CBC.is_aead());
        assert_eq!(IntegId::HMAC_SHA2_256_128.key_and_icv_len(), Some((32, 16)));
        assert_eq!(PrfId::HMAC_SHA2_384.output_len(), Some(48));
    }
}
