//! Sending mailings: a shared outbox consumer. A mailing's save leaves an event; when the
//! mailing is queued, the consumer sends to its recipients one at a time, no faster than the
//! settings' rate, and records each answer on the recipient's delivery row:
//!
//! - before a mail is handed to the server its row says `sending`, after, `sent` (with the
//!   server's answer) or `failed` (a permanent refusal, with the answer); a recipient without
//!   an address, or who unsubscribed, is `skipped`;
//! - the server down or busy (a transient answer): the row goes back to `queued` and the
//!   event fails, so the outbox tries the mailing again later, with a growing delay;
//! - the process stopped (even `kill -9`): the event was not passed, so the next start goes on
//!   with the rows still `queued` or `sending`. A `sending` row is the only mail that may reach
//!   its recipient twice; it goes again with the same Message-ID (the row's key), by which mail
//!   systems recognise the same message.
//!
//! When no row is left to send, the mailing is marked sent through the save pipeline.

use std::time::Duration;

use crm_store::jobs::Event;
use crm_store::mail::{self as store, Delivery, Status};
use crm_store::records::col;
use lettre::Address;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use serde_json::json;
use uuid::Uuid;

use super::merge::{Reader, Recipient, Template};
use super::settings::{self, Settings};
use super::smtp::{Connection, Failure, answer_of};
use super::{MAILING, tracking, unsubscribe};
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Consumer, Handled};
use crate::records::{Source, Unit};
use crate::sms;

pub struct Sender;

/// The consumer's name, kept with its cursor and claim.
const NAME: &str = "mail";

/// Recipients read at a time.
const BATCH: i64 = 200;

/// Attempts at one recipient before their mail is given up as failed.
const MOST_ATTEMPTS: i64 = 5;

impl Consumer for Sender {
    fn name(&self) -> &'static str {
        NAME
    }

    fn shared(&self) -> bool {
        true
    }

    fn handle<'a>(&'a self, app: &'a App, event: &'a Event) -> Handled<'a> {
        Box::pin(async move {
            if event.entity != MAILING {
                return Ok(());
            }
            send(app, event.record_id).await.map_err(|e| e.to_string())
        })
    }
}

/// The mailing's values the sender needs.
struct Mailing {
    subject: String,
    body: String,
    campaign: Option<Uuid>,
    sender: Uuid,
    /// The SMS template's record, for a mailing of texts.
    sms_template: Option<Uuid>,
}

/// Reads a mailing; `None` unless it is queued (a draft, a cancelled or a sent one has
/// nothing to send).
async fn queued(app: &App, id: Uuid) -> ApiResult<Option<Mailing>> {
    let catalog = app.catalog();
    let Some(entity) = catalog.entity(MAILING) else { return Ok(None) };
    let Some(record) = crm_store::records::get(&app.db, entity, id, None).await? else { return Ok(None) };
    let value = |name: &str| entity.column_index(name).map(|i| &record.values[i]);
    let text = |name: &str| match value(name) {
        Some(crm_model::Value::Text(text)) => text.clone(),
        _ => String::new(),
    };
    let id_of = |name: &str| match value(name) {
        Some(crm_model::Value::Uuid(id)) => Some(*id),
        _ => None,
    };
    if text("status") != "queued" {
        return Ok(None);
    }
    let sms_template = (text("channel") == "sms").then(|| id_of("sms_template")).flatten();
    let sender = match &record.values[col::CREATED_BY] {
        crm_model::Value::Uuid(by) => *by,
        _ => Uuid::nil(),
    };
    Ok(Some(Mailing { subject: text("name"), body: text("body"), campaign: id_of("campaign"), sender, sms_template }))
}

/// What sending mail needs: the server, the sender, the merge and the open connection.
struct Mail {
    settings: Settings,
    from: Mailbox,
    domain: String,
    template: ApiResult<Template>,
    connection: Option<Connection>,
}

/// How a mailing reaches its recipients.
enum Channel {
    Mail(Box<Mail>),
    Sms { provider: Box<dyn sms::Provider>, template: Box<ApiResult<sms::Template>> },
}

impl Channel {
    async fn of(app: &App, reader: &Reader<'_>, mailing: &Mailing) -> ApiResult<(Channel, u32)> {
        let Some(template) = mailing.sms_template else {
            let settings = settings::load(app).await?.ok_or_else(settings::not_configured)?;
            let from = settings.from()?;
            let domain = from.email.domain().to_owned();
            let rate = settings.rate_per_second;
            let template = Template::new(&mailing.subject, &mailing.body);
            return Ok((Channel::Mail(Box::new(Mail { settings, from, domain, template, connection: None })), rate));
        };
        let settings = sms::load(app).await?.ok_or_else(sms::not_configured)?;
        let provider = settings
            .provider()
            .map_err(|f| ApiError::Upstream { code: "sms_deferred", message: f.answer().to_owned() })?;
        let template = Box::new(reader.sms_template(template).await);
        Ok((Channel::Sms { provider, template }, settings.rate_per_second))
    }

