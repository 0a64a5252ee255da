//! Lambda entrypoint: build the services once, serve the router for every invocation.

use axum::middleware::from_fn;
use tributary::web::{finish, principal_from_authorizer};
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary::telemetry::init_lambda_logs();
    // Mail (verification links) goes through SES; links point at TRIBUTARY_PUBLIC_URL.
    let public_url = std::env::var(tributary::mail::PUBLIC_URL)
        .map_err(|_| format!("{} is not set", tributary::mail::PUBLIC_URL))?;
    let mailer = tributary::mail::ses::SesMailer::from_env().await?;
    let mail = tributary::mail::Mail::new(std::sync::Arc::new(mailer), &public_url)?;
    let services = Services::from_env().await?.with_mail(mail);
    let app = finish(auth::public_routes(services.clone()).merge(auth::protected_routes(services)))
        .layer(from_fn(principal_from_authorizer));
    lambda_http::run(app).await
}
