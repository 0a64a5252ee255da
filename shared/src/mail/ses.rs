//! Amazon SES (v2 `SendEmail`): the `auth` function's mail sender in AWS. The From
//! address (a verified SES identity) and the public base URL come from the environment
//! and are checked at cold start.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message as SesMessage};

use super::{check_from_address, MailError, Mailer, Message, MAIL_FROM};

pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    from: String,
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client, from: &str) -> Result<Self, MailError> {
        Ok(Self {
            client,
            from: check_from_address(from)?,
        })
    }

    /// `TRIBUTARY_MAIL_FROM` (required) and the SDK's own region/credentials.
    pub async fn from_env() -> Result<Self, MailError> {
        let from = std::env::var(MAIL_FROM).map_err(|_| MailError::Config {
            name: MAIL_FROM,
            reason: "is not set (the verified SES identity mails are sent from)".into(),
        })?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(aws_sdk_sesv2::Client::new(&sdk), &from)
    }
}

fn content(text: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|error| MailError::Delivery(error.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, message: &Message) -> Result<(), MailError> {
        let simple = SesMessage::builder()
            .subject(content(&message.subject)?)
            .body(Body::builder().text(content(&message.text)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&message.to).build())
            .content(EmailContent::builder().simple(simple).build())
            .send()
            .await
            .map_err(delivery_error)?;
        tracing::info!(subject = %message.subject, "mail handed to SES");
        Ok(())
    }
}

/// The service's error code and message (e.g. `MessageRejected: Email address not verified
/// …`), or the SDK's summary when the call never reached SES; not the raw HTTP response the
/// SDK's full context would dump into the logs.
fn delivery_error(
    error: aws_sdk_sesv2::error::SdkError<
        aws_sdk_sesv2::operation::send_email::SendEmailError,
        aws_sdk_sesv2::config::http::HttpResponse,
    >,
) -> MailError {
    use aws_sdk_sesv2::error::ProvideErrorMetadata;
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => MailError::Delivery(format!("{code}: {message}")),
        (Some(code), None) => MailError::Delivery(code.to_owned()),
        _ => MailError::Delivery(aws_sdk_sesv2::error::DisplayErrorContext(error).to_string()),
    }
}
