//! Alibaba Cloud SMS (阿里云短信服务, `SendSms` of API version 2017-05-25), signed as its RPC
//! API documents: the parameters sorted and percent-encoded (RFC 3986), the string to sign
//! `POST&%2F&` + the encoded query, and its HMAC-SHA1 with `AccessKeySecret&` in base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use ring::hmac;
use serde_json::Value as Json;

use super::{Provider, Sending, Settings, Text};
use crate::mail::smtp::Failure;
use crate::outbound::{self, HttpsClient};
// The service signs text percent-encoded but for RFC 3986's unreserved characters, which is
// the screens' encoding.
use crate::screens::encode;

/// Answers of the service that a later attempt may not get (a flow limit, a busy service).
const TRANSIENT: [&str; 3] = ["isv.BUSINESS_LIMIT_CONTROL", "isv.OUT_OF_SERVICE", "SignatureNonceUsed"];

pub struct Aliyun {
    settings: Settings,
    client: HttpsClient,
}

impl Aliyun {
    pub fn new(settings: Settings) -> Result<Self, Failure> {
        Ok(Aliyun { settings, client: outbound::client().map_err(Failure::Deferred)? })
    }
}

/// The signed body of a request with these parameters.
pub fn signed(parameters: &mut [(String, String)], secret: &str) -> String {
    parameters.sort();
    let query = parameters.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
    let to_sign = format!("POST&{}&{}", encode("/"), encode(&query));
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, format!("{secret}&").as_bytes());
    let signature = STANDARD.encode(hmac::sign(&key, to_sign.as_bytes()));
    format!("Signature={}&{query}", encode(&signature))
}

impl Provider for Aliyun {
    fn send<'a>(&'a self, text: &'a Text) -> Sending<'a> {
        Box::pin(async move {
            let settings = &self.settings;
            let params = serde_json::to_string(&text.params).map_err(|e| Failure::Refused(e.to_string()))?;
            let mut parameters: Vec<(String, String)> = [
                ("AccessKeyId", settings.access_key_id.as_str()),
                ("Action", "SendSms"),
                ("Format", "JSON"),
                ("PhoneNumbers", text.to.as_str()),
                ("RegionId", "cn-hangzhou"),
                ("SignName", settings.sign_name.as_str()),
                ("SignatureMethod", "HMAC-SHA1"),
                ("SignatureVersion", "1.0"),
                ("TemplateCode", text.template.as_str()),
                ("TemplateParam", params.as_str()),
                ("Version", "2017-05-25"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            parameters.push(("SignatureNonce".into(), uuid::Uuid::now_v7().to_string()));
            parameters.push(("Timestamp".into(), chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()));
            let secret = settings.access_key_secret.clone().unwrap_or_default();
            let body = signed(&mut parameters, &secret);
            let request = hyper::Request::post(settings.endpoint.as_str())
                .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| Failure::Refused(format!("the SMS endpoint: {e}")))?;
            let sending = self.client.request(request);
            let response = tokio::time::timeout(std::time::Duration::from_secs(30), sending)
                .await
                .map_err(|_| Failure::Deferred("the SMS service did not answer in time".into()))?
                .map_err(|e| Failure::Deferred(format!("the SMS service: {e}")))?;
            let status = response.status();
            let bytes = response.into_body().collect().await.map_err(|e| Failure::Deferred(e.to_string()))?.to_bytes();
            let answer: Json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
            let code = answer["Code"].as_str().unwrap_or_default();
            let said = format!("{code} {}", answer["Message"].as_str().unwrap_or_default()).trim().to_owned();
            match code {
                "OK" => Ok(format!("OK {}", answer["BizId"].as_str().unwrap_or_default()).trim().to_owned()),
                _ if status.is_server_error() || TRANSIENT.contains(&code) => Err(Failure::Deferred(said)),
                "" => Err(Failure::Deferred(format!("the SMS service answered {status}"))),
                _ => Err(Failure::Refused(said)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The string to sign is the method, the encoded path and the encoded sorted query.
    #[test]
    fn requests_are_signed_as_the_service_documents() {
        assert_eq!(encode("a b*c~"), "a%20b%2Ac~");
        assert_eq!(encode("短"), "%E7%9F%AD");
        let mut parameters: Vec<(String, String)> =
            [("B", "2"), ("A", "1 1")].iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let body = signed(&mut parameters, "secret");
        assert!(body.ends_with("&A=1%201&B=2"), "sorted and encoded: {body}");
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"secret&");
        let expected = STANDARD.encode(hmac::sign(&key, b"POST&%2F&A%3D1%25201%26B%3D2"));
        assert!(body.starts_with(&format!("Signature={}&", encode(&expected))), "{body}");
    }
}