    /// The field of a recipient's record their address is in.
    fn address_field(&self) -> &'static str {
        match self {
            Channel::Mail(_) => super::ADDRESS,
            Channel::Sms { .. } => sms::MOBILE,
        }
    }

    async fn close(self) {
        if let Channel::Mail(mail) = self
            && let Some(connection) = mail.connection
        {
            connection.close().await;
        }
    }
}

/// A recipient checked and their message merged: to hand over, or why not.
enum Prepared {
    Skipped(&'static str),
    Failed(String),
    Mail(Box<Message>),
    Sms(sms::Text),
}

/// Sends what is left of a queued mailing; an error means it is to be tried again later.
async fn send(app: &App, id: Uuid) -> ApiResult<()> {
    let Some(mailing) = queued(app, id).await? else { return Ok(()) };
    // Messages merge what the sender may read: a field hidden from them is not in them.
    let sender = match app.principal(mailing.sender).await {
        Ok(principal) => principal,
        Err(_) => Principal::system(&app.catalog()),
    };
    let mut reader = Reader::new(app, sender);
    let (mut channel, rate) = Channel::of(app, &reader, &mailing).await?;
    let gap = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut next_at = tokio::time::Instant::now();
    let mut claimed = tokio::time::Instant::now();
    loop {
        renew(app, &mut claimed, true).await?;
        // Cancelled meanwhile: what is left stays unsent.
        if queued(app, id).await?.is_none() {
            return Ok(());
        }
        let due = store::due(&app.db, id, BATCH).await?;
        if due.is_empty() {
            break;
        }
        let mut read = Vec::with_capacity(due.len());
        for delivery in due {
            let recipient = reader
                .recipient(&delivery.entity, delivery.record_id, mailing.campaign, channel.address_field())
                .await?;
            read.push((delivery, recipient));
        }
        let addresses: Vec<String> =
            read.iter().filter_map(|(_, r)| r.as_ref()?.address.as_deref()).map(str::to_lowercase).collect();
        let suppressed = store::suppressed(&app.db, &addresses).await?;
        for (mut delivery, recipient) in read {
            delivery.updated_at = app.now();
            let prepared = prepare(app, &channel, &mut delivery, recipient, &suppressed)?;
            let handed = match prepared {
                Prepared::Skipped(why) => {
                    finish(app, &mut delivery, Status::Skipped, why).await?;
                    continue;
                }
                Prepared::Failed(why) => {
                    finish(app, &mut delivery, Status::Failed, &why).await?;
                    continue;
                }
                prepared => prepared,
            };
            tokio::time::sleep_until(next_at).await;
            renew(app, &mut claimed, false).await?;
            next_at = tokio::time::Instant::now() + gap;
            delivery.status = Status::Sending;
            delivery.attempts += 1;
            store::mark(&app.db, &delivery).await?;
            let outcome = match (&mut channel, &handed) {
                (Channel::Mail(mail), Prepared::Mail(message)) => {
                    hand_over(&mail.settings, &mut mail.connection, message).await.map(|response| answer_of(&response))
                }
                (Channel::Sms { provider, .. }, Prepared::Sms(text)) => {
                    let parts = sms::segments(delivery.subject.as_deref().unwrap_or_default());
                    provider.send(text).await.map(|receipt| format!("{receipt} · {parts}"))
                }
                _ => unreachable!("a message is prepared for its own channel"),
            };
            match outcome {
                Ok(answer) => {
                    delivery.sent_at = Some(app.now());
                    finish(app, &mut delivery, Status::Sent, &answer).await?;
                }
                Err(Failure::Deferred(answer)) if delivery.attempts < MOST_ATTEMPTS => {
                    // The server is down or busy: the rest waits for the outbox to try again.
                    finish(app, &mut delivery, Status::Queued, &answer).await?;
                    return Err(ApiError::Upstream { code: "mail_deferred", message: answer });
                }
                Err(Failure::Bounced(answer)) => finish(app, &mut delivery, Status::Bounced, &answer).await?,
                Err(failure) => finish(app, &mut delivery, Status::Failed, failure.answer()).await?,
            }
        }
    }
    channel.close().await;
    done(app, id).await
}

/// How often a node sending a mailing renews its claim on the consumer: well within the
/// claim's lease, however slow the configured rate.
const RENEW: Duration = Duration::from_secs(10);

/// Renews this node's claim now (`now`), or when it is due; an error when another node took
/// the consumer over, so that no mail goes from two nodes.
async fn renew(app: &App, claimed: &mut tokio::time::Instant, now: bool) -> ApiResult<()> {
    if !now && claimed.elapsed() < RENEW {
        return Ok(());
    }
    if !crate::jobs::renew_claim(app, NAME).await? {
        return Err(ApiError::Conflict("another node took the mail over".into()));
    }
    *claimed = tokio::time::Instant::now();
    Ok(())
}

/// Checks a recipient and merges their message: skipped without an address (or, for mail,
/// unsubscribed), failed when the template cannot merge for them.
fn prepare(
    app: &App,
    channel: &Channel,
    delivery: &mut Delivery,
    recipient: Option<Recipient>,
    suppressed: &[String],
) -> ApiResult<Prepared> {
    let Some(recipient) = recipient else {
        return Ok(Prepared::Skipped("the recipient is gone, or out of the sender's scope"));
    };
    match channel {
        Channel::Mail(mail) => {
            let Mail { from, domain, template, .. } = mail.as_ref();
            let Some(address) = recipient.address.clone() else { return Ok(Prepared::Skipped("no e-mail address")) };
            delivery.address = Some(address.clone());
            if recipient.opted_out || suppressed.contains(&address.to_lowercase()) {
                return Ok(Prepared::Skipped("unsubscribed"));
            }
            let Ok(to) = address.trim().parse::<Address>() else {
                return Ok(Prepared::Failed("not an e-mail address".into()));
            };
            let rendered = match template {
                Ok(template) => template.render(&recipient.data),
                Err(e) => Err(e.to_string()),
            };
            let (subject, html) = match rendered {
                Ok(rendered) => rendered,
                Err(error) => return Ok(Prepared::Failed(error)),
            };
            delivery.subject = Some(subject.clone());
            let unsubscribe = unsubscribe::link(app, &delivery.entity, delivery.record_id);
            let html =
                if mail.settings.tracking { tracking::instrument(app, delivery, &html, &unsubscribe) } else { html };
            Ok(Prepared::Mail(Box::new(message(from, to, domain, delivery, &subject, html, &unsubscribe)?)))
        }
        Channel::Sms { template, .. } => {
            let Some(to) = recipient.address.as_deref().and_then(sms::mobile) else {
                return Ok(Prepared::Skipped("no mobile number"));
            };
            delivery.address = Some(to.clone());
            let rendered = match template.as_ref() {
                Ok(template) => template.render(to, &recipient.data),
                Err(e) => Err(e.to_string()),
            };
            match rendered {
                Ok((text, read)) => {
                    delivery.subject = Some(read);
                    Ok(Prepared::Sms(text))
                }
                Err(error) => Ok(Prepared::Failed(error)),
            }
        }
    }
}

/// Sends one mail over the open connection, or a new one when there is none or it broke
/// (the server closes idle connections).
async fn hand_over(
    settings: &Settings,
    connection: &mut Option<Connection>,
    message: &Message,
) -> Result<lettre::transport::smtp::response::Response, Failure> {
    if connection.as_ref().is_some_and(Connection::broken) {
        *connection = None;
    }
    let open = match connection {
        Some(open) => open,
        None => connection.insert(Connection::open(settings).await?),
    };
    let sent = open.send(message).await;
    if open.broken() {
        *connection = None;
    }
    sent
}

/// Records where a recipient's mail ended up.
async fn finish(app: &App, delivery: &mut Delivery, status: Status, answer: &str) -> ApiResult<()> {
    delivery.status = status;
    delivery.answer = Some(answer.chars().take(1000).collect());
    delivery.updated_at = app.now();
    Ok(store::mark(&app.db, delivery).await?)
}

/// One recipient's mail. Its Message-ID is the delivery's key, the same if it is sent again.
fn message(
    from: &Mailbox,
    to: Address,
    domain: &str,
    delivery: &Delivery,
    subject: &str,
    html: String,
    unsubscribe: &str,
) -> ApiResult<Message> {
    let header = |name: &'static str, value: String| HeaderValue::new(HeaderName::new_from_ascii_str(name), value);
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(subject)
        .message_id(Some(format!("<{}.{}@{domain}>", delivery.mailing_id.simple(), delivery.record_id.simple())))
        .raw_header(header("List-Unsubscribe", format!("<{unsubscribe}>")))
        .raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_owned()))
        .header(ContentType::TEXT_HTML)
        .body(html)
        .map_err(|e| ApiError::Internal(e.into()))
}

/// Marks a mailing whose recipients all have an answer as sent.
async fn done(app: &App, id: Uuid) -> ApiResult<()> {
    let system = Principal::system(&app.catalog());
    let mut unit = Unit::new(app, &system, Source::Mail).await?;
    unit.update(MAILING, &id.to_string(), &json!({"status": "sent", "sent_at": app.now()}), None).await?;
    unit.commit().await?;
    Ok(())
}
