//! Sending deliveries: each due delivery is held by one node and posted on its own, at most
//! [`IN_FLIGHT`] at once, each within [`TIMEOUT`]. A 2xx answer delivers it; anything else
//! (an error status, no answer, no secret) is tried again after 30 s, 1 min, 2 min … up to an
//! hour between attempts, and given up after [`MOST_ATTEMPTS`] (about ten hours), until an
//! administrator sends it again.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use crm_store::webhooks::{self as store, Attempt, Delivery, Status};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use ring::hmac;
use tokio::task::JoinSet;

use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::outbound::{self, HttpsClient};

/// Deliveries posted at once by a node.
const IN_FLIGHT: usize = 32;
/// How long a receiver may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node holds a delivery it posts: longer than any attempt takes.
const HOLD: TimeDelta = TimeDelta::seconds(60);
/// Attempts before a delivery is given up.
pub const MOST_ATTEMPTS: i64 = 15;
/// How often a node looks for due deliveries.
const POLL: Duration = Duration::from_millis(500);
/// How much of a receiver's answer is kept.
const ANSWER_CHARS: usize = 500;

fn client() -> ApiResult<HttpsClient> {
    outbound::client().map_err(|e| ApiError::Internal(anyhow::anyhow!("webhooks: {e}")))
}

/// The wait before the attempt after `attempts` failed ones.
fn backoff(attempts: i64) -> TimeDelta {
    TimeDelta::seconds(30 << attempts.clamp(1, 8).saturating_sub(1)).min(TimeDelta::hours(1))
}

/// `sha256=` and the hex HMAC-SHA256 of `timestamp.body` by the secret.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Posts deliveries as they fall due, for as long as the server runs.
pub async fn follow(app: AppState) {
    let client = match client() {
        Ok(client) => client,
        Err(e) => return tracing::error!(error = %e, "webhooks are not sent"),
    };
    let mut sending = JoinSet::new();
    loop {
        while sending.try_join_next().is_some() {}
        if let Err(e) = start_due(&app, &client, IN_FLIGHT - sending.len(), &mut sending).await {
            tracing::warn!(error = %e, "looking for due webhook deliveries");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Posts the deliveries due now and waits for their answers; how many were posted. For
/// tests and commands: the server posts them as they fall due.
pub async fn deliver_due(app: &AppState) -> ApiResult<usize> {
    let client = client()?;
    let mut sending = JoinSet::new();
    let started = start_due(app, &client, IN_FLIGHT, &mut sending).await?;
    while sending.join_next().await.is_some() {}
    Ok(started)
}

/// Holds up to `room` due deliveries and posts each in its own task.
async fn start_due(app: &AppState, client: &HttpsClient, room: usize, sending: &mut JoinSet<()>) -> ApiResult<usize> {
    if room == 0 {
        return Ok(0);
    }
    let now = app.now();
    let mut started = 0;
    for delivery in store::due(&app.db, now, room as i64).await? {
        if !store::claim(&app.db, delivery.id, now, now + HOLD).await? {
            continue;
        }
        let (app, client) = (app.clone(), client.clone());
        sending.spawn(async move {
            if let Err(e) = post(&app, &client, &delivery).await {
                tracing::warn!(webhook = %delivery.webhook, delivery = %delivery.id, error = %e, "a webhook delivery");
            }
        });
        started += 1;
    }
    Ok(started)
}

/// One attempt at a delivery, recorded with where it leaves the delivery.
async fn post(app: &App, client: &HttpsClient, delivery: &Delivery) -> ApiResult<()> {
    let started = Instant::now();
    let at = app.now();
    let catalog = app.catalog();
    let hook = catalog.docs().webhooks.get(delivery.webhook.as_str());
    let secret = super::secret(app, &delivery.webhook).await?;
    let outcome = match (hook, secret) {
        (None, _) => Err("the webhook no longer exists".to_owned()),
        (Some(_), None) => Err("the webhook has no secret yet: make one in the studio".to_owned()),
        (Some(hook), Some(secret)) => send(client, &hook.url, delivery, &secret, at).await,
    };
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status_code, answer, delivered) = match outcome {
        Ok((code, answer)) => (Some(i64::from(code)), Some(answer), (200..300).contains(&code)),
        Err(why) => (None, Some(why), false),
    };
    let attempt = Attempt { at, status_code, answer, duration_ms };
    let attempts = delivery.attempts + 1;
    let (status, next_at) = match (delivered, attempts >= MOST_ATTEMPTS) {
        (true, _) => (Status::Delivered, at),
        (false, true) => (Status::Failed, at),
        (false, false) => (Status::Pending, at + backoff(attempts)),
    };
    store::attempted(&app.db, delivery, &attempt, status, next_at).await?;
    Ok(())
}

/// Posts the body, signed; the receiver's status and the start of its answer.
async fn send(
    client: &HttpsClient,
    url: &str,
    delivery: &Delivery,
    secret: &str,
    at: DateTime<Utc>,
) -> Result<(u16, String), String> {
    let timestamp = at.timestamp();
    let request = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "YuanshuCRM-Webhook/1")
        .header("X-CRM-Delivery", delivery.id.to_string())
        .header("X-CRM-Event", delivery.event.as_str())
        .header("X-CRM-Webhook", delivery.webhook.as_str())
        .header("X-CRM-Timestamp", timestamp.to_string())
        .header("X-CRM-Signature", signature(secret, timestamp, &delivery.body))
        .body(Full::new(Bytes::from(delivery.body.clone())))
        .map_err(|e| format!("the address `{url}`: {e}"))?;
    let answered = tokio::time::timeout(TIMEOUT, async {
        let response = client.request(request).await.map_err(|e| format!("no answer: {e}"))?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| format!("the answer broke off: {e}"))?;
        Ok::<_, String>((status, String::from_utf8_lossy(&body.to_bytes()).chars().take(ANSWER_CHARS).collect()))
    });
    answered.await.unwrap_or_else(|_| Err(format!("no answer within {} s", TIMEOUT.as_secs())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_wait_longer_each_time_up_to_an_hour() {
        let waits: Vec<i64> = (1..=MOST_ATTEMPTS).map(|n| backoff(n).num_seconds()).collect();
        assert_eq!(&waits[..4], &[30, 60, 120, 240]);
        assert_eq!(*waits.last().unwrap(), 3600);
        let total: i64 = waits[..(MOST_ATTEMPTS as usize - 1)].iter().sum();
        assert!((8 * 3600..12 * 3600).contains(&total), "given up after about ten hours: {total} s");
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_timestamp_and_the_body() {
        // Worked out apart (Python's hmac) for the key and data of RFC 4231's second case.
        assert_eq!(
            signature("Jefe", 0, "what do ya want for nothing?"),
            "sha256=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
        );
    }
}
