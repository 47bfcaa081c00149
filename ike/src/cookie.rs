//! Stateless cookies against IKE_SA_INIT floods (RFC 7296 §2.6).
//!
//! When the number of half-open IKE SAs passes a threshold, the responder answers an
//! IKE_SA_INIT request without a valid COOKIE notify with a COOKIE of its own and keeps no
//! state. The cookie is `version | HMAC-SHA-256(secret_version, Ni | IPi | SPIi)` truncated to
//! 16 octets, so checking it costs one HMAC and happens before any Diffie-Hellman work or
//! per-SA allocation. The secret rotates; cookies made with the previous secret stay valid for
//! one rotation period, so an initiator retrying across a rotation is not refused.

use core::time::Duration;
use std::net::IpAddr;
use std::time::Instant;

use ipsec_core::transform::PrfId;
use ipsec_core::{CryptoProvider, IkeSpi, SecretBytes};

/// Length of the cookies we issue: one version octet and a 16-octet MAC.
pub const COOKIE_LEN: usize = 17;

/// The responder's cookie secrets.
#[derive(Debug)]
pub struct CookieJar {
    current: (u8, SecretBytes),
    previous: Option<(u8, SecretBytes)>,
    rotate_at: Option<Instant>,
    period: Duration,
}

impl CookieJar {
    /// A jar with a fresh secret, rotated every `period`.
    pub fn new<P: CryptoProvider>(provider: &P, period: Duration) -> Self {
        Self {
            current: (0, fresh_secret(provider)),
            previous: None,
            rotate_at: None,
            period,
        }
    }

    /// When the secret must rotate next (set on first use).
    pub fn next_rotation(&self) -> Option<Instant> {
        self.rotate_at
    }

    /// Rotates the secret if due; call from the endpoint's timeout handling.
    pub fn handle_timeout<P: CryptoProvider>(&mut self, provider: &P, now: Instant) {
        match self.rotate_at {
            None => self.rotate_at = Some(now + self.period),
            Some(t) if now >= t => {
                let version = self.current.0.wrapping_add(1);
                let old = core::mem::replace(&mut self.current, (version, fresh_secret(provider)));
                self.previous = Some(old);
                self.rotate_at = Some(now + self.period);
            }
            Some(_) => {}
        }
    }

    /// The cookie for this initiator.
    pub fn make<P: CryptoProvider>(
        &self,
        provider: &P,
        ni: &[u8],
        ip: IpAddr,
        spi_i: IkeSpi,
    ) -> [u8; COOKIE_LEN] {
        mac(provider, &self.current, ni, ip, spi_i)
    }

    /// Is `cookie` one we issued to this initiator with the current or previous secret?
    pub fn verify<P: CryptoProvider>(
        &self,
        provider: &P,
        cookie: &[u8],
        ni: &[u8],
        ip: IpAddr,
        spi_i: IkeSpi,
    ) -> bool {
        use subtle::ConstantTimeEq;
        let Some(&version) = cookie.first() else {
            return false;
        };
        let secret = if version == self.current.0 {
            &self.current
        } else {
            match &self.previous {
                Some(p) if p.0 == version => p,
                _ => return false,
            }
        };
        cookie.len() == COOKIE_LEN && bool::from(mac(provider, secret, ni, ip, spi_i).ct_eq(cookie))
    }
}

fn fresh_secret<P: CryptoProvider>(provider: &P) -> SecretBytes {
    let mut s = SecretBytes::zeroed(32);
    // A failing random source leaves a zero secret; cookies then still bind to the
    // initiator's values, which is all RFC 7296 §2.6 needs for address-spoofing protection.
    let _ = provider.fill_random(s.expose_mut());
    s
}

fn mac<P: CryptoProvider>(
    provider: &P,
    secret: &(u8, SecretBytes),
    ni: &[u8],
    ip: IpAddr,
    spi_i: IkeSpi,
) -> [u8; COOKIE_LEN] {
    let ip_bytes: Vec<u8> = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let mut full = [0u8; 32];
    let _ = provider.prf(
        PrfId::HMAC_SHA2_256,
        secret.1.expose(),
        &[ni, &ip_bytes, &spi_i.0],
        &mut full,
    );
    let mut out = [0u8; COOKIE_LEN];
    out[0] = secret.0;
    out[1..].copy_from_slice(&full[..COOKIE_LEN - 1]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipsec_core::RustCrypto;

    #[test]
    fn cookies_bind_and_rotate() {
        let p = RustCrypto::with_seed(1);
        let t0 = Instant::now();
        let mut jar = CookieJar::new(&p, Duration::from_secs(60));
        jar.handle_timeout(&p, t0);
        let ip: IpAddr = "fd00::1".parse().unwrap();
        let spi = IkeSpi([7; 8]);
        let c = jar.make(&p, b"nonce", ip, spi);
        assert!(jar.verify(&p, &c, b"nonce", ip, spi));
        assert!(!jar.verify(&p, &c, b"nonce", "fd00::2".parse().unwrap(), spi));
        assert!(!jar.verify(&p, &c, b"other", ip, spi));
        assert!(!jar.verify(&p, &c, b"nonce", ip, IkeSpi([8; 8])));
        assert!(!jar.verify(&p, &c[..16], b"nonce", ip, spi));
        assert!(!jar.verify(&p, &[], b"nonce", ip, spi));
        // One rotation: still valid. Two: refused.
        jar.handle_timeout(&p, t0 + Duration::from_secs(61));
        assert!(jar.verify(&p, &c, b"nonce", ip, spi));
        assert_ne!(jar.make(&p, b"nonce", ip, spi), c);
        jar.handle_timeout(&p, t0 + Duration::from_secs(122));
        assert!(!jar.verify(&p, &c, b"nonce", ip, spi));
    }
}
