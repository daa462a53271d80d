//! Signing: an in-toto statement becomes a DSSE envelope signed over PAE, inside a key-based
//! Sigstore bundle.

use crate::bundle::key_bundle_json;
use crate::dsse::{pae, PAYLOAD_TYPE_INTOTO};
use crate::keys::{KeyError, SigningKey};
use crate::statement::Statement;

/// Sign `statement` and return the bundle as compact JSON (one line, fit for JSON Lines).
pub fn sign_statement(key: &SigningKey, statement: &Statement) -> Result<String, KeyError> {
    let payload = statement
        .payload()
        .map_err(|e| KeyError::Malformed(format!("cannot serialize the statement: {e}")))?;
    let signature = key.sign(&pae(PAYLOAD_TYPE_INTOTO, &payload))?;
    Ok(key_bundle_json(
        key.public_key().hint(),
        PAYLOAD_TYPE_INTOTO,
        &payload,
        &signature,
    ))
}
