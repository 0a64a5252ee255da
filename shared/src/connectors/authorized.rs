//! Sending a source's requests with its [`SourceAuth`]: every attempt is authorised with the
//! credential current at that moment, and a connection's token refused with a 401 is
//! refreshed once and the request sent once more.

use std::sync::{Mutex, PoisonError};

use reqwest::StatusCode;

use super::kit::{AccessToken, SourceAuth};
use super::ConnectorError;
use crate::http::{send_with_retry_async, GuardedRequest, HttpError, RetryPolicy};

/// Why an authorised send failed: the credential could not be had, or the call itself.
#[derive(Debug)]
pub(crate) enum SendError {
    Auth(ConnectorError),
    Http(HttpError),
}

impl From<HttpError> for SendError {
    fn from(error: HttpError) -> Self {
        SendError::Http(error)
    }
}

impl SendError {
    /// The connector error, the HTTP failure described by `transport`.
    pub(crate) fn into_connector(
        self,
        transport: impl FnOnce(HttpError) -> ConnectorError,
    ) -> ConnectorError {
        match self {
            SendError::Auth(error) => error,
            SendError::Http(error) => transport(error),
        }
    }
}

/// Sends the request `build` makes with the retry policy (idempotent calls only), each
/// attempt authorised by `auth`. A 401 to a connection's token: the token is refreshed and
/// the request sent once more; any other answer is returned as it is.
pub(crate) async fn send_authorized(
    auth: &SourceAuth,
    build: impl Fn() -> GuardedRequest,
    retry: &RetryPolicy,
) -> Result<reqwest::Response, SendError> {
    let used: Mutex<Option<AccessToken>> = Mutex::new(None);
    let (build, used_ref) = (&build, &used);
    let response = send_with_retry_async(
        move || async move {
            let (request, token) = auth.authorize(build()).await.map_err(SendError::Auth)?;
            *used_ref.lock().unwrap_or_else(PoisonError::into_inner) = token;
            Ok::<_, SendError>(request)
        },
        retry,
    )
    .await?;
    if response.status() != StatusCode::UNAUTHORIZED {
        return Ok(response);
    }
    let used = used.into_inner().unwrap_or_else(PoisonError::into_inner);
    retry_after_401(auth, build(), used.as_ref(), response).await
}

/// The answer to `request` sent once more with a refreshed token, or `refused` when the
/// credential cannot be refreshed (inline credentials).
async fn retry_after_401(
    auth: &SourceAuth,
    request: GuardedRequest,
    used: Option<&AccessToken>,
    refused: reqwest::Response,
) -> Result<reqwest::Response, SendError> {
    match auth
        .reauthorize_after_401(request, used)
        .await
        .map_err(SendError::Auth)?
    {
        Some(request) => Ok(request.send().await?),
        None => Ok(refused),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::connectors::kit::AccessTokenSource;
    use crate::http::policy::NetworkPolicy;
    use crate::http::GuardedClient;

    /// Hands out `old` until it is refused, then `new`; counts refreshes.
    struct Tokens {
        refreshes: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl AccessTokenSource for Tokens {
        async fn access_token(&self) -> Result<AccessToken, ConnectorError> {
            Ok(AccessToken::new(
                if self.refreshes.load(Ordering::SeqCst) == 0 {
                    "old"
                } else {
                    "new"
                },
            ))
        }

        async fn refresh_rejected(
            &self,
            rejected: &AccessToken,
        ) -> Result<AccessToken, ConnectorError> {
            assert_eq!(rejected.expose(), "old");
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            Ok(AccessToken::new("new"))
        }
    }

    /// A loopback server answering 401 unless the request carries `Bearer new`; returns
    /// its URL and the number of requests it saw.
    async fn server() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buffer = vec![0u8; 4096];
                let read = stream.read(&mut buffer).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..read]).to_ascii_lowercase();
                let status = if request.contains("authorization: bearer new") {
                    "200 OK"
                } else {
                    "401 Unauthorized"
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        (url, seen)
    }

    fn client() -> GuardedClient {
        GuardedClient::with_policy(NetworkPolicy::allow_private()).unwrap()
    }

    #[tokio::test]
    async fn a_refused_connection_token_is_refreshed_once_and_the_request_sent_again() {
        let (url, seen) = server().await;
        let tokens = Arc::new(Tokens {
            refreshes: AtomicUsize::new(0),
        });
        let auth = SourceAuth::Connection(tokens.clone());
        let http = client();
        let response = send_authorized(&auth, || http.get(&url), &RetryPolicy::default())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1);
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn inline_credentials_get_the_401_as_it_is() {
        let (url, seen) = server().await;
        let auth = SourceAuth::Basic {
            user: "a@example.com".into(),
            password: "t".into(),
        };
        let http = client();
        let response = send_authorized(&auth, || http.get(&url), &RetryPolicy::default())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unresolved_connection_fails_closed_before_any_call() {
        let (url, seen) = server().await;
        let auth = SourceAuth::Unresolved {
            provider: "google".into(),
        };
        let http = client();
        let error = send_authorized(&auth, || http.get(&url), &RetryPolicy::default())
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            SendError::Auth(ConnectorError::Unauthorized(_))
        ));
        assert_eq!(seen.load(Ordering::SeqCst), 0);
    }
}
