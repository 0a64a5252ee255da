//! The `auth` function's mail sender, `SesMailer` (SES v2 `SendEmail`), against moto's SES:
//! what moto accepted is read back from its state dump, and the mailed verification link is
//! opened against the app. moto, like SES in its sandbox, refuses a From address that is
//! not a verified identity.

use std::sync::Arc;

use reqwest::StatusCode;
use tributary::mail::ses::SesMailer;
use tributary::mail::{Mail, MailError, Mailer, Message};
use tributary_e2e::app::{embedded_table, services_over, spawn_app_with};
use tributary_e2e::moto::{self, SentEmail};

const PUBLIC_URL: &str = "https://tributary.example.com";
const SUBJECT: &str = "Confirm your email address for Tributary";

/// An address no other test sends from or to (moto's SES is shared by the whole run).
fn unique_address(prefix: &str) -> String {
    format!("{}@mail.example.com", moto::unique_name(prefix))
}

async fn sent_to(address: &str) -> Vec<SentEmail> {
    moto::sent_emails()
        .await
        .into_iter()
        .filter(|mail| mail.to.iter().any(|to| to == address))
        .collect()
}

#[tokio::test]
async fn registering_sends_the_verification_mail_through_ses() {
    let client = moto::sesv2_client().await;
    let from = unique_address("no-reply");
    client
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("verify the sender identity on moto");
    let mailer = SesMailer::new(client, &from).expect("valid From address");
    let mail = Mail::new(Arc::new(mailer), PUBLIC_URL).expect("valid public URL");
    let app = spawn_app_with(services_over(embedded_table()).with_mail(mail)).await;

    let to = unique_address("new-user");
    let registered = app.register(&to).await;
    assert_eq!(registered["user"]["email_verified"], false);

    let sent = sent_to(&to).await;
    assert_eq!(sent.len(), 1, "one mail at registration: {sent:?}");
    let mail = &sent[0];
    assert!(!mail.id.is_empty(), "SES gave the message an id");
    assert_eq!(mail.from, from);
    assert_eq!(mail.to, vec![to.clone()]);
    assert_eq!(mail.subject, SUBJECT);
    let link = mail
        .body
        .split_whitespace()
        .find(|word| word.starts_with(&format!("{PUBLIC_URL}/auth/verify-email?token=")))
        .unwrap_or_else(|| panic!("a verification link under {PUBLIC_URL}: {}", mail.body));
    let link = reqwest::Url::parse(link).expect("the link is a URL");

    // The link SES carried is the live one-time link.
    let (status, page) = app.open_verification_link(&link).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&format!("{to} is verified")), "{page}");
}

#[tokio::test]
async fn an_unverified_sender_is_refused_with_a_clear_error() {
    let from = unique_address("unverified");
    let mailer = SesMailer::new(moto::sesv2_client().await, &from).expect("valid From address");
    let to = unique_address("recipient");
    let message = Message {
        to: to.clone(),
        subject: SUBJECT.into(),
        text: format!("{PUBLIC_URL}/auth/verify-email?token=never-sent"),
    };

    let error = mailer
        .send(&message)
        .await
        .expect_err("SES refuses the mail");
    let MailError::Delivery(reason) = &error else {
        panic!("a delivery error, not {error:?}");
    };
    assert!(
        reason.contains("MessageRejected") && reason.contains("not verified"),
        "names SES's reason: {reason}"
    );
    assert!(reason.contains(&from), "names the sender: {reason}");
    assert!(
        !reason.contains("never-sent"),
        "no body in the error: {reason}"
    );
    // Just the service's code and message: not the raw HTTP response (headers, request id).
    assert!(
        !reason.to_ascii_lowercase().contains("headers") && reason.len() < 300,
        "a short reason, not the raw response: {reason}"
    );
    assert!(sent_to(&to).await.is_empty(), "nothing was sent");
}
