/*!
Nix's base-32: how Nix writes hashes in store paths and in `narHash`.

It is not RFC 4648. The alphabet leaves out `e o t u` (to avoid words), and
the bits are taken from the end of the input: the first character holds
the highest bits of the last byte. `n` bytes take `ceil(8n / 5)`
characters; `decode` refuses a text whose length no byte count gives, a
character outside the alphabet, and a first character with bits set above
the input's end, so every byte string has exactly one spelling.
*/

pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// The length of the text for `len` bytes.
pub const fn encoded_len(len: usize) -> usize {
    (len * 8).div_ceil(5)
}

pub fn encode(bytes: &[u8]) -> String {
    let len = encoded_len(bytes.len());
    let mut text = String::with_capacity(len);
    for n in (0..len).rev() {
        let bit = n * 5;
        let (i, j) = (bit / 8, bit % 8);
        let low = bytes[i] >> j;
        let high = match bytes.get(i + 1) {
            Some(next) if j > 3 => next << (8 - j),
            _ => 0,
        };
        text.push(ALPHABET[usize::from((low | high) & 0x1f)] as char);
    }
    text
}

/// Why a text is not Nix base-32 (for the bytes asked for).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("'{text}' is not Nix base-32: no byte string has {} characters", text.len())]
    Length { text: String },
    #[error(
        "'{text}' is not Nix base-32: '{}' is not in the alphabet {}",
        char::from(*byte).escape_default(),
        std::str::from_utf8(ALPHABET).expect("ASCII")
    )]
    Character { text: String, byte: u8 },
    #[error(
        "'{text}' is not Nix base-32: its first character sets bits beyond \
         {} bytes", text.len() * 5 / 8
    )]
    Padding { text: String },
    #[error(
        "'{text}' is not {bytes} bytes in Nix base-32: that takes {} \
         characters, not {}", encoded_len(*bytes), text.len()
    )]
    NotThatLong { text: String, bytes: usize },
}

pub fn decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    let len = text.len() * 5 / 8;
    if encoded_len(len) != text.len() {
        return Err(DecodeError::Length { text: text.to_string() });
    }
    let mut bytes = vec![0u8; len];
    for (n, c) in text.bytes().rev().enumerate() {
        let Some(digit) = ALPHABET.iter().position(|&a| a == c) else {
            return Err(DecodeError::Character {
                text: text.to_string(),
                byte: c,
            });
        };
        // A digit is 5 bits at bit offset 5n, possibly straddling two bytes.
        let digit = digit as u16;
        let bit = n * 5;
        let (i, j) = (bit / 8, bit % 8);
        let shifted = digit << j;
        bytes[i] |= shifted as u8;
        let carry = (shifted >> 8) as u8;
        match bytes.get_mut(i + 1) {
            Some(next) => *next |= carry,
            None if carry != 0 => {
                return Err(DecodeError::Padding { text: text.to_string() })
            }
            None => {}
        }
    }
    Ok(bytes)
}

/// Decodes a text that must hold exactly `N` bytes, such as the 32
/// characters of a store path's digest (20 bytes) or the 52 of a SHA-256.
pub fn decode_array<const N: usize>(
    text: &str,
) -> Result<[u8; N], DecodeError> {
    if text.len() != encoded_len(N) {
        return Err(DecodeError::NotThatLong {
            text: text.to_string(),
            bytes: N,
        });
    }
    Ok(decode(text)?.try_into().expect("the length was checked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    // From `nix-hash --type sha256 --to-base32 <hex>` (Nix 2.8) and
    // `nix-hash --type sha1 --to-base32`.
    const KNOWN: [(&str, &str); 4] = [
        (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73",
        ),
        (
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
        ),
        (
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "1zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        ),
        (
            "a9993e364706816aba3e25717850c26c9cd0d89d",
            "kpcd173cq987hw957sx6m0868wv3x6d9",
        ),
    ];

    #[test]
    fn matches_nix_hash() {
        for (hex, nix32) in KNOWN {
            assert_eq!(encode(&unhex(hex)), nix32, "{hex}");
            assert_eq!(decode(nix32).unwrap(), unhex(hex), "{nix32}");
        }
    }

    #[test]
    fn round_trips_every_length() {
        for len in 0..=40 {
            let bytes: Vec<u8> =
                (0..len).map(|i| (i as u8).wrapping_mul(97) ^ 0x5a).collect();
            let text = encode(&bytes);
            assert_eq!(text.len(), encoded_len(len));
            assert_eq!(decode(&text).unwrap(), bytes, "{text}");
        }
        assert_eq!(encode(&[]), "");
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn decodes_fixed_lengths() {
        let digest: [u8; 32] = decode_array(KNOWN[0].1).unwrap();
        assert_eq!(digest.to_vec(), unhex(KNOWN[0].0));
        let err = decode_array::<20>(KNOWN[0].1).unwrap_err();
        assert_eq!(
            err,
            DecodeError::NotThatLong { text: KNOWN[0].1.into(), bytes: 20 }
        );
        assert!(err.to_string().contains("takes 32 characters, not 52"));
    }

    #[test]
    fn refuses_what_is_not_nix_base32() {
        let error = |bad: &str| decode(bad).unwrap_err();
        // 'e', 'o', 't' and 'u' are left out of the alphabet.
        let e = "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c7e";
        assert_eq!(
            error(e),
            DecodeError::Character { text: e.into(), byte: b'e' }
        );
        assert!(error(e).to_string().contains("'e' is not in the alphabet"));
        let upper = "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c7E";
        assert_eq!(
            error(upper),
            DecodeError::Character { text: upper.into(), byte: b'E' }
        );
        let short = "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c7";
        assert_eq!(error(short), DecodeError::Length { text: short.into() });
        assert!(error(short).to_string().contains("has 51 characters"));
        let high = "2zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";
        assert_eq!(error(high), DecodeError::Padding { text: high.into() });
        assert!(error(high).to_string().contains("bits beyond 32 bytes"));
        assert_eq!(error("z"), DecodeError::Length { text: "z".into() });
    }
}
