//! Hashing value data with the algorithm `Digest` names (the names and their
//! parsing live with the configuration, in nxconf).

pub use nxconf::DigestAlgorithm;
use sha2::Digest as _;

/// The digest of `data`.
pub fn digest(alg: DigestAlgorithm, data: &[u8]) -> Vec<u8> {
    use DigestAlgorithm::*;
    match alg {
        Md5 => md5::Md5::digest(data).to_vec(),
        Sha1 => sha1::Sha1::digest(data).to_vec(),
        Sha224 => sha2::Sha224::digest(data).to_vec(),
        Sha256 => sha2::Sha256::digest(data).to_vec(),
        Sha384 => sha2::Sha384::digest(data).to_vec(),
        Sha512 => sha2::Sha512::digest(data).to_vec(),
        Rmd160 => ripemd::Ripemd160::digest(data).to_vec(),
        Blake2b512 => blake2::Blake2b512::digest(data).to_vec(),
        Blake2s256 => blake2::Blake2s256::digest(data).to_vec(),
        Sha3_256 => sha3::Sha3_256::digest(data).to_vec(),
        Sha3_512 => sha3::Sha3_512::digest(data).to_vec(),
        Blake3 => blake3::hash(data).as_bytes().to_vec(),
    }
}

/// A digest value kept inline (no heap allocation per value): up to 64
/// bytes, the longest algorithm's output.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    len: u8,
    buf: [u8; 64],
}

impl Digest {
    pub fn of(alg: DigestAlgorithm, data: &[u8]) -> Digest {
        Digest::from_slice(&digest(alg, data))
    }

    /// At most 64 bytes are kept (longer input is cut: it never occurs).
    pub fn from_slice(b: &[u8]) -> Digest {
        let mut buf = [0u8; 64];
        let len = b.len().min(64);
        buf[..len].copy_from_slice(&b[..len]);
        Digest {
            len: len as u8,
            buf,
        }
    }
}

impl std::ops::Deref for Digest {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(self))
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let h = |a, d: &[u8]| hex(&digest(a, d));
        assert_eq!(
            h(DigestAlgorithm::Sha1, b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            h(DigestAlgorithm::Md5, b""),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            h(DigestAlgorithm::Rmd160, b"abc"),
            "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"
        );
        assert_eq!(
            h(DigestAlgorithm::Sha256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            h(DigestAlgorithm::Blake3, b""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        for a in DigestAlgorithm::ALL {
            assert!(!digest(a, b"x").is_empty());
        }
    }
}
