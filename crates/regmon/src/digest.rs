//! The digest algorithms `Digest` may name.

use sha2::Digest as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlg {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Rmd160,
    Blake2b512,
    Blake2s256,
    Sha3_256,
    Sha3_512,
    Blake3,
}

/// Lower-case names accepted in the configuration, in documentation order.
pub const SUPPORTED: &str =
    "md5, sha1, sha224, sha256, sha384, sha512, rmd160, blake2b512, blake2s256, sha3-256, sha3-512, blake3";

impl DigestAlg {
    pub fn parse(s: &str) -> Result<DigestAlg, String> {
        use DigestAlg::*;
        Ok(match s.to_ascii_lowercase().as_str() {
            "md5" => Md5,
            "sha1" => Sha1,
            "sha224" => Sha224,
            "sha256" => Sha256,
            "sha384" => Sha384,
            "sha512" => Sha512,
            "rmd160" | "ripemd160" => Rmd160,
            "blake2b512" => Blake2b512,
            "blake2s256" => Blake2s256,
            "sha3-256" => Sha3_256,
            "sha3-512" => Sha3_512,
            "blake3" => Blake3,
            _ => {
                return Err(format!(
                    "unsupported digest '{s}' (supported: {SUPPORTED})"
                ))
            }
        })
    }

    /// The canonical upper-case name reported in `$DigestName`.
    pub fn name(self) -> &'static str {
        use DigestAlg::*;
        match self {
            Md5 => "MD5",
            Sha1 => "SHA1",
            Sha224 => "SHA224",
            Sha256 => "SHA256",
            Sha384 => "SHA384",
            Sha512 => "SHA512",
            Rmd160 => "RMD160",
            Blake2b512 => "BLAKE2B512",
            Blake2s256 => "BLAKE2S256",
            Sha3_256 => "SHA3-256",
            Sha3_512 => "SHA3-512",
            Blake3 => "BLAKE3",
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use DigestAlg::*;
        match self {
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
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    crate::cmd::hive::push_hex(bytes, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            hex(&DigestAlg::Sha1.digest(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(&DigestAlg::Md5.digest(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex(&DigestAlg::Rmd160.digest(b"abc")),
            "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"
        );
        assert_eq!(DigestAlg::Blake3.digest(b"x").len(), 32);
        for n in SUPPORTED.split(", ") {
            let a = DigestAlg::parse(n).unwrap();
            assert_eq!(DigestAlg::parse(a.name()).unwrap(), a);
        }
        assert!(DigestAlg::parse("md2").unwrap_err().contains("supported: md5"));
    }
}
