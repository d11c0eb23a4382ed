//! A connection to the mail server, kept for the mails of a mailing one after another.
//!
//! It is made here rather than by lettre's transport because that one leaves Nagle's algorithm
//! on: lettre writes a message and its closing `.` apart, so each mail waited for the
//! server's delayed acknowledgement (40 ms), and a mailing crawled at some twenty mails a
//! second. The socket here sends at once; lettre still speaks SMTP over it.

use std::sync::Arc;
use std::time::Duration;

use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::settings::{Security, Settings};

/// How long the server may take to answer before the mail is tried again later.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a mail did not go.
#[derive(Debug)]
pub enum Failure {
    /// The server refused it for good (5xx): sending it again would not help.
    Refused(String),
    /// The server refused the recipient's mailbox for good (550–553: no such user, mailbox
    /// full or not allowed): a bounce.
    Bounced(String),
    /// The server is busy or unreachable, or the connection broke: later may work.
    Deferred(String),
}

impl Failure {
    pub fn answer(&self) -> &str {
        match self {
            Failure::Refused(answer) | Failure::Bounced(answer) | Failure::Deferred(answer) => answer,
        }
    }
}

/// The permanent answers about the mailbox itself (RFC 5321, 4.2.3).
const MAILBOX_REFUSED: [&str; 4] = ["550", "551", "552", "553"];

impl From<lettre::transport::smtp::Error> for Failure {
    fn from(error: lettre::transport::smtp::Error) -> Self {
        let code = error.status().map(|code| code.to_string());
        match (error.is_permanent(), code) {
            (true, Some(code)) if MAILBOX_REFUSED.contains(&code.as_str()) => Failure::Bounced(error.to_string()),
            (true, _) => Failure::Refused(error.to_string()),
            (false, _) => Failure::Deferred(error.to_string()),
        }
    }
}

fn deferred(error: impl std::fmt::Display) -> Failure {
    Failure::Deferred(error.to_string())
}

/// What the server said when it took a mail.
pub fn answer_of(response: &Response) -> String {
    format!("{} {}", response.code(), response.message().collect::<Vec<_>>().join(" "))
}

pub struct Connection {
    inner: AsyncSmtpConnection,
}

impl Connection {
    /// Connects, secures the connection as the settings say, and logs in.
    pub async fn open(settings: &Settings) -> Result<Connection, Failure> {
        let host = settings.host.trim();
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect((host, settings.port)))
            .await
            .map_err(|_| deferred(format!("{host}:{} did not answer", settings.port)))?
            .map_err(|e| deferred(format!("{host}:{}: {e}", settings.port)))?;
        tcp.set_nodelay(true).map_err(deferred)?;
        let hello = ClientId::default();
        let stream: Box<dyn AsyncTokioStream> = match settings.security {
            Security::Tls => Box::new(Tls(tls(host, tcp).await?)),
            Security::None | Security::Starttls => Box::new(tcp),
        };
        let mut inner = AsyncSmtpConnection::connect_with_transport(stream, &hello).await?;
        if settings.security == Security::Starttls {
            let parameters = TlsParameters::new(host.to_owned()).map_err(deferred)?;
            inner.starttls(parameters, &hello).await?;
        }
        if !settings.username.is_empty() {
            let credentials =
                Credentials::new(settings.username.clone(), settings.password.clone().unwrap_or_default());
            inner.auth(DEFAULT_MECHANISMS, &credentials).await?;
        }
        Ok(Connection { inner })
    }

    /// Hands one mail to the server; its answer when it took it.
    pub async fn send(&mut self, message: &Message) -> Result<Response, Failure> {
        let formatted = message.formatted();
        let sending = self.inner.send(message.envelope(), &formatted);
        match tokio::time::timeout(TIMEOUT, sending).await {
            Ok(outcome) => Ok(outcome?),
            Err(_) => Err(deferred("the mail server did not answer in time")),
        }
    }

    /// Whether the connection broke, so the next mail needs a new one.
    pub fn broken(&self) -> bool {
        self.inner.has_broken()
    }

    /// Says goodbye; a server that went away meanwhile does not matter any more.
    pub async fn close(mut self) {
        let _ = self.inner.quit().await;
    }
}

/// TLS from the first byte (port 465), checked against the web's root certificates.
async fn tls(host: &str, tcp: TcpStream) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Failure> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(deferred)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(deferred)?;
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(deferred)
}

/// A TLS stream as lettre takes one.
#[derive(Debug)]
struct Tls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for Tls {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for Tls {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
