//! Opens and clicks (已打开, 已点击), where the administrator turned tracking on in the mail
//! settings. A tracked mail carries a one-pixel image and its links lead through this server:
//! each address names the recipient's delivery and is signed with the node's key, a link's
//! signature covering its destination, so the server redirects only to what the mail said
//! and nobody records an open for someone else. The first open and the first click are kept
//! on the delivery; a click counts as an open, as images are often not shown.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use crm_store::mail::{self as store, Delivery, Engagement};

use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::http::{ApiPath, ApiQuery};

/// A transparent GIF of one pixel.
const PIXEL: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

fn message(what: &str, mailing: Uuid, entity: &str, record: Uuid, to: &str) -> String {
    format!("{what}:{mailing}:{entity}:{record}:{to}")
}

/// The recipient's part of a tracking address.
fn recipient(delivery: &Delivery) -> String {
    format!("{}/{}/{}", delivery.mailing_id, delivery.entity, delivery.record_id)
}

/// A mail's HTML with its links led through this server and the pixel at its end. The
/// unsubscribe link is left as it is: it must work however the mail is read.
pub fn instrument(app: &App, delivery: &Delivery, html: &str, unsubscribe: &str) -> String {
    let base = &app.config.public_url;
    let who = recipient(delivery);
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html;
    while let Some(at) = rest.find("href=\"") {
        let start = at + "href=\"".len();
        let Some(length) = rest[start..].find('"') else { break };
        let written = &rest[start..start + length];
        let to = unescape(written);
        out.push_str(&rest[..start]);
        if (to.starts_with("http://") || to.starts_with("https://")) && to != unsubscribe {
            let signature =
                app.secrets.sign(&message("click", delivery.mailing_id, &delivery.entity, delivery.record_id, &to));
            let link = format!("{base}/t/c/{who}/{signature}?u={}", crate::screens::encode(&to));
            out.push_str(&link.replace('&', "&amp;"));
        } else {
            out.push_str(written);
        }
        rest = &rest[start + length..];
    }
    out.push_str(rest);
    let signature = app.secrets.sign(&message("open", delivery.mailing_id, &delivery.entity, delivery.record_id, ""));
    let pixel = format!(r#"<img src="{base}/t/o/{who}/{signature}" width="1" height="1" alt="">"#);
    match out.rfind("</body>") {
        Some(end) => out.insert_str(end, &pixel),
        None => out.push_str(&pixel),
    }
    out
}

/// An attribute's text as written by a template, read back: the escapes MiniJinja writes
/// undone, `&amp;` last so nothing is undone twice.
fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

type Path = (String, String, String, String);

/// The delivery a tracking address names, when its signature over `to` is this server's.
fn named(app: &App, what: &str, (mailing, entity, record, signature): &Path, to: &str) -> ApiResult<(Uuid, Uuid)> {
    let unknown = || ApiError::not_found("no such link");
    let mailing: Uuid = mailing.parse().map_err(|_| unknown())?;
    let record: Uuid = record.parse().map_err(|_| unknown())?;
    if !app.secrets.verify(&message(what, mailing, entity, record, to), signature) {
        return Err(unknown());
    }
    Ok((mailing, record))
}

/// `GET /t/o/{mailing}/{entity}/{record}/{signature}`: the pixel; the mail was opened.
pub async fn opened(State(app): State<AppState>, ApiPath(path): ApiPath<Path>) -> ApiResult<Response> {
    let (mailing, record) = named(&app, "open", &path, "")?;
    store::engage(&app.db, mailing, &path.1, record, Engagement::Opened, app.now()).await?;
    let mut response = PIXEL.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Deserialize)]
pub struct To {
    u: String,
}

/// `GET /t/c/{mailing}/{entity}/{record}/{signature}?u=`: a link followed; on to where it
/// goes.
pub async fn clicked(
    State(app): State<AppState>,
    ApiPath(path): ApiPath<Path>,
    ApiQuery(to): ApiQuery<To>,
) -> ApiResult<Response> {
    let (mailing, record) = named(&app, "click", &path, &to.u)?;
    store::engage(&app.db, mailing, &path.1, record, Engagement::Clicked, app.now()).await?;
    Ok(Redirect::to(&to.u).into_response())
}
