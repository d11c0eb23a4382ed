//! E-mail (M-2): the mail server an administrator sets up, mailings composed from a template
//! for recipients chosen in a list, and their sending as an outbox consumer.
//!
//! - [`settings`]: the server (host, port, TLS, login, sender, rate), its password sealed;
//! - [`compose`]: a mailing saved through the save pipeline with a delivery row per recipient
//!   in the same transaction — as a draft, for now, or for later;
//! - [`sender`]: the consumer that sends a queued mailing, one recipient at a time at the
//!   configured rate, recording each answer; the delivery row is the idempotency key, so a
//!   restart sends what was not sent and never again what was;
//! - [`merge`]: the template rendered for one recipient (MiniJinja, every value escaped);
//! - [`unsubscribe`]: the signed link in every mail, and the page it opens;
//! - [`screens`]: composing in the browser, a mailing's recipients, the studio's settings.

pub mod compose;
pub mod merge;
pub mod screens;
pub mod sender;
pub mod settings;
pub mod smtp;
pub mod tracking;
pub mod unsubscribe;

pub use sender::Sender;
pub use settings::Settings;

/// The entity of mailings (邮件群发).
pub const MAILING: &str = "mailing";
/// The entity of mail templates (邮件模板).
pub const TEMPLATE: &str = "email_template";
/// The field of a recipient that says they want no marketing mail.
pub const OPT_OUT: &str = "email_opt_out";
/// The field of a recipient with their address.
pub const ADDRESS: &str = "email";
