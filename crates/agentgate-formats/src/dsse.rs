//! DSSE (Dead Simple Signing Envelope) v1: what exactly gets signed, so that signer and verifier
//! agree byte for byte and the payload type cannot be swapped under a signature.

/// The payload type of an in-toto statement inside DSSE.
pub const PAYLOAD_TYPE_INTOTO: &str = "application/vnd.in-toto+json";

/// Pre-Authentication Encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, with
/// decimal lengths in bytes. The signature covers this, never the bare payload. sigstore-types'
/// own, which its verifier uses too; the tests below pin it to the specification.
pub use sigstore_types::pae;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_spec_vector() {
        // From the DSSE protocol specification.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn pae_empty_and_multibyte() {
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
        // Lengths are bytes, not characters.
        assert_eq!(
            pae("t", "é".as_bytes()),
            "DSSEv1 1 t 2 é".as_bytes().to_vec()
        );
    }
}
