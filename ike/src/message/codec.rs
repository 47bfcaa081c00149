//! Bounds-checked reading and length-patching writing of IKEv2 wire structures
//! (RFC 7296 §3: every multi-octet field is in network byte order).
//!
//! [`Reader`] is a cursor over a borrowed slice that never indexes out of bounds: every read
//! returns a [`DecodeError`] naming the payload being decoded and the absolute offset in
//! the message. The writer helpers append to a caller-owned `Vec<u8>` and patch length
//! fields once the body is known.

use super::error::{DecodeError, DecodeErrorKind, EncodeError};
use super::header::PayloadType;

/// Declares a transparent newtype over a wire value with named constants, `name()`, and
/// `Debug`/`Display` that show the registry name (or the number for unknown values).
macro_rules! registry {
    (
        $(#[$meta:meta])*
        $name:ident : $repr:ty { $( $(#[$cmeta:meta])* $konst:ident = $val:expr ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $repr);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($val); )*

            /// Every value with a constant here, in registry order.
            pub const KNOWN: &'static [Self] = &[$(Self::$konst),*];

            /// The registry name, or `None` for a value without a constant here.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some(stringify!($konst)), )*
                    _ => None,
                }
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({})", n, self.0),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}#{}", stringify!($name), self.0),
                }
            }
        }
    };
}
pub(crate) use registry;

/// A bounds-checked cursor over wire bytes.
///
/// `base` is the absolute offset of `buf[0]` within the whole IKE message, so that errors
/// from nested structures still point at the right octet.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    ctx: Option<PayloadType>,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, which starts at absolute offset `base`.
    pub(crate) fn new(buf: &'a [u8], base: usize, ctx: Option<PayloadType>) -> Self {
        Self {
            buf,
            pos: 0,
            base,
            ctx,
        }
    }

    /// Absolute offset of the next octet.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Octets left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// An error of `kind` at the current offset.
    pub(crate) fn err(&self, kind: DecodeErrorKind) -> DecodeError {
        self.err_at(self.offset(), kind)
    }

    /// An error of `kind` at absolute offset `offset`.
    pub(crate) fn err_at(&self, offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            kind,
            offset,
            payload: self.ctx,
        }
    }

    /// Takes the next `n` octets.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.remaining();
        match self.buf.get(self.pos..).and_then(|r| r.get(..n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.err(DecodeErrorKind::Truncated {
                needed: n,
                available,
            })),
        }
    }

    /// Takes the next `N` octets as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        s
    }

    /// Splits off the next `n` octets as a reader of their own (same payload context).
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset();
        let buf = self.bytes(n)?;
        Ok(Reader {
            buf,
            pos: 0,
            base,
            ctx: self.ctx,
        })
    }

    /// Like [`Reader::sub`] but with a different payload context.
    pub(crate) fn sub_ctx(
        &mut self,
        n: usize,
        ctx: Option<PayloadType>,
    ) -> Result<Reader<'a>, DecodeError> {
        let saved = core::mem::replace(&mut self.ctx, ctx);
        let r = self.sub(n);
        self.ctx = saved;
        r
    }

    /// Fails with [`DecodeErrorKind::TrailingData`] unless every octet was consumed.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.err(DecodeErrorKind::TrailingData {
                what,
                len: self.remaining(),
            }))
        }
    }
}

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Writes a `u16` length field placeholder and returns its position.
pub(crate) fn begin_len16(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    put_u16(out, 0);
    at
}

/// Patches the `u16` length field at `at` with `out.len() - start`.
pub(crate) fn finish_len16(
    out: &mut [u8],
    start: usize,
    at: usize,
    what: &'static str,
) -> Result<(), EncodeError> {
    let len = out.len() - start;
    let v = u16::try_from(len).map_err(|_| EncodeError::TooLong {
        what,
        len,
        max: usize::from(u16::MAX),
    })?;
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&v.to_be_bytes());
    }
    Ok(())
}

/// `u8` count or an encode error.
pub(crate) fn count_u8(n: usize, what: &'static str) -> Result<u8, EncodeError> {
    u8::try_from(n).map_err(|_| EncodeError::TooMany {
        what,
        count: n,
        max: usize::from(u8::MAX),
    })
}

/// `u16` count or an encode error.
pub(crate) fn count_u16(n: usize, what: &'static str) -> Result<u16, EncodeError> {
    u16::try_from(n).map_err(|_| EncodeError::TooMany {
        what,
        count: n,
        max: usize::from(u16::MAX),
    })
}
