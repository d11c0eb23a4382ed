//! Requests this server makes to other servers — webhook receivers, the SMS gateway, the
//! identity provider — through one HTTP client over rustls with the web's root certificates
//! (plain `http://` too, for addresses on a trusted network).

use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;

pub type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How long another server has to answer a JSON request.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A client for `https://` and `http://` addresses.
pub fn client() -> Result<HttpsClient, String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| format!("TLS: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// Sends a request and reads a JSON answer; a status other than 2xx is an error naming it and
/// the start of the answer.
pub async fn json(client: &HttpsClient, request: hyper::Request<Full<Bytes>>) -> Result<Json, String> {
    let uri = request.uri().clone();
    let answered = tokio::time::timeout(TIMEOUT, async {
        let response = client.request(request).await.map_err(|e| format!("{uri}: no answer: {e}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| format!("{uri}: the answer broke off: {e}"))?;
        let body = body.to_bytes();
        if !status.is_success() {
            let start: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            return Err(format!("{uri} answered {status}: {start}"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("{uri}: the answer is not JSON: {e}"))
    });
    answered.await.unwrap_or_else(|_| Err(format!("{uri}: no answer within {} s", TIMEOUT.as_secs())))
}

/// `GET` a JSON document.
pub async fn get_json(client: &HttpsClient, url: &str) -> Result<Json, String> {
    let request = hyper::Request::get(url)
        .header(hyper::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("the address `{url}`: {e}"))?;
    json(client, request).await
}
