//! The ID token an OpenID provider answers with: a JWT whose signature is checked against
//! the provider's published keys (RS256 or ES256, by ring), then its issuer, audience,
//! expiry and nonce.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value as Json};

/// Leeway for clocks that disagree a little.
const SKEW_SECONDS: i64 = 60;

fn part(text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).map_err(|_| "the ID token is not base64url".to_owned())
}

fn key_bytes(key: &Json, name: &str) -> Result<Vec<u8>, String> {
    part(key[name].as_str().ok_or_else(|| format!("the provider's key has no `{name}`"))?)
}

/// The claims of an ID token whose signature one of `jwks`'s keys makes.
pub fn verified(id_token: &str, jwks: &Json) -> Result<Map<String, Json>, String> {
    let parts: Vec<&str> = id_token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else { return Err("the ID token is not a JWT".into()) };
    let head: Json = serde_json::from_slice(&part(header)?).map_err(|_| "the ID token's header is not JSON")?;
    let alg = head["alg"].as_str().unwrap_or_default();
    let kid = head["kid"].as_str();
    let keys = jwks["keys"].as_array().map(Vec::as_slice).unwrap_or_default();
    let key = keys
        .iter()
        .filter(|k| k["use"].as_str().is_none_or(|u| u == "sig"))
        .find(|k| kid.is_none_or(|kid| k["kid"].as_str() == Some(kid)))
        .ok_or_else(|| format!("the provider publishes no key `{}`", kid.unwrap_or("?")))?;
    let message = format!("{header}.{payload}");
    let signature = part(signature)?;
    let checked = match alg {
        "RS256" => RsaPublicKeyComponents { n: key_bytes(key, "n")?, e: key_bytes(key, "e")? }.verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            message.as_bytes(),
            &signature,
        ),
        "ES256" => {
            let mut point = vec![4u8];
            point.extend(key_bytes(key, "x")?);
            point.extend(key_bytes(key, "y")?);
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(message.as_bytes(), &signature)
        }
        other => return Err(format!("the ID token is signed with `{other}`; RS256 or ES256 are taken")),
    };
    checked.map_err(|_| "the ID token's signature does not match the provider's key".to_owned())?;
    match serde_json::from_slice(&part(payload)?) {
        Ok(Json::Object(claims)) => Ok(claims),
        _ => Err("the ID token's claims are not a JSON object".into()),
    }
}

/// Checks that the token is the provider's, for this client, still valid, and of this sign-in.
pub fn check(claims: &Map<String, Json>, issuer: &str, client_id: &str, nonce: &str, now: i64) -> Result<(), String> {
    if claims.get("iss").and_then(Json::as_str) != Some(issuer) {
        return Err("the ID token is from another issuer".into());
    }
    let for_us = match claims.get("aud") {
        Some(Json::String(aud)) => aud == client_id,
        Some(Json::Array(auds)) => auds.iter().any(|a| a == client_id),
        _ => false,
    };
    if !for_us {
        return Err("the ID token is for another client".into());
    }
    if claims.get("exp").and_then(Json::as_i64).is_none_or(|exp| exp + SKEW_SECONDS < now) {
        return Err("the ID token has expired".into());
    }
    if claims.get("nonce").and_then(Json::as_str) != Some(nonce) {
        return Err("the ID token is not of this sign-in (nonce)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Json) -> Map<String, Json> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_token_for_someone_else_or_too_old_is_refused() {
        let good = json!({"iss": "https://idp.liyou.cn", "aud": "crm", "exp": 2000, "nonce": "n1"});
        assert!(check(&claims(good.clone()), "https://idp.liyou.cn", "crm", "n1", 1990).is_ok());
        assert!(check(&claims(good.clone()), "https://idp.liyou.cn", "crm", "n1", 2100).is_err());
        assert!(check(&claims(good.clone()), "https://evil.example", "crm", "n1", 1990).is_err());
        assert!(check(&claims(good.clone()), "https://idp.liyou.cn", "other", "n1", 1990).is_err());
        assert!(check(&claims(good), "https://idp.liyou.cn", "crm", "n2", 1990).is_err());
        let listed = json!({"iss": "https://idp.liyou.cn", "aud": ["erp", "crm"], "exp": 2000, "nonce": "n1"});
        assert!(check(&claims(listed), "https://idp.liyou.cn", "crm", "n1", 1990).is_ok());
    }

    #[test]
    fn an_unsigned_or_garbled_token_is_refused() {
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]});
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode("{}"));
        assert!(verified(&none, &jwks).is_err());
        assert!(verified("not-a-jwt", &jwks).is_err());
        let forged = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#),
            URL_SAFE_NO_PAD.encode([1u8; 256])
        );
        assert!(verified(&forged, &jwks).unwrap_err().contains("signature"));
    }
}
