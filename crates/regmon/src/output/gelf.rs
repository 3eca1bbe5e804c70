//! GELF over UDP: the JSON zlib-compressed, in one datagram when it fits,
//! else in GELF 1.1 chunks (NXLog does not chunk: its large events exceed
//! the datagram and are lost).

use flate2::write::ZlibEncoder;
use flate2::Compression;
use std::io::Write;

/// The largest datagram sent: GELF's chunk size limit.
pub const MAX_DATAGRAM: usize = 8192;
/// Chunk header: magic 0x1e 0x0f, 8-byte message id, sequence, count.
const HEADER: usize = 12;
/// GELF's limit on chunks per message.
pub const MAX_CHUNKS: usize = 128;

/// zlib of `json`.
pub fn compress(json: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(
        Vec::with_capacity(json.len() / 2 + 64),
        Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = z.write_all(json);
    z.finish().unwrap_or_default()
}

/// The datagrams of one compressed message: itself when it fits, else
/// chunks with message id `id`; an error says why a message cannot go.
pub fn datagrams(data: &[u8], id: u64) -> Result<Vec<Vec<u8>>, String> {
    if data.len() <= MAX_DATAGRAM {
        return Ok(vec![data.to_vec()]);
    }
    let per = MAX_DATAGRAM - HEADER;
    let count = data.len().div_ceil(per);
    if count > MAX_CHUNKS {
        return Err(format!(
            "GELF message of {} bytes compressed needs {count} chunks of {MAX_DATAGRAM} bytes; GELF allows {MAX_CHUNKS}",
            data.len()
        ));
    }
    Ok(data
        .chunks(per)
        .enumerate()
        .map(|(seq, part)| {
            let mut d = Vec::with_capacity(HEADER + part.len());
            d.extend_from_slice(&[0x1e, 0x0f]);
            d.extend_from_slice(&id.to_be_bytes());
            // count <= 128, so both fit a byte.
            d.push(seq as u8);
            d.push(count as u8);
            d.extend_from_slice(part);
            d
        })
        .collect())
}

/// The bytes queued for one event of a network output: the GELF JSON
/// when its OutputType is a GELF one, else `$raw_event`.
pub fn payload(
    net: &nxconf::Net,
    hostname: &str,
    rec: &nxconf::Record,
    raw_event: String,
) -> Vec<u8> {
    match net.output_type.gelf() {
        Some(g) => nxconf::gelf::to_gelf(rec, &raw_event, hostname, g).into_bytes(),
        None => raw_event.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::ZlibDecoder;
    use std::io::Read;

    #[test]
    fn small_messages_go_whole_and_compressed() {
        let json = br#"{"version":"1.1","host":"h","short_message":"m"}"#;
        let z = compress(json);
        let d = datagrams(&z, 7).unwrap();
        assert_eq!(d, vec![z.clone()]);
        assert_eq!(&z[..1], &[0x78]);
        let mut back = Vec::new();
        ZlibDecoder::new(&d[0][..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, json);
    }

    #[test]
    fn large_messages_are_chunked_and_reassemble() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let d = datagrams(&data, 0x0102030405060708).unwrap();
        assert_eq!(d.len(), 3);
        let mut joined = Vec::new();
        for (i, c) in d.iter().enumerate() {
            assert!(c.len() <= MAX_DATAGRAM);
            assert_eq!(&c[..2], &[0x1e, 0x0f]);
            assert_eq!(&c[2..10], &[1, 2, 3, 4, 5, 6, 7, 8]);
            assert_eq!((c[10], c[11]), (i as u8, 3));
            joined.extend_from_slice(&c[12..]);
        }
        assert_eq!(joined, data);
    }

    #[test]
    fn too_many_chunks_is_refused() {
        let data = vec![0u8; (MAX_DATAGRAM - 12) * 128 + 1];
        let e = datagrams(&data, 1).unwrap_err();
        assert!(e.contains("129 chunks"), "{e}");
        assert!(datagrams(&data[..data.len() - 1], 1).is_ok());
    }
}
